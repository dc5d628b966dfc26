package mqttsn

import "fmt"

// Publish carries application data for a topic, in either direction
// (MQTT-SN 1.2 §5.4.12).
//
//	Length (1|3) | MsgType 0x0C (1) | Flags (1) | TopicId (2) | MsgId (2) | Data (0..n)
//
// The Flags use DUP, QoS, Retain and TopicIdType; TopicIdType 0b11 is a
// decoding error. TopicID holds a registered id (TopicNormal), a
// pre-defined id (TopicPredefined) or the two octets of a short topic name
// (TopicShort; see ShortTopicID and ShortTopicName). MsgID should be 0
// unless QoS is 1 or 2; the codec carries whatever value it is given.
//
// # Long topic names at QoS -1
//
// A PUBLISH with QoS -1 and TopicNormal uses the long-topic-name form that
// Paho introduced and MQTT-SN 2.0 documents as its legacy "PUBLISH with QoS
// -1" (appendix C.6): a sender without a connection has no registered ids,
// so the topic name travels in the message.
//
//	Length (1|3) | MsgType 0x0C (1) | Flags (1) | TopicName length (2) | MsgId (2) | TopicName | Data (0..n)
//
// In this form TopicName holds the name and TopicID is 0; in every other
// form TopicName must be empty.
type Publish struct {
	DUP         bool
	QoS         QoS
	Retain      bool
	TopicIDType TopicIDType
	TopicID     uint16
	MsgID       uint16
	TopicName   string // only in the long-topic-name form
	Data        []byte
}

// Type returns TypePublish.
func (*Publish) Type() MsgType { return TypePublish }

// LongTopic reports whether p uses the long-topic-name form, QoS -1 with
// TopicNormal.
func (p *Publish) LongTopic() bool { return p.QoS == QoSMinus1 && p.TopicIDType == TopicNormal }

// AppendTo appends the encoded message to b.
func (p *Publish) AppendTo(b []byte) ([]byte, error) {
	qb, err := qosBits(TypePublish, "flags", p.QoS)
	if err != nil {
		return b, err
	}
	tb, err := topicTypeBits(TypePublish, p.TopicIDType)
	if err != nil {
		return b, err
	}
	topicField := p.TopicID
	switch {
	case p.LongTopic() && p.TopicID != 0:
		return b, &FieldError{Type: TypePublish, Field: "topic id", Err: fmt.Errorf("%w: QoS -1 with a normal topic carries a topic name, not an id", ErrInvalidTopic)}
	case p.LongTopic() && len(p.TopicName) > maxLength:
		return b, &FieldError{Type: TypePublish, Field: "topic name", Err: fmt.Errorf("%w: %d octets", ErrTooLarge, len(p.TopicName))}
	case p.LongTopic():
		topicField = uint16(len(p.TopicName))
	case p.TopicName != "":
		return b, &FieldError{Type: TypePublish, Field: "topic name", Err: fmt.Errorf("%w: a topic name needs QoS -1 with a normal topic", ErrInvalidTopic)}
	}
	b, err = appendHeader(b, TypePublish, 5+len(p.TopicName)+len(p.Data))
	if err != nil {
		return b, err
	}
	b = append(b, boolBit(p.DUP, flagDUP)|qb|boolBit(p.Retain, flagRetain)|tb)
	b = appendUint16(appendUint16(b, topicField), p.MsgID)
	return append(append(b, p.TopicName...), p.Data...), nil
}

func (p *Publish) decode(r reader) reader {
	flags := r.u8("flags")
	tt := TopicIDType(flags & flagTopicType)
	if r.err == nil && tt > TopicShort {
		r.fail("flags", ErrReservedTopicIDType)
	}
	q := qosFromFlags(flags)
	topicID := r.u16("topic id")
	msgID := r.u16("msg id")
	var name []byte
	if q == QoSMinus1 && tt == TopicNormal {
		name = r.bytes("topic name", int(topicID))
		topicID = 0
	}
	*p = Publish{
		DUP:         flags&flagDUP != 0,
		QoS:         q,
		Retain:      flags&flagRetain != 0,
		TopicIDType: tt,
		TopicID:     topicID,
		MsgID:       msgID,
		TopicName:   string(name),
		Data:        r.rest(),
	}
	return r
}

// PubAck acknowledges a QoS 1 PUBLISH, or rejects a PUBLISH of any QoS
// (MQTT-SN 1.2 §5.4.13).
//
//	Length (1) | MsgType 0x0D (1) | TopicId (2) | MsgId (2) | ReturnCode (1)
type PubAck struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Type returns TypePubAck.
func (*PubAck) Type() MsgType { return TypePubAck }

// AppendTo appends the encoded message to b.
func (p *PubAck) AppendTo(b []byte) ([]byte, error) {
	return appendTopicAck(b, TypePubAck, p.TopicID, p.MsgID, p.ReturnCode)
}

func (p *PubAck) decode(r reader) reader {
	*p = PubAck{TopicID: r.u16("topic id"), MsgID: r.u16("msg id"), ReturnCode: ReturnCode(r.u8("return code"))}
	return r
}
