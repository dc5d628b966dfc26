package mqttsn

import "fmt"

// MsgType is the MsgType octet of a message (MQTT-SN 1.2 §5.2.2, Table 3).
type MsgType byte

// Message types of MQTT-SN 1.2. PUBCOMP, PUBREC and PUBREL are not
// numbered in MQTT order; 0x03, 0x11, 0x19, 0x1E–0xFD and 0xFF are
// reserved.
const (
	TypeAdvertise     MsgType = 0x00
	TypeSearchGW      MsgType = 0x01
	TypeGWInfo        MsgType = 0x02
	TypeConnect       MsgType = 0x04
	TypeConnAck       MsgType = 0x05
	TypeWillTopicReq  MsgType = 0x06
	TypeWillTopic     MsgType = 0x07
	TypeWillMsgReq    MsgType = 0x08
	TypeWillMsg       MsgType = 0x09
	TypeRegister      MsgType = 0x0A
	TypeRegAck        MsgType = 0x0B
	TypePublish       MsgType = 0x0C
	TypePubAck        MsgType = 0x0D
	TypePubComp       MsgType = 0x0E
	TypePubRec        MsgType = 0x0F
	TypePubRel        MsgType = 0x10
	TypeSubscribe     MsgType = 0x12
	TypeSubAck        MsgType = 0x13
	TypeUnsubscribe   MsgType = 0x14
	TypeUnsubAck      MsgType = 0x15
	TypePingReq       MsgType = 0x16
	TypePingResp      MsgType = 0x17
	TypeDisconnect    MsgType = 0x18
	TypeWillTopicUpd  MsgType = 0x1A
	TypeWillTopicResp MsgType = 0x1B
	TypeWillMsgUpd    MsgType = 0x1C
	TypeWillMsgResp   MsgType = 0x1D
	// TypeEncapsulated is the forwarder encapsulation (§5.5).
	TypeEncapsulated MsgType = 0xFE
)

var typeNames = [...]string{
	TypeAdvertise:     "ADVERTISE",
	TypeSearchGW:      "SEARCHGW",
	TypeGWInfo:        "GWINFO",
	TypeConnect:       "CONNECT",
	TypeConnAck:       "CONNACK",
	TypeWillTopicReq:  "WILLTOPICREQ",
	TypeWillTopic:     "WILLTOPIC",
	TypeWillMsgReq:    "WILLMSGREQ",
	TypeWillMsg:       "WILLMSG",
	TypeRegister:      "REGISTER",
	TypeRegAck:        "REGACK",
	TypePublish:       "PUBLISH",
	TypePubAck:        "PUBACK",
	TypePubComp:       "PUBCOMP",
	TypePubRec:        "PUBREC",
	TypePubRel:        "PUBREL",
	TypeSubscribe:     "SUBSCRIBE",
	TypeSubAck:        "SUBACK",
	TypeUnsubscribe:   "UNSUBSCRIBE",
	TypeUnsubAck:      "UNSUBACK",
	TypePingReq:       "PINGREQ",
	TypePingResp:      "PINGRESP",
	TypeDisconnect:    "DISCONNECT",
	TypeWillTopicUpd:  "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP",
	TypeWillMsgUpd:    "WILLMSGUPD",
	TypeWillMsgResp:   "WILLMSGRESP",
}

// String returns the message name as the specification spells it, or
// "reserved (0xNN)".
func (t MsgType) String() string {
	if t == TypeEncapsulated {
		return "ENCAPSULATED"
	}
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("reserved (0x%02x)", byte(t))
}

// QoS is a quality of service level. The wire value 0b11 is QoS -1, the
// publish without connection of §6.8.
type QoS int8

// QoS levels (MQTT-SN 1.2 §5.3.4).
const (
	QoSMinus1 QoS = -1
	QoS0      QoS = 0
	QoS1      QoS = 1
	QoS2      QoS = 2
)

// String returns "QoS -1", "QoS 0", "QoS 1" or "QoS 2", or "invalid QoS N".
func (q QoS) String() string {
	if q < QoSMinus1 || q > QoS2 {
		return fmt.Sprintf("invalid QoS %d", int8(q))
	}
	return fmt.Sprintf("QoS %d", int8(q))
}

// TopicIDType says what a topic field carries (MQTT-SN 1.2 §5.3.4).
type TopicIDType byte

