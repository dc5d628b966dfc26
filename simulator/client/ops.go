package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// Connect opens a session: CONNECT, the Will exchange when Options.Will is
// set (WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG), then CONNACK (§6.2).
// Each step is retransmitted per §6.13. A rejection is returned as an
// error wrapping the CONNACK's mqttsn.ReturnCode. Connect also returns a
// sleeping client to the active state (§6.14).
func (c *Client) Connect(ctx context.Context) error {
	if c.opts.ClientID == "" {
		return fmt.Errorf("%w: Connect needs a client id", ErrInvalidOptions)
	}
	if err := c.acquire(ctx, c.ctlSem); err != nil {
		return err
	}
	defer release(c.ctlSem)

	c.mu.Lock()
	if c.state != StateDisconnected && c.state != StateLost {
		close(c.down) // the old session ends without notification
	}
	c.state = StateConnecting
	c.down = make(chan struct{})
	c.downErr = nil
	if c.opts.CleanSession {
		// The gateway forgets the topic ids and the QoS 2 state; cleared
		// before CONNECT so nothing the new session brings is lost.
		c.topics.clear()
		clear(c.qos2)
		c.qos2Seq = c.qos2Seq[:0]
	}
	sess := c.down
	will := c.will
	c.mu.Unlock()

	err := c.connect(ctx, sess, will)
	c.mu.Lock()
	if c.down == sess && c.state == StateConnecting {
		if err != nil {
			c.state = StateDisconnected
			c.downErr = err
			close(c.down)
		} else {
			c.state = StateActive
		}
	}
	c.mu.Unlock()
	c.kick()
	if err != nil {
		return fmt.Errorf("client: connect: %w", err)
	}
	return nil
}

// connect runs the CONNECT exchange of Connect.
//
//	client --CONNECT-->        GW
//	client <--WILLTOPICREQ--   GW   (only if Will is set)
//	client --WILLTOPIC-->      GW
//	client <--WILLMSGREQ--     GW
//	client --WILLMSG-->        GW
//	client <--CONNACK--        GW
//
// The client answers whichever request arrives, so a gateway that skips
// WILLMSGREQ after an empty WILLTOPIC (spec-interpretation #24), or
// repeats a request, is served; the last message sent is the one
// retransmitted.
func (c *Client) connect(ctx context.Context, sess <-chan struct{}, will *Will) error {
	w := c.wait(key{mqttsn.TypeConnAck, 0}, key{mqttsn.TypeWillTopicReq, 0}, key{mqttsn.TypeWillMsgReq, 0})
	defer c.unwait(w)
	var last mqttsn.Packet = &mqttsn.Connect{
		Will:         will != nil,
		CleanSession: c.opts.CleanSession,
		Duration:     uint16(c.opts.KeepAlive / time.Second),
		ClientID:     c.opts.ClientID,
	}
	if err := c.send(last); err != nil {
		return err
	}
	timer := time.NewTimer(c.opts.RetryInterval)
	defer timer.Stop()
	for n := 0; ; {
		p, err := c.await(ctx, sess, w, timer.C, nil)
		switch {
		case err == errRetry:
			if n == c.opts.RetryCount {
				return fmt.Errorf("%v sent %d times: %w", last.Type(), n+1, ErrTimeout)
			}
			n++
			c.stats.retransmitted.Add(1)
			if err := c.send(last); err != nil {
				return err
			}
			timer.Reset(c.opts.RetryInterval)
			continue
		case err != nil:
			return err
		}
		switch p := p.(type) {
		case *mqttsn.ConnAck:
			if p.ReturnCode != mqttsn.Accepted {
				return p.ReturnCode
			}
			return nil
		case *mqttsn.WillTopicReq:
			if will == nil {
				// Not asked for; the empty WILLTOPIC says there is no Will.
				last = &mqttsn.WillTopic{}
			} else {
				last = &mqttsn.WillTopic{QoS: will.QoS, Retain: will.Retain, Topic: will.Topic}
			}
		case *mqttsn.WillMsgReq:
			var msg []byte
			if will != nil {
				msg = will.Payload
			}
			last = &mqttsn.WillMsg{Message: msg}
		}
		n = 0
		if err := c.send(last); err != nil {
			return err
		}
		timer.Reset(c.opts.RetryInterval)
	}
}

