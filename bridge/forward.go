package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/snwgw/snwgw/mqttcore"
)

// consumer is the Bridge as the local broker's mqttcore.Consumer.
type consumer Bridge

// Notify implements mqttcore.Consumer.
func (c *consumer) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Disconnected implements mqttcore.Consumer.
func (c *consumer) Disconnected(reason mqttcore.ReasonCode) {
	c.log.Warn("local broker ended the bridge's session; nothing more goes upstream", "reason", reason)
}

// pump is the only goroutine that pulls from the local session. QoS 0 goes
// upstream at once (or is dropped while the link is down); QoS 1 and 2 go to
// the queue.
func (b *Bridge) pump(ctx context.Context) {
	var acks []localAck // disk queue: deliveries to acknowledge after the directory sync
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		for {
			d, ok := b.sess.Next()
			if !ok {
				break
			}
			acks = b.take(ctx, d, acks)
		}
		if len(acks) > 0 {
			if err := b.q.syncDir(); err != nil {
				b.queueErrors.Add(1)
				b.log.Error("disk queue sync failed", "err", err)
			}
			for _, a := range acks {
				b.ackLocal(a.id, a.qos)
			}
			acks = acks[:0]
		}
	}
}

type localAck struct {
	id  uint16
	qos byte
}

// take handles one delivery from the local session.
func (b *Bridge) take(ctx context.Context, d mqttcore.Delivery, acks []localAck) []localAck {
	if d.Release { // PUBREC was sent on an earlier connection: finish the flow
		b.ackLocal(d.PacketID, 0)
		return acks
	}
	r := b.outRule(d.Topic)
	if r == nil || hasMarker(d.Properties.User, b.opts.Name) {
		// Ours, or matched by a subscription no rule asks for any more
		// (left in the local session by an earlier configuration).
		b.ackLocal(d.PacketID, d.QoS)
		return acks
	}
	e := &entry{
		topic:   r.toRemote(d.Topic),
		payload: d.Payload,
		qos:     d.QoS,
		retain:  r.Retain && d.Retain,
		props:   d.Properties,
	}
	e.props.User = withoutMarkers(d.Properties.User)
	if ex := d.Properties.MessageExpiry; ex != nil {
		e.expires = time.Now().Add(time.Duration(*ex) * time.Second)
		e.props.MessageExpiry = nil
	}
	if d.QoS == 0 {
		if up, _, _ := b.link.get(); !up {
			b.qos0Dropped.Add(1)
			return acks
		}
		if _, err := b.publish(ctx, e); err != nil {
			b.qos0Dropped.Add(1)
			return acks
		}
		b.forwardedOut.Add(1)
		return acks
	}
	full := b.q.len() >= b.opts.Queue.Limit
	if full && !b.full {
		b.log.Warn("queue full: the queue policy now drops messages", "limit", b.opts.Queue.Limit, "policy", b.opts.Queue.Policy)
	}
	b.full = full
	if full {
		if b.opts.Queue.Policy == PolicyRejectNew {
			b.queueDropped.Add(1)
			b.ackLocal(d.PacketID, d.QoS)
			return acks
		}
		old, err := b.q.dropOldest()
		if err != nil {
			b.queueErrors.Add(1)
			b.log.Error("disk queue remove failed", "err", err)
		}
		if old != nil {
			b.queueDropped.Add(1)
			b.ackLocal(old.localID, old.localQoS)
		}
	}
	if b.q.dir != "" {
		err := b.q.push(e, true)
		if err == nil {
			return append(acks, localAck{d.PacketID, d.QoS})
		}
		// Keep the message in memory, unacknowledged, rather than lose it.
		b.queueErrors.Add(1)
		b.log.Error("disk queue write failed; message kept in memory only", "err", err)
	}
	e.localID, e.localQoS = d.PacketID, d.QoS
	_ = b.q.push(e, false) // cannot fail without a file to write
	return acks
}

