package client

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// readLoop is the only reader of the link. It ends when the link fails
// or is closed.
func (c *Client) readLoop() {
	defer close(c.readDone)
	buf := make([]byte, c.opts.MaxPacketSize)
	for {
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			c.readErr = fmt.Errorf("client: read: %w", err)
			if c.ctx.Err() != nil {
				c.readErr = ErrClosed
				return
			}
			c.mu.Lock()
			sess := c.down
			c.mu.Unlock()
			c.endSession(sess, c.readErr, StateLost, true)
			return
		}
		if !sameAddr(from, c.gw) {
			c.stats.ignored.Add(1)
			c.log.Debug("datagram from another address ignored", "from", from.String())
			continue
		}
		c.handleDatagram(buf[:n])
	}
}

// sameAddr reports whether a and b are the same address; UDP addresses
// are compared by value, so 127.0.0.1 and ::ffff:127.0.0.1 match.
func sameAddr(a, b net.Addr) bool {
	if ua, ok := a.(*net.UDPAddr); ok {
		if ub, ok := b.(*net.UDPAddr); ok {
			return ua.Port == ub.Port && ua.IP.Equal(ub.IP)
		}
	}
	return a.Network() == b.Network() && a.String() == b.String()
}

// handleDatagram processes one datagram from the gateway. It is the
// receive path as a whole: anything the gateway can send ends up here.
func (c *Client) handleDatagram(b []byte) {
	p, err := mqttsn.Parse(b)
	if err != nil {
		c.stats.malformed.Add(1)
		c.log.Debug("malformed datagram", "err", err)
		return
	}
	e, encapsulated := p.(*mqttsn.Encapsulated)
	switch f := c.opts.Forwarder; {
	case f == nil && encapsulated, f != nil && !encapsulated:
		c.stats.ignored.Add(1)
		c.log.Debug("datagram ignored", "type", p.Type(), "encapsulated", encapsulated)
		return
	case f != nil:
		if !bytes.Equal(e.NodeID, f.NodeID) {
			c.stats.ignored.Add(1)
			c.log.Debug("encapsulated message for another node ignored", "node", e.NodeID)
			return
		}
		if p, err = mqttsn.Parse(e.Message); err != nil {
			c.stats.malformed.Add(1)
			c.log.Debug("malformed encapsulated message", "err", err)
			return
		}
		if p.Type() == mqttsn.TypeEncapsulated {
			c.stats.malformed.Add(1)
			c.log.Debug("nested encapsulation ignored")
			return
		}
	}
	c.stats.received.Add(1)
	select {
	case c.rxTick <- struct{}{}:
	default:
	}
	c.handle(p)
}

// replyKey returns the key under which a reply to one of the client's
// messages is awaited.
func replyKey(p mqttsn.Packet) (key, bool) {
	switch p := p.(type) {
	case *mqttsn.RegAck:
		return key{p.Type(), p.MsgID}, true
	case *mqttsn.PubAck:
		return key{p.Type(), p.MsgID}, true
	case *mqttsn.PubRec:
		return key{p.Type(), p.MsgID}, true
	case *mqttsn.PubComp:
		return key{p.Type(), p.MsgID}, true
	case *mqttsn.SubAck:
		return key{p.Type(), p.MsgID}, true
	case *mqttsn.UnsubAck:
		return key{p.Type(), p.MsgID}, true
	case *mqttsn.ConnAck, *mqttsn.WillTopicReq, *mqttsn.WillMsgReq, *mqttsn.PingResp,
		*mqttsn.WillTopicResp, *mqttsn.WillMsgResp, *mqttsn.Disconnect:
		return key{p.Type(), 0}, true
	}
	return key{}, false
}

// deliver hands p to the waiter of k, if there is one.
func (c *Client) deliver(k key, p mqttsn.Packet) bool {
	c.mu.Lock()
	w := c.waiters[k]
	c.mu.Unlock()
	if w == nil {
		return false
	}
	if len(w.ch) == cap(w.ch) {
		return true // a duplicate reply the caller has not taken yet
	}
	if w.onReply != nil {
		w.onReply(p)
		w.onReply = nil // once: the caller reads what it wrote
	}
	w.ch <- p // the read loop is the only sender, so there is room
	return true
}