// Register asks the gateway for the topic id of a topic name (§6.5),
// records it and returns it. Publish registers topic names itself; call
// Register to learn an id in advance.
func (c *Client) Register(ctx context.Context, name string) (uint16, error) {
	if name == "" || isWildcard(name) {
		return 0, fmt.Errorf("%w: cannot register %q", ErrInvalidTopic, name)
	}
	sess, err := c.active()
	if err != nil {
		return 0, err
	}
	if err := c.acquire(ctx, c.regSem); err != nil {
		return 0, err
	}
	defer release(c.regSem)
	return c.register(ctx, sess, name)
}

// register runs the REGISTER exchange; the caller holds regSem.
//
//	client --REGISTER(0, MsgId, TopicName)--> GW
//	client <--REGACK(TopicId, MsgId, code)--  GW
func (c *Client) register(ctx context.Context, sess <-chan struct{}, name string) (uint16, error) {
	id := c.newMsgID()
	// The gateway may publish with the new id right after REGACK, so the
	// id is recorded by the read loop as REGACK arrives.
	var recordErr error
	record := func(p mqttsn.Packet) {
		if ack := p.(*mqttsn.RegAck); ack.ReturnCode == mqttsn.Accepted && validTopicID(ack.TopicID) {
			c.mu.Lock()
			recordErr = c.topics.add(ack.TopicID, name)
			c.mu.Unlock()
		}
	}
	w := c.waitFunc(record, key{mqttsn.TypeRegAck, id})
	defer c.unwait(w)
	reg := &mqttsn.Register{MsgID: id, TopicName: name}
	p, err := c.exchange(ctx, sess, w, reg.Type(), func(bool) error { return c.send(reg) })
	if err != nil {
		return 0, fmt.Errorf("client: register %q: %w", name, err)
	}
	ack := p.(*mqttsn.RegAck)
	switch {
	case ack.ReturnCode != mqttsn.Accepted:
		return 0, fmt.Errorf("client: register %q: %w", name, ack.ReturnCode)
	case !validTopicID(ack.TopicID):
		return 0, fmt.Errorf("client: register %q: %w: REGACK topic id %#04x", name, ErrProtocol, ack.TopicID)
	case recordErr != nil: // written by the read loop before it handed ack over
		return 0, fmt.Errorf("client: register %q: %w", name, recordErr)
	}
	return ack.TopicID, nil
}

// topicID returns the id of a topic name, registering it if it is not
// known yet.
func (c *Client) topicID(ctx context.Context, sess <-chan struct{}, name string) (uint16, error) {
	if id, ok := c.LookupTopic(name); ok {
		return id, nil
	}
	if err := c.acquire(ctx, c.regSem); err != nil {
		return 0, err
	}
	defer release(c.regSem)
	if id, ok := c.LookupTopic(name); ok { // registered while we waited
		return id, nil
	}
	return c.register(ctx, sess, name)
}