// ackLocal acknowledges a local delivery: Ack for QoS 1, Received and
// Complete for QoS 2, Complete alone (qos 0) for a repeated PUBREL. An id of
// 0 has nothing to acknowledge.
func (b *Bridge) ackLocal(id uint16, qos byte) {
	if id == 0 {
		return
	}
	var err error
	switch qos {
	case 1:
		err = b.sess.Ack(id)
	case 2:
		if err = b.sess.Received(id); err == nil {
			err = b.sess.Complete(id)
		}
	default:
		err = b.sess.Complete(id)
	}
	if err != nil {
		b.log.Debug("local acknowledgement failed", "packet_id", id, "err", err)
	}
}

func (b *Bridge) outRule(topic string) *Rule {
	for i := range b.opts.Rules {
		if r := &b.opts.Rules[i]; r.out() && match(r.LocalFilter, topic) {
			return r
		}
	}
	return nil
}

func (b *Bridge) inRule(topic string) *Rule {
	for i := range b.opts.Rules {
		if r := &b.opts.Rules[i]; r.in() && match(r.remoteFilter(), topic) {
			return r
		}
	}
	return nil
}

func hasMarker(props []mqttcore.UserProperty, value string) bool {
	for _, p := range props {
		if p.Key == MarkerProperty && p.Value == value {
			return true
		}
	}
	return false
}

// withoutMarkers returns props without MarkerProperty entries, sharing props
// when it has none (the engine's slices are never modified).
func withoutMarkers(props []mqttcore.UserProperty) []mqttcore.UserProperty {
	for i, p := range props {
		if p.Key == MarkerProperty {
			out := append([]mqttcore.UserProperty(nil), props[:i]...)
			for _, p := range props[i+1:] {
				if p.Key != MarkerProperty {
					out = append(out, p)
				}
			}
			return out
		}
	}
	return props
}

// sender is the only goroutine that sends the queue upstream. After every
// new connection it first subscribes upstream and publishes the online
// state, then sends the queue in order, one message at a time.
func (b *Bridge) sender(ctx context.Context) {
	var done uint64 // the connection generation already set up
	pause := func(changed <-chan struct{}) bool {
		t := time.NewTimer(b.opts.ConnectRetryMin)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		case <-t.C:
		}
		return true
	}
	for {
		up, gen, changed := b.link.get()
		if !up {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			continue
		}
		if gen != done {
			if err := b.connected(ctx); err != nil {
				b.log.Warn("upstream setup after connect failed", "err", err)
				if !pause(changed) {
					return
				}
				continue
			}
			done = gen
		}
		e, ok := b.q.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-b.q.ready:
			}
			continue
		}
		if !e.expires.IsZero() && !time.Now().Before(e.expires) {
			b.expired.Add(1)
			b.finish(e)
			continue
		}
		refused, err := b.publish(ctx, e)
		switch {
		case err == nil:
			b.forwardedOut.Add(1)
			b.finish(e)
		case refused:
			b.rejected.Add(1)
			b.log.Warn("upstream broker refused a message; dropped", "topic", e.topic, "err", err)
			b.finish(e)
		default:
			if ctx.Err() != nil {
				return
			}
			b.log.Debug("upstream publish failed; will send again", "topic", e.topic, "err", err)
			if !pause(changed) {
				return
			}
		}
	}
}

// finish removes a sent (or expired, or refused) entry and acknowledges its
// local delivery.
func (b *Bridge) finish(e *entry) {
	if _, err := b.q.remove(e); err != nil {
		b.queueErrors.Add(1)
		b.log.Error("disk queue remove failed", "err", err)
	}
	b.ackLocal(e.localID, e.localQoS)
}

// connected subscribes upstream to the remote filters of the in rules and
// publishes the online state. Subscribing after every connection restores
// subscriptions an upstream broker forgot (session expired, broker
// restarted without persistence).
func (b *Bridge) connected(ctx context.Context) error {
	var sub paho.Subscribe
	for _, r := range b.opts.Rules {
		if r.in() {
			sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{
				Topic:             r.remoteFilter(),
				QoS:               r.QoS,
				NoLocal:           true,
				RetainAsPublished: true,
				RetainHandling:    retainHandling(r.Retain),
			})
		}
	}
	if len(sub.Subscriptions) > 0 {
		sctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
		ack, err := b.cm.Subscribe(sctx, &sub)
		cancel()
		if err != nil && ack == nil {
			return fmt.Errorf("subscribe upstream: %w", err)
		}
		for i, code := range ack.Reasons {
			if code >= 0x80 && i < len(sub.Subscriptions) {
				b.log.Error("upstream broker refused a subscription", "filter", sub.Subscriptions[i].Topic, "reason", code)
			}
		}
	}
	if h := b.hooks.beforeOnline; h != nil {
		h(ctx)
	}
	_, err := b.publishState(ctx, StateOnline)
	return err
}

