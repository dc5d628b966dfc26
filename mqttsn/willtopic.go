package mqttsn

import "fmt"

// WillTopic sends a connecting client's Will topic (MQTT-SN 1.2 §5.4.7).
//
//	Length (1|3) | MsgType 0x07 (1) | Flags (1) | WillTopic (1..n)
//	Length (1)   | MsgType 0x07 (1)                                  empty form
//
// Of the Flags only QoS and Retain are used. The empty WILLTOPIC (Topic
// "") is exactly 2 octets and deletes the stored Will topic and message. A
// WILLTOPIC with Flags but no topic decodes as the empty form, with QoS 0
// and Retain false, since the flags of an absent Will mean nothing.
type WillTopic struct {
	QoS    QoS // Will QoS
	Retain bool
	Topic  string
}

// Type returns TypeWillTopic.
func (*WillTopic) Type() MsgType { return TypeWillTopic }

// AppendTo appends the encoded message to b. QoS and Retain must be zero
// when Topic is empty.
func (p *WillTopic) AppendTo(b []byte) ([]byte, error) {
	return appendWillTopic(b, TypeWillTopic, p.QoS, p.Retain, p.Topic)
}

func (p *WillTopic) decode(r reader) reader {
	q, retain, topic := decodeWillTopic(&r)
	*p = WillTopic{QoS: q, Retain: retain, Topic: topic}
	return r
}

// WillTopicUpd updates the Will topic during a connection (MQTT-SN 1.2
// §5.4.22). Its layout and empty form are those of WillTopic.
//
//	Length (1|3) | MsgType 0x1A (1) | Flags (1) | WillTopic (1..n)
//	Length (1)   | MsgType 0x1A (1)                                  empty form
type WillTopicUpd struct {
	QoS    QoS // Will QoS
	Retain bool
	Topic  string
}

// Type returns TypeWillTopicUpd.
func (*WillTopicUpd) Type() MsgType { return TypeWillTopicUpd }

// AppendTo appends the encoded message to b. QoS and Retain must be zero
// when Topic is empty.
func (p *WillTopicUpd) AppendTo(b []byte) ([]byte, error) {
	return appendWillTopic(b, TypeWillTopicUpd, p.QoS, p.Retain, p.Topic)
}

func (p *WillTopicUpd) decode(r reader) reader {
	q, retain, topic := decodeWillTopic(&r)
	*p = WillTopicUpd{QoS: q, Retain: retain, Topic: topic}
	return r
}

func appendWillTopic(b []byte, t MsgType, q QoS, retain bool, topic string) ([]byte, error) {
	if topic == "" {
		if q != QoS0 || retain {
			return b, &FieldError{Type: t, Field: "flags", Err: fmt.Errorf("%w: the empty form has no flags", ErrInvalidField)}
		}
		return appendHeader(b, t, 0)
	}
	qb, err := qosBits(t, "flags", q)
	if err != nil {
		return b, err
	}
	b, err = appendHeader(b, t, 1+len(topic))
	if err != nil {
		return b, err
	}
	return append(append(b, qb|boolBit(retain, flagRetain)), topic...), nil
}

func decodeWillTopic(r *reader) (QoS, bool, string) {
	if r.len() == 0 {
		return QoS0, false, ""
	}
	flags := r.u8("flags")
	topic := r.rest()
	if len(topic) == 0 {
		return QoS0, false, ""
	}
	return qosFromFlags(flags), flags&flagRetain != 0, string(topic)
}