// Publish sends an application message (§6.6, §6.8) and, at QoS 1 and 2,
// waits for its acknowledgement.
//
// The topic is a TopicName (registered on first use), a Predefined id, a
// Short name, or a Topic of Kind TopicNormal with an empty Name and the ID
// of an already registered topic. At QoS -1 no session is needed; §6.8
// allows only pre-defined and short topics there, and a topic name is sent
// in the long-topic-name form, an extension that Paho gateways and
// MQTT-SN 2.0 (Appendix C.6) accept but MQTT-SN 1.2 does not define.
//
// A rejection is returned as an error wrapping the PUBACK's
// mqttsn.ReturnCode; after "invalid topic ID" for a registered name, the
// name is registered again on the next Publish.
func (c *Client) Publish(ctx context.Context, m Message) error {
	pub := &mqttsn.Publish{QoS: m.QoS, Retain: m.Retain, TopicIDType: m.Topic.Kind, Data: m.Payload}
	if m.QoS < mqttsn.QoSMinus1 || m.QoS > mqttsn.QoS2 {
		return fmt.Errorf("%w: publish with %v", ErrInvalidOptions, m.QoS)
	}
	t := m.Topic
	switch t.Kind {
	case mqttsn.TopicPredefined:
		pub.TopicID = t.ID
	case mqttsn.TopicShort:
		id, err := mqttsn.ShortTopicID(t.Name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidTopic, err)
		}
		pub.TopicID = id
	case mqttsn.TopicNormal:
		switch {
		case isWildcard(t.Name):
			return fmt.Errorf("%w: cannot publish to the filter %q", ErrInvalidTopic, t.Name)
		case m.QoS == mqttsn.QoSMinus1 && t.Name == "":
			return fmt.Errorf("%w: QoS -1 needs a topic name, a pre-defined id or a short name", ErrInvalidTopic)
		case m.QoS == mqttsn.QoSMinus1:
			pub.TopicName = t.Name
		case t.Name == "" && t.ID == 0:
			return fmt.Errorf("%w: empty topic", ErrInvalidTopic)
		}
	default:
		return fmt.Errorf("%w: topic id type %v", ErrInvalidTopic, t.Kind)
	}
	if m.QoS == mqttsn.QoSMinus1 {
		if err := c.send(pub); err != nil {
			return err
		}
		return nil
	}

	sess, err := c.active()
	if err != nil {
		return err
	}
	registered := t.Kind == mqttsn.TopicNormal && t.Name != ""
	if registered {
		if pub.TopicID, err = c.topicID(ctx, sess, t.Name); err != nil {
			return err
		}
	} else if t.Kind == mqttsn.TopicNormal {
		pub.TopicID = t.ID
	}
	if m.QoS == mqttsn.QoS0 {
		return c.send(pub)
	}

	if err := c.acquire(ctx, c.pubSem); err != nil {
		return err
	}
	defer release(c.pubSem)
	pub.MsgID = c.newMsgID()
	err = c.publish(ctx, sess, pub)
	if registered && errors.Is(err, mqttsn.RejectedInvalidTopicID) {
		c.mu.Lock()
		c.topics.forget(pub.TopicID)
		c.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("client: publish to %v: %w", t, err)
	}
	return nil
}

// publish runs the QoS 1 or QoS 2 exchange of pub; the caller holds
// pubSem.
//
//	QoS 1: client --PUBLISH--> GW, client <--PUBACK-- GW
//	QoS 2: client --PUBLISH--> GW, client <--PUBREC-- GW,
//	       client --PUBREL-->  GW, client <--PUBCOMP-- GW
//
// The gateway may reject either QoS with a PUBACK (§5.4.13).
func (c *Client) publish(ctx context.Context, sess <-chan struct{}, pub *mqttsn.Publish) error {
	keys := []key{{mqttsn.TypePubAck, pub.MsgID}}
	if pub.QoS == mqttsn.QoS2 {
		keys = append(keys, key{mqttsn.TypePubRec, pub.MsgID})
	}
	w := c.wait(keys...)
	p, err := c.exchange(ctx, sess, w, pub.Type(), func(retry bool) error {
		pub.DUP = retry
		return c.send(pub)
	})
	c.unwait(w)
	if err != nil {
		return err
	}
	if ack, ok := p.(*mqttsn.PubAck); ok {
		switch {
		case ack.ReturnCode != mqttsn.Accepted:
			return ack.ReturnCode
		case pub.QoS == mqttsn.QoS2:
			return fmt.Errorf("%w: PUBACK accepting a QoS 2 PUBLISH", ErrProtocol)
		}
		return nil
	}
	rel := &mqttsn.PubRel{MsgID: pub.MsgID}
	w = c.wait(key{mqttsn.TypePubComp, pub.MsgID})
	defer c.unwait(w)
	_, err = c.exchange(ctx, sess, w, rel.Type(), func(bool) error { return c.send(rel) })
	return err
}

// subscribeTopic fills the topic fields shared by SUBSCRIBE and
// UNSUBSCRIBE.
func subscribeTopic(t Topic) (name string, id uint16, err error) {
	switch t.Kind {
	case mqttsn.TopicNormal:
		if t.Name == "" {
			return "", 0, fmt.Errorf("%w: empty topic filter", ErrInvalidTopic)
		}
		return t.Name, 0, nil
	case mqttsn.TopicPredefined:
		return "", t.ID, nil
	case mqttsn.TopicShort:
		id, err := mqttsn.ShortTopicID(t.Name)
		if err != nil {
			return "", 0, fmt.Errorf("%w: %w", ErrInvalidTopic, err)
		}
		return "", id, nil
	}
	return "", 0, fmt.Errorf("%w: topic id type %v", ErrInvalidTopic, t.Kind)
}