func (b *Bridge) publishState(ctx context.Context, state string) (bool, error) {
	return b.publish(ctx, &entry{topic: b.opts.StateTopic, payload: []byte(state), qos: 1, retain: true})
}

// publish sends e upstream and waits for its acknowledgement (QoS 1, 2).
// refused reports a reason code of 0x80 or above: sending again would not
// help.
func (b *Bridge) publish(ctx context.Context, e *entry) (refused bool, err error) {
	p := &paho.Publish{
		Topic:   e.topic,
		QoS:     e.qos,
		Retain:  e.retain,
		Payload: e.payload,
		Properties: &paho.PublishProperties{
			PayloadFormat:   e.props.PayloadFormat,
			ContentType:     e.props.ContentType,
			ResponseTopic:   e.props.ResponseTopic,
			CorrelationData: e.props.CorrelationData,
			User:            make(paho.UserProperties, 0, len(e.props.User)+1),
		},
	}
	for _, u := range e.props.User {
		p.Properties.User = append(p.Properties.User, paho.UserProperty{Key: u.Key, Value: u.Value})
	}
	p.Properties.User = append(p.Properties.User, paho.UserProperty{Key: MarkerProperty, Value: b.opts.ClientID})
	if !e.expires.IsZero() {
		left := uint32(max(1, (time.Until(e.expires)+time.Second-1)/time.Second))
		p.Properties.MessageExpiry = &left
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.PublishTimeout)
	defer cancel()
	resp, err := b.cm.Publish(ctx, p)
	if resp != nil && resp.ReasonCode >= 0x80 {
		return true, fmt.Errorf("bridge: upstream refused %q: reason %#x", e.topic, resp.ReasonCode)
	}
	return false, err
}

// onPublishReceived is the in direction, on paho's receiving goroutine:
// the message goes into the local broker under its local topic, marked as
// ours. paho acknowledges it upstream when this returns, so a message is
// acknowledged only once the local broker has it.
func (b *Bridge) onPublishReceived(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	var user []mqttcore.UserProperty
	var props mqttcore.MessageProperties
	if pp := p.Properties; pp != nil {
		for _, u := range pp.User {
			if u.Key == MarkerProperty {
				if u.Value == b.opts.ClientID {
					return true, nil // our own, come back (a retained message)
				}
				continue
			}
			user = append(user, mqttcore.UserProperty{Key: u.Key, Value: u.Value})
		}
		props = mqttcore.MessageProperties{
			PayloadFormat:   pp.PayloadFormat,
			MessageExpiry:   pp.MessageExpiry,
			ContentType:     pp.ContentType,
			ResponseTopic:   pp.ResponseTopic,
			CorrelationData: pp.CorrelationData,
		}
	}
	r := b.inRule(p.Topic)
	if r == nil {
		b.log.Debug("upstream message matches no in rule; dropped", "topic", p.Topic)
		return true, nil
	}
	props.User = append(user, mqttcore.UserProperty{Key: MarkerProperty, Value: b.opts.Name})
	err := b.sess.Publish(mqttcore.Message{
		Topic:      r.toLocal(p.Topic),
		Payload:    p.Payload,
		QoS:        min(p.QoS, r.QoS),
		Retain:     r.Retain && p.Retain,
		Properties: props,
	})
	if err != nil {
		b.rejected.Add(1)
		b.log.Warn("local broker refused an upstream message", "topic", p.Topic, "err", err)
		return true, nil
	}
	b.forwardedIn.Add(1)
	return true, nil
}