// handle acts on one message from the gateway.
func (c *Client) handle(p mqttsn.Packet) {
	switch p := p.(type) {
	case *mqttsn.Publish:
		c.onPublish(p)
		return
	case *mqttsn.PubRel:
		c.onPubRel(p)
		return
	case *mqttsn.Register:
		c.onRegister(p)
		return
	case *mqttsn.PingReq:
		c.onPingReq()
		return
	}
	k, ok := replyKey(p)
	if ok && c.deliver(k, p) {
		return
	}
	switch p := p.(type) {
	case *mqttsn.Disconnect:
		// §6.12: the gateway ended the session; the client may CONNECT
		// again.
		c.mu.Lock()
		sess := c.down
		c.mu.Unlock()
		c.endSession(sess, fmt.Errorf("%w: unsolicited DISCONNECT", ErrDisconnected), StateDisconnected, true)
		return
	case *mqttsn.PubAck:
		// A rejection of a QoS 0 PUBLISH: the id must be registered again
		// before the next one (§6.6).
		if p.ReturnCode == mqttsn.RejectedInvalidTopicID {
			c.mu.Lock()
			c.topics.forget(p.TopicID)
			c.mu.Unlock()
		}
		c.log.Debug("PUBACK without a PUBLISH outstanding", "msgid", p.MsgID, "code", p.ReturnCode)
	default:
		c.log.Debug("unexpected message ignored", "type", p.Type())
	}
	c.stats.ignored.Add(1)
}

// onPingReq answers the gateway's keep-alive probe (§6.11) while the
// client has a session (or is opening one: the CONNACK may be read before
// Connect has noted it); a PINGREQ from a gateway it is not connected to
// is ignored.
func (c *Client) onPingReq() {
	switch c.State() {
	case StateDisconnected, StateLost:
		c.stats.ignored.Add(1)
		return
	}
	c.reply(&mqttsn.PingResp{})
}

// onRegister records a topic id the gateway will use in PUBLISHes to the
// client (§6.10) and acknowledges it.
func (c *Client) onRegister(p *mqttsn.Register) {
	rc := mqttsn.Accepted
	switch {
	case !validTopicID(p.TopicID):
		rc = mqttsn.RejectedInvalidTopicID
	case p.TopicName == "" || isWildcard(p.TopicName):
		rc = mqttsn.RejectedNotSupported
	default:
		c.mu.Lock()
		err := c.topics.add(p.TopicID, p.TopicName)
		c.mu.Unlock()
		if err != nil {
			c.stats.refused.Add(1)
			c.log.Warn("REGISTER from the gateway refused", "topic", p.TopicName, "err", err)
			rc = mqttsn.RejectedCongestion
		}
	}
	c.reply(&mqttsn.RegAck{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: rc})
}

// resolve returns the topic of a PUBLISH from the gateway, or false if its
// topic id is unknown.
func (c *Client) resolve(p *mqttsn.Publish) (Topic, bool) {
	switch p.TopicIDType {
	case mqttsn.TopicPredefined:
		return Predefined(p.TopicID), true
	case mqttsn.TopicShort:
		return Short(mqttsn.ShortTopicName(p.TopicID)), true
	}
	if p.TopicName != "" { // the long-topic-name form of QoS -1
		return TopicName(p.TopicName), true
	}
	c.mu.Lock()
	name, ok := c.topics.byID[p.TopicID]
	c.mu.Unlock()
	return Topic{Kind: mqttsn.TopicNormal, Name: name, ID: p.TopicID}, ok
}

// onPublish acknowledges a PUBLISH from the gateway and queues it for the
// handler (§6.10). A QoS 2 message is delivered when it first arrives and
// its id remembered until PUBREL, so a retransmission is acknowledged
// again but not delivered twice.
func (c *Client) onPublish(p *mqttsn.Publish) {
	topic, ok := c.resolve(p)
	if !ok {
		c.stats.invalidTopic.Add(1)
		c.log.Debug("PUBLISH for an unknown topic id rejected", "topicid", p.TopicID)
		c.reply(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: mqttsn.RejectedInvalidTopicID})
		return
	}
	m := Message{Topic: topic, Payload: p.Data, QoS: p.QoS, Retain: p.Retain, Duplicate: p.DUP}
	switch p.QoS {
	case mqttsn.QoS2:
		c.mu.Lock()
		_, seen := c.qos2[p.MsgID]
		c.mu.Unlock()
		if !seen {
			if !c.enqueue(m) {
				return // unacknowledged: the gateway retransmits it
			}
			c.rememberQoS2(p.MsgID)
		}
		c.reply(&mqttsn.PubRec{MsgID: p.MsgID})
	case mqttsn.QoS1:
		if c.enqueue(m) {
			c.reply(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: mqttsn.Accepted})
		}
	default:
		c.enqueue(m)
	}
}