// Subscribe asks for the messages of a topic name or filter, a
// pre-defined id or a short name, at QoS 0, 1 or 2 (§6.9), and returns
// the granted QoS and the topic id from SUBACK: the id the gateway will
// use for a topic name (recorded by the client), 0 for a filter with
// wildcards, whose topics the gateway REGISTERs before publishing. A
// rejection is returned as an error wrapping SUBACK's mqttsn.ReturnCode.
//
//	client --SUBSCRIBE(Flags, MsgId, topic)-->           GW
//	client <--SUBACK(granted QoS, TopicId, MsgId, code)-- GW
func (c *Client) Subscribe(ctx context.Context, t Topic, qos mqttsn.QoS) (mqttsn.QoS, uint16, error) {
	if qos < mqttsn.QoS0 || qos > mqttsn.QoS2 {
		return 0, 0, fmt.Errorf("%w: subscribe with %v", ErrInvalidOptions, qos)
	}
	name, tid, err := subscribeTopic(t)
	if err != nil {
		return 0, 0, err
	}
	sess, err := c.active()
	if err != nil {
		return 0, 0, err
	}
	if err := c.acquire(ctx, c.subSem); err != nil {
		return 0, 0, err
	}
	defer release(c.subSem)
	sub := &mqttsn.Subscribe{QoS: qos, TopicIDType: t.Kind, MsgID: c.newMsgID(), TopicName: name, TopicID: tid}
	// The gateway may publish on the topic right after SUBACK (a retained
	// message), so the id is recorded by the read loop as SUBACK arrives.
	var recordErr error
	record := func(p mqttsn.Packet) {
		ack := p.(*mqttsn.SubAck)
		if t.Kind != mqttsn.TopicNormal || isWildcard(name) || ack.ReturnCode != mqttsn.Accepted ||
			!validTopicID(ack.TopicID) {
			return
		}
		c.mu.Lock()
		recordErr = c.topics.add(ack.TopicID, name)
		c.mu.Unlock()
	}
	w := c.waitFunc(record, key{mqttsn.TypeSubAck, sub.MsgID})
	defer c.unwait(w)
	p, err := c.exchange(ctx, sess, w, sub.Type(), func(retry bool) error {
		sub.DUP = retry
		return c.send(sub)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("client: subscribe to %v: %w", t, err)
	}
	ack := p.(*mqttsn.SubAck)
	if ack.ReturnCode != mqttsn.Accepted {
		return 0, 0, fmt.Errorf("client: subscribe to %v: %w", t, ack.ReturnCode)
	}
	if recordErr != nil { // written by the read loop before it handed ack over
		return ack.QoS, ack.TopicID, fmt.Errorf("client: subscribe to %v: %w", t, recordErr)
	}
	return ack.QoS, ack.TopicID, nil
}

// Unsubscribe cancels a subscription made with Subscribe (§6.9).
//
//	client --UNSUBSCRIBE(Flags, MsgId, topic)--> GW
//	client <--UNSUBACK(MsgId)--                  GW
func (c *Client) Unsubscribe(ctx context.Context, t Topic) error {
	name, tid, err := subscribeTopic(t)
	if err != nil {
		return err
	}
	sess, err := c.active()
	if err != nil {
		return err
	}
	if err := c.acquire(ctx, c.subSem); err != nil {
		return err
	}
	defer release(c.subSem)
	unsub := &mqttsn.Unsubscribe{TopicIDType: t.Kind, MsgID: c.newMsgID(), TopicName: name, TopicID: tid}
	w := c.wait(key{mqttsn.TypeUnsubAck, unsub.MsgID})
	defer c.unwait(w)
	if _, err := c.exchange(ctx, sess, w, unsub.Type(), func(bool) error { return c.send(unsub) }); err != nil {
		return fmt.Errorf("client: unsubscribe from %v: %w", t, err)
	}
	return nil
}

// control runs an exchange without a message id under ctlSem, in an
// active session: send p, await a reply of type reply.
func (c *Client) control(ctx context.Context, p mqttsn.Packet, reply mqttsn.MsgType) (mqttsn.Packet, error) {
	if err := c.acquire(ctx, c.ctlSem); err != nil {
		return nil, err
	}
	defer release(c.ctlSem)
	sess, err := c.active()
	if err != nil {
		return nil, err
	}
	w := c.wait(key{reply, 0})
	defer c.unwait(w)
	return c.exchange(ctx, sess, w, p.Type(), func(bool) error { return c.send(p) })
}

// UpdateWillTopic replaces the Will topic, QoS and retain flag stored at
// the gateway (§6.4); an empty topic deletes both the Will topic and the
// Will message. The new Will is also the one sent by later Connects.
//
//	client --WILLTOPICUPD-->        GW
//	client <--WILLTOPICRESP(code)-- GW
func (c *Client) UpdateWillTopic(ctx context.Context, topic string, qos mqttsn.QoS, retain bool) error {
	if qos < mqttsn.QoS0 || qos > mqttsn.QoS2 {
		return fmt.Errorf("%w: will %v", ErrInvalidOptions, qos)
	}
	upd := &mqttsn.WillTopicUpd{QoS: qos, Retain: retain, Topic: topic}
	if topic == "" {
		upd = &mqttsn.WillTopicUpd{}
	}
	p, err := c.control(ctx, upd, mqttsn.TypeWillTopicResp)
	if err != nil {
		return fmt.Errorf("client: update will topic: %w", err)
	}
	if rc := p.(*mqttsn.WillTopicResp).ReturnCode; rc != mqttsn.Accepted {
		return fmt.Errorf("client: update will topic: %w", rc)
	}
	c.mu.Lock()
	if topic == "" {
		c.will = nil
	} else {
		w := Will{Topic: topic, QoS: qos, Retain: retain}
		if c.will != nil {
			w.Payload = c.will.Payload
		}
		c.will = &w
	}
	c.mu.Unlock()
	return nil
}

// UpdateWillMessage replaces the Will message stored at the gateway
// (§6.4). The new message is also the one sent by later Connects.
//
//	client --WILLMSGUPD-->        GW
//	client <--WILLMSGRESP(code)-- GW
func (c *Client) UpdateWillMessage(ctx context.Context, payload []byte) error {
	payload = append([]byte(nil), payload...)
	p, err := c.control(ctx, &mqttsn.WillMsgUpd{Message: payload}, mqttsn.TypeWillMsgResp)
	if err != nil {
		return fmt.Errorf("client: update will message: %w", err)
	}
	if rc := p.(*mqttsn.WillMsgResp).ReturnCode; rc != mqttsn.Accepted {
		return fmt.Errorf("client: update will message: %w", rc)
	}
	c.mu.Lock()
	if c.will != nil {
		w := *c.will
		w.Payload = payload
		c.will = &w
	}
	c.mu.Unlock()
	return nil
}

// Ping sends a PINGREQ and waits for the PINGRESP (§6.11). The
// keep-alive loop calls it by itself; an unanswered PINGREQ ends the
// session with StateLost.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.control(ctx, &mqttsn.PingReq{}, mqttsn.TypePingResp); err != nil {
		return fmt.Errorf("client: ping: %w", err)
	}
	return nil
}

