package mqttcore

import "time"

// UserProperty is an MQTT 5 user property, a name/value pair passed through
// unchanged and in order (MQTT 5 §3.3.2.3.7).
type UserProperty struct{ Key, Value string }

// MessageProperties are the MQTT 5 properties that travel with an
// application message from publisher to subscribers (MQTT 5 §3.3.2.3).
// Pointer fields distinguish "absent" from zero, as on the wire.
type MessageProperties struct {
	// PayloadFormat is 0 for unspecified bytes, 1 for UTF-8 text.
	PayloadFormat *byte
	// MessageExpiry is the lifetime in seconds. On publish it starts the
	// clock; on delivery it holds the time that remains (MQTT 5 §3.3.2.3.3).
	MessageExpiry   *uint32
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	User            []UserProperty
}

// Message is an application message as published.
//
// The engine takes ownership of Payload and the slices in Properties when
// the message is published, and shares them between every delivery: neither
// the publisher nor a receiver may modify them afterwards.
type Message struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	Properties MessageProperties
}

// Delivery is one outbound PUBLISH (or, when Release is set, one PUBREL)
// for the session's connection, as returned by Session.Next.
type Delivery struct {
	Message
	// PacketID identifies a QoS 1 or 2 delivery; it is 0 for QoS 0.
	PacketID uint16
	// DUP is set when the delivery repeats a PUBLISH sent on an earlier
	// connection of the session (MQTT 5 §4.4).
	DUP bool
	// Release is set when the receiver has already acknowledged the QoS 2
	// PUBLISH with PUBREC and only the PUBREL for PacketID is to be sent
	// again; the other fields are then zero.
	Release bool
	// SubscriptionIDs lists the identifiers of every subscription of this
	// session that matched (MQTT 5 §3.3.4).
	SubscriptionIDs []uint32
}

// Will is the message a session leaves behind when its connection ends
// without a normal disconnect (MQTT 5 §3.1.2.5, §3.1.3.2).
type Will struct {
	Message
	// Delay is the Will Delay Interval in seconds: the will fires at the
	// earlier of this delay and the end of the session, and not at all if the
	// client reconnects to the session before then.
	Delay uint32
}

// Subscription is one entry of a SUBSCRIBE request (MQTT 5 §3.8.3.1).
type Subscription struct {
	// Filter is a topic filter, possibly $share/{group}/{filter}.
	Filter string
	// QoS is the maximum QoS requested (0, 1 or 2) and granted.
	QoS byte
	// NoLocal stops messages this client publishes from coming back to it;
	// it is a protocol error on a shared subscription.
	NoLocal bool
	// RetainAsPublished keeps the RETAIN flag of forwarded messages; without
	// it the flag is cleared on normal forwarding.
	RetainAsPublished bool
	// RetainHandling says when retained messages are sent on subscribe:
	// 0 always, 1 only if the subscription did not exist, 2 never.
	RetainHandling byte
	// ID is the subscription identifier (1..268435455), or 0 for none.
	ID uint32
}

// MaxSubscriptionID is the largest subscription identifier, the largest
// variable byte integer (MQTT 5 §3.8.2.1.2).
const MaxSubscriptionID = 268435455

// message is the engine's immutable form of a published message, shared by
// every queue it is delivered to.
type message struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	props   MessageProperties // MessageExpiry is always nil; see expires
	expires time.Time         // zero: never expires
}

func newMessage(m *Message, now time.Time) *message {
	msg := &message{topic: m.Topic, payload: m.Payload, qos: m.QoS, retain: m.Retain, props: m.Properties}
	if e := m.Properties.MessageExpiry; e != nil {
		msg.expires = now.Add(time.Duration(*e) * time.Second)
		msg.props.MessageExpiry = nil
	}
	return msg
}

// expired reports whether the message's lifetime has passed at now.
func (m *message) expired(now time.Time) bool {
	return !m.expires.IsZero() && !now.Before(m.expires)
}

// public rebuilds the Message form for a receiver at now, with the remaining
// message expiry rounded up to whole seconds (MQTT 5 §3.3.2.3.3).
func (m *message) public(now time.Time) Message {
	out := Message{Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain, Properties: m.props}
	if !m.expires.IsZero() {
		left := m.expires.Sub(now)
		secs := uint32((left + time.Second - 1) / time.Second)
		if left <= 0 {
			secs = 0
		}
		out.Properties.MessageExpiry = &secs
	}
	return out
}