// rememberQoS2 records an incoming QoS 2 message id until its PUBREL,
// forgetting the oldest when Options.MaxPendingQoS2 are remembered.
func (c *Client) rememberQoS2(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.qos2Seq) >= c.opts.MaxPendingQoS2 {
		delete(c.qos2, c.qos2Seq[0])
		c.qos2Seq = c.qos2Seq[1:]
		c.stats.qos2Evicted.Add(1)
	}
	c.qos2[id] = struct{}{}
	c.qos2Seq = append(c.qos2Seq, id)
}

// onPubRel completes an incoming QoS 2 flow. PUBCOMP is sent even for an
// unknown id, as the gateway may be retransmitting a PUBREL whose PUBCOMP
// was lost.
func (c *Client) onPubRel(p *mqttsn.PubRel) {
	c.mu.Lock()
	if _, ok := c.qos2[p.MsgID]; ok {
		delete(c.qos2, p.MsgID)
		for i, id := range c.qos2Seq {
			if id == p.MsgID {
				c.qos2Seq = append(c.qos2Seq[:i], c.qos2Seq[i+1:]...)
				break
			}
		}
	}
	c.mu.Unlock()
	c.reply(&mqttsn.PubComp{MsgID: p.MsgID})
}

// enqueue queues m for the handler, or reports false when the queue is
// full.
func (c *Client) enqueue(m Message) bool {
	if c.opts.Handler == nil {
		return true
	}
	select {
	case c.events <- event{msg: m}:
		return true
	default:
		c.stats.dropped.Add(1)
		c.log.Warn("delivery queue full, message dropped", "topic", m.Topic.String(), "qos", m.QoS)
		return false
	}
}

// dispatch is the only caller of Options.Handler and
// Options.OnConnectionLost.
func (c *Client) dispatch() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev := <-c.events:
			if ev.flush != nil {
				close(ev.flush)
				continue
			}
			c.opts.Handler(ev.msg)
			c.stats.delivered.Add(1)
		case err := <-c.lostCh:
			if c.opts.OnConnectionLost != nil {
				c.opts.OnConnectionLost(err)
			}
		}
	}
}

// keepAlive sends a PINGREQ whenever nothing was sent for
// Options.KeepAlive while the session is active (§6.11). A PINGREQ that
// goes unanswered after the retries ends the session (in Ping).
func (c *Client) keepAlive() {
	period := c.opts.KeepAlive
	timer := time.NewTimer(period)
	defer timer.Stop()
	for {
		if c.State() == StateActive {
			c.sendMu.Lock()
			idle := time.Since(c.lastSent)
			c.sendMu.Unlock()
			if idle >= period {
				if err := c.Ping(c.ctx); err != nil && c.ctx.Err() == nil {
					c.log.Debug("keep-alive PINGREQ failed", "err", err)
					// Do not spin on a link that fails at once.
					timer.Reset(c.opts.RetryInterval)
					if !c.sleepUntil(timer) {
						return
					}
				}
				continue
			}
			timer.Reset(period - idle)
		} else {
			timer.Stop()
		}
		if !c.sleepUntil(timer) {
			return
		}
	}
}

// sleepUntil waits for timer or a state change; false means Close.
func (c *Client) sleepUntil(timer *time.Timer) bool {
	select {
	case <-timer.C:
	case <-c.kaKick:
	case <-c.ctx.Done():
		return false
	}
	return true
}

// kick wakes the keep-alive loop after a state change.
func (c *Client) kick() {
	select {
	case c.kaKick <- struct{}{}:
	default:
	}
}