// Sleep puts the session to sleep for d, rounded up to whole seconds
// (at most 65535 s): DISCONNECT with a Duration, acknowledged by a
// DISCONNECT (§6.14). The gateway buffers the client's messages until
// Wake collects them or Connect returns the client to the active state.
// Sleep is allowed while active and while asleep (to change the
// duration).
//
//	client --DISCONNECT(Duration)--> GW
//	client <--DISCONNECT--           GW
func (c *Client) Sleep(ctx context.Context, d time.Duration) error {
	secs := (d + time.Second - 1) / time.Second
	if d <= 0 || secs > math.MaxUint16 {
		return fmt.Errorf("%w: sleep duration %v outside 1s..65535s", ErrInvalidOptions, d)
	}
	if err := c.acquire(ctx, c.ctlSem); err != nil {
		return err
	}
	defer release(c.ctlSem)
	c.mu.Lock()
	st, sess := c.state, c.down
	c.mu.Unlock()
	if st != StateActive && st != StateAsleep {
		return fmt.Errorf("client: sleep: %w (state %v)", ErrNotConnected, st)
	}
	w := c.wait(key{mqttsn.TypeDisconnect, 0})
	defer c.unwait(w)
	disc := &mqttsn.Disconnect{Duration: uint16(secs), HasDuration: true}
	if _, err := c.exchange(ctx, sess, w, disc.Type(), func(bool) error { return c.send(disc) }); err != nil {
		return fmt.Errorf("client: sleep: %w", err)
	}
	c.mu.Lock()
	if c.down == sess {
		c.state = StateAsleep
	}
	c.mu.Unlock()
	c.kick()
	return nil
}

