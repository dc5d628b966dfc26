package mqttsn

// Register asks for, or announces, the topic id of a topic name (MQTT-SN
// 1.2 §5.4.10).
//
//	Length (1|3) | MsgType 0x0A (1) | TopicId (2) | MsgId (2) | TopicName (0..n)
//
// From a client TopicID is 0x0000; from a gateway it is the assigned id.
type Register struct {
	TopicID   uint16
	MsgID     uint16
	TopicName string
}

// Type returns TypeRegister.
func (*Register) Type() MsgType { return TypeRegister }

// AppendTo appends the encoded message to b.
func (p *Register) AppendTo(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeRegister, 4+len(p.TopicName))
	if err != nil {
		return b, err
	}
	return append(appendUint16(appendUint16(b, p.TopicID), p.MsgID), p.TopicName...), nil
}

func (p *Register) decode(r reader) reader {
	*p = Register{TopicID: r.u16("topic id"), MsgID: r.u16("msg id"), TopicName: string(r.rest())}
	return r
}

// RegAck acknowledges a REGISTER (MQTT-SN 1.2 §5.4.11).
//
//	Length (1) | MsgType 0x0B (1) | TopicId (2) | MsgId (2) | ReturnCode (1)
type RegAck struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Type returns TypeRegAck.
func (*RegAck) Type() MsgType { return TypeRegAck }

// AppendTo appends the encoded message to b.
func (p *RegAck) AppendTo(b []byte) ([]byte, error) {
	return appendTopicAck(b, TypeRegAck, p.TopicID, p.MsgID, p.ReturnCode)
}

func (p *RegAck) decode(r reader) reader {
	*p = RegAck{TopicID: r.u16("topic id"), MsgID: r.u16("msg id"), ReturnCode: ReturnCode(r.u8("return code"))}
	return r
}

// appendTopicAck encodes REGACK and PUBACK, which share a layout.
func appendTopicAck(b []byte, t MsgType, topicID, msgID uint16, rc ReturnCode) ([]byte, error) {
	b, err := appendHeader(b, t, 5)
	if err != nil {
		return b, err
	}
	return append(appendUint16(appendUint16(b, topicID), msgID), byte(rc)), nil
}