// Topic id types. In PUBLISH TopicNormal means a registered topic id; in
// SUBSCRIBE and UNSUBSCRIBE it means a topic name. The value 0b11 is
// reserved.
const (
	TopicNormal     TopicIDType = 0b00
	TopicPredefined TopicIDType = 0b01
	TopicShort      TopicIDType = 0b10
)

// String returns "normal", "predefined", "short" or "reserved (0xNN)".
func (t TopicIDType) String() string {
	switch t {
	case TopicNormal:
		return "normal"
	case TopicPredefined:
		return "predefined"
	case TopicShort:
		return "short"
	}
	return fmt.Sprintf("reserved (0x%02x)", byte(t))
}

// ReturnCode is the ReturnCode field (MQTT-SN 1.2 §5.3.10, Table 5). It
// implements error, so a rejection can be returned as an error and matched
// with errors.Is.
type ReturnCode byte

// Return codes; 0x04–0xFF are reserved.
const (
	Accepted               ReturnCode = 0x00
	RejectedCongestion     ReturnCode = 0x01
	RejectedInvalidTopicID ReturnCode = 0x02
	RejectedNotSupported   ReturnCode = 0x03
)

// String returns the meaning of the code as Table 5 gives it, or
// "reserved (0xNN)".
func (c ReturnCode) String() string {
	switch c {
	case Accepted:
		return "accepted"
	case RejectedCongestion:
		return "rejected: congestion"
	case RejectedInvalidTopicID:
		return "rejected: invalid topic ID"
	case RejectedNotSupported:
		return "rejected: not supported"
	}
	return fmt.Sprintf("reserved (0x%02x)", byte(c))
}

// Error returns the code's meaning with the package prefix.
func (c ReturnCode) Error() string { return "mqttsn: " + c.String() }

// ShortTopicID returns the TopicId field value that carries the short topic
// name (MQTT-SN 1.2 §3, §6.7), which must be exactly 2 octets.
func ShortTopicID(name string) (uint16, error) {
	if len(name) != 2 {
		return 0, fmt.Errorf("%w: %q has %d", ErrInvalidShortTopic, name, len(name))
	}
	return uint16(name[0])<<8 | uint16(name[1]), nil
}

// ShortTopicName returns the 2-octet short topic name carried in a TopicId
// field value.
func ShortTopicName(id uint16) string {
	return string([]byte{byte(id >> 8), byte(id)})
}

// Packet is one MQTT-SN message.
type Packet interface {
	// Type returns the message type.
	Type() MsgType
	// AppendTo appends the whole encoded message (Length in its shortest
	// form, MsgType and body) to b. If the packet cannot be encoded it
	// returns b unchanged and an error wrapping one of the sentinels.
	AppendTo(b []byte) ([]byte, error)
}

// Append appends the encoded message p to b; see Packet.AppendTo.
func Append(b []byte, p Packet) ([]byte, error) {
	if p == nil {
		return b, fmt.Errorf("%w: nil packet", ErrInvalidField)
	}
	return p.AppendTo(b)
}

// Flags octet bits (MQTT-SN 1.2 §5.3.4, Table 4).
const (
	flagDUP       = 0x80
	flagQoSShift  = 5
	flagRetain    = 0x10
	flagWill      = 0x08
	flagClean     = 0x04
	flagTopicType = 0x03
)

// qosFromFlags extracts the QoS bits of a Flags octet.
func qosFromFlags(f byte) QoS {
	if q := (f >> flagQoSShift) & 0b11; q != 0b11 {
		return QoS(q)
	}
	return QoSMinus1
}

// qosBits returns q in the position of the Flags octet.
func qosBits(t MsgType, field string, q QoS) (byte, error) {
	switch q {
	case QoS0, QoS1, QoS2:
		return byte(q) << flagQoSShift, nil
	case QoSMinus1:
		return 0b11 << flagQoSShift, nil
	}
	return 0, &FieldError{Type: t, Field: field, Err: fmt.Errorf("%w: %d", ErrInvalidQoS, int8(q))}
}

// topicTypeBits checks a TopicIDType for encoding.
func topicTypeBits(t MsgType, tt TopicIDType) (byte, error) {
	if tt > TopicShort {
		return 0, &FieldError{Type: t, Field: "topic id type", Err: fmt.Errorf("%w: %d", ErrReservedTopicIDType, byte(tt))}
	}
	return byte(tt), nil
}

func boolBit(v bool, bit byte) byte {
	if v {
		return bit
	}
	return 0
}
