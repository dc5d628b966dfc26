package mqttsn

import "fmt"

// Subscribe asks for the messages of a topic (MQTT-SN 1.2 §5.4.15).
//
//	Length (1|3) | MsgType 0x12 (1) | Flags (1) | MsgId (2) | TopicName (0..n)   TopicNormal
//	Length (1)   | MsgType 0x12 (1) | Flags (1) | MsgId (2) | TopicId (2)        TopicPredefined
//	Length (1)   | MsgType 0x12 (1) | Flags (1) | MsgId (2) | short name (2)     TopicShort
//
// The Flags use DUP, QoS (requested) and TopicIdType; TopicIdType 0b11 is
// a decoding error. TopicName holds the topic name, which may contain
// wildcards (TopicNormal); TopicID holds the pre-defined id
// (TopicPredefined) or the two octets of a short topic name (TopicShort),
// exactly as in Publish (see ShortTopicID and ShortTopicName). The field
// the topic id type does not use must be empty.
type Subscribe struct {
	DUP         bool
	QoS         QoS
	TopicIDType TopicIDType
	MsgID       uint16
	TopicName   string
	TopicID     uint16
}

// Type returns TypeSubscribe.
func (*Subscribe) Type() MsgType { return TypeSubscribe }

// AppendTo appends the encoded message to b.
func (p *Subscribe) AppendTo(b []byte) ([]byte, error) {
	qb, err := qosBits(TypeSubscribe, "flags", p.QoS)
	if err != nil {
		return b, err
	}
	return appendTopicRef(b, TypeSubscribe, boolBit(p.DUP, flagDUP)|qb, p.TopicIDType, p.MsgID, p.TopicName, p.TopicID)
}

func (p *Subscribe) decode(r reader) reader {
	flags := r.u8("flags")
	msgID := r.u16("msg id")
	tt, name, id := decodeTopicRef(&r, flags)
	*p = Subscribe{
		DUP:         flags&flagDUP != 0,
		QoS:         qosFromFlags(flags),
		TopicIDType: tt,
		MsgID:       msgID,
		TopicName:   name,
		TopicID:     id,
	}
	return r
}

// Unsubscribe cancels a subscription (MQTT-SN 1.2 §5.4.17). Its layout and
// topic fields are those of Subscribe; of the Flags only TopicIdType is
// used.
//
//	Length (1|3) | MsgType 0x14 (1) | Flags (1) | MsgId (2) | TopicName (0..n) or TopicId (2)
type Unsubscribe struct {
	TopicIDType TopicIDType
	MsgID       uint16
	TopicName   string
	TopicID     uint16
}

// Type returns TypeUnsubscribe.
func (*Unsubscribe) Type() MsgType { return TypeUnsubscribe }

// AppendTo appends the encoded message to b.
func (p *Unsubscribe) AppendTo(b []byte) ([]byte, error) {
	return appendTopicRef(b, TypeUnsubscribe, 0, p.TopicIDType, p.MsgID, p.TopicName, p.TopicID)
}

func (p *Unsubscribe) decode(r reader) reader {
	flags := r.u8("flags")
	msgID := r.u16("msg id")
	tt, name, id := decodeTopicRef(&r, flags)
	*p = Unsubscribe{TopicIDType: tt, MsgID: msgID, TopicName: name, TopicID: id}
	return r
}

// appendTopicRef encodes SUBSCRIBE and UNSUBSCRIBE; flags holds the bits
// other than TopicIdType.
func appendTopicRef(b []byte, t MsgType, flags byte, tt TopicIDType, msgID uint16, name string, id uint16) ([]byte, error) {
	tb, err := topicTypeBits(t, tt)
	if err != nil {
		return b, err
	}
	switch {
	case tt != TopicNormal && name != "":
		return b, &FieldError{Type: t, Field: "topic name", Err: fmt.Errorf("%w: a %s topic has only an id", ErrInvalidTopic, tt)}
	case tt == TopicNormal && id != 0:
		return b, &FieldError{Type: t, Field: "topic id", Err: fmt.Errorf("%w: a %s topic has only a name", ErrInvalidTopic, tt)}
	}
	n := len(name)
	if tt != TopicNormal {
		n = 2
	}
	b, err = appendHeader(b, t, 3+n)
	if err != nil {
		return b, err
	}
	b = appendUint16(append(b, flags|tb), msgID)
	if tt != TopicNormal {
		return appendUint16(b, id), nil
	}
	return append(b, name...), nil
}

func decodeTopicRef(r *reader, flags byte) (tt TopicIDType, name string, id uint16) {
	switch tt = TopicIDType(flags & flagTopicType); tt {
	case TopicNormal:
		name = string(r.rest())
	case TopicPredefined, TopicShort:
		id = r.u16("topic id")
	default:
		r.fail("flags", ErrReservedTopicIDType)
	}
	return tt, name, id
}

// SubAck answers a SUBSCRIBE (MQTT-SN 1.2 §5.4.16).
//
//	Length (1) | MsgType 0x13 (1) | Flags (1) | TopicId (2) | MsgId (2) | ReturnCode (1)
//
// Of the Flags only QoS (the granted QoS) is used. TopicID is 0x0000 for a
// wildcard subscription.
type SubAck struct {
	QoS        QoS
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Type returns TypeSubAck.
func (*SubAck) Type() MsgType { return TypeSubAck }

// AppendTo appends the encoded message to b.
func (p *SubAck) AppendTo(b []byte) ([]byte, error) {
	qb, err := qosBits(TypeSubAck, "flags", p.QoS)
	if err != nil {
		return b, err
	}
	b, err = appendHeader(b, TypeSubAck, 6)
	if err != nil {
		return b, err
	}
	return append(appendUint16(appendUint16(append(b, qb), p.TopicID), p.MsgID), byte(p.ReturnCode)), nil
}

func (p *SubAck) decode(r reader) reader {
	*p = SubAck{
		QoS:        qosFromFlags(r.u8("flags")),
		TopicID:    r.u16("topic id"),
		MsgID:      r.u16("msg id"),
		ReturnCode: ReturnCode(r.u8("return code")),
	}
	return r
}

// UnsubAck answers an UNSUBSCRIBE; it has no return code (MQTT-SN 1.2
// §5.4.18).
//
//	Length (1) | MsgType 0x15 (1) | MsgId (2)
type UnsubAck struct {
	MsgID uint16
}

// Type returns TypeUnsubAck.
func (*UnsubAck) Type() MsgType { return TypeUnsubAck }

// AppendTo appends the encoded message to b.
func (p *UnsubAck) AppendTo(b []byte) ([]byte, error) { return appendMsgID(b, TypeUnsubAck, p.MsgID) }

func (p *UnsubAck) decode(r reader) reader {
	*p = UnsubAck{MsgID: r.u16("msg id")}
	return r
}