// Wake collects the messages the gateway buffered while the client slept:
// it sends PINGREQ with the ClientId, answers and delivers the PUBLISHes
// that follow, and returns when PINGRESP says no more are buffered
// (§6.14), after Options.Handler has been called for every one of them.
// The client is asleep again afterwards, also when Wake fails. The
// retry timer restarts on every message received (§6.14). Wake must not
// be called from Options.Handler.
//
//	client --PINGREQ(ClientId)--> GW
//	client <--PUBLISH--           GW   (each with its QoS exchange)
//	client <--PINGRESP--          GW
func (c *Client) Wake(ctx context.Context) error {
	if err := c.acquire(ctx, c.ctlSem); err != nil {
		return err
	}
	defer release(c.ctlSem)
	c.mu.Lock()
	st, sess := c.state, c.down
	if st == StateAsleep {
		c.state = StateAwake
	}
	c.mu.Unlock()
	if st != StateAsleep {
		return fmt.Errorf("client: wake: %w (state %v)", ErrNotConnected, st)
	}
	err := c.collect(ctx, sess)
	c.mu.Lock()
	if c.down == sess && c.state == StateAwake {
		c.state = StateAsleep
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: wake: %w", err)
	}
	return c.flush(ctx)
}

// collect runs the PINGREQ exchange of Wake.
func (c *Client) collect(ctx context.Context, sess <-chan struct{}) error {
	w := c.wait(key{mqttsn.TypePingResp, 0})
	defer c.unwait(w)
	select {
	case <-c.rxTick:
	default:
	}
	ping := &mqttsn.PingReq{ClientID: c.opts.ClientID}
	if err := c.send(ping); err != nil {
		return err
	}
	timer := time.NewTimer(c.opts.RetryInterval)
	defer timer.Stop()
	for n := 0; ; {
		_, err := c.await(ctx, sess, w, timer.C, c.rxTick)
		switch err {
		case errActivity:
			timer.Reset(c.opts.RetryInterval)
			continue
		case errRetry:
		default:
			return err
		}
		if n == c.opts.RetryCount {
			return fmt.Errorf("PINGREQ sent %d times: %w", n+1, ErrTimeout)
		}
		n++
		c.stats.retransmitted.Add(1)
		if err := c.send(ping); err != nil {
			return err
		}
		timer.Reset(c.opts.RetryInterval)
	}
}

// flush waits until the dispatcher has handled every message queued so
// far.
func (c *Client) flush(ctx context.Context) error {
	if c.opts.Handler == nil {
		return nil
	}
	done := make(chan struct{})
	select {
	case c.events <- event{flush: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// Disconnect ends the session: DISCONNECT, acknowledged by a DISCONNECT
// (§6.12). The client is disconnected afterwards even if the gateway did
// not answer. Subscriptions and the Will stay at the gateway unless a
// later Connect sets CleanSession.
//
//	client --DISCONNECT--> GW
//	client <--DISCONNECT-- GW
func (c *Client) Disconnect(ctx context.Context) error {
	if err := c.acquire(ctx, c.ctlSem); err != nil {
		return err
	}
	defer release(c.ctlSem)
	c.mu.Lock()
	st, sess := c.state, c.down
	c.mu.Unlock()
	if st == StateDisconnected {
		return nil
	}
	w := c.wait(key{mqttsn.TypeDisconnect, 0})
	defer c.unwait(w)
	disc := &mqttsn.Disconnect{}
	live := sess
	if st == StateLost {
		live = nil // ended already, yet the gateway may still hold it
	}
	_, err := c.exchange(ctx, live, w, disc.Type(), func(bool) error { return c.send(disc) })
	c.mu.Lock()
	if c.down == sess {
		if c.state != StateDisconnected && c.state != StateLost {
			c.downErr = ErrDisconnected
			close(c.down)
		}
		c.state = StateDisconnected
	}
	c.mu.Unlock()
	c.kick()
	if err != nil {
		return fmt.Errorf("client: disconnect: %w", err)
	}
	return nil
}
