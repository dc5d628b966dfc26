package mqttsn

import (
	"errors"
	"strings"
)

// Decoding errors. A gateway drops the datagram (and may log it); none of
// them is worth a reply, except ErrUnsupportedProtocol, which a gateway can
// answer with CONNACK RejectedNotSupported.
var (
	// ErrShortPacket means the datagram ends before the header or a field.
	ErrShortPacket = errors.New("mqttsn: packet too short")
	// ErrInvalidLength means the Length field holds a value no message can
	// have: a first octet of 0x00, a 3-octet length below 4, or the 3-octet
	// form on an encapsulated message.
	ErrInvalidLength = errors.New("mqttsn: invalid length field")
	// ErrLengthMismatch means the Length field and the datagram size differ.
	ErrLengthMismatch = errors.New("mqttsn: length field does not match datagram size")
	// ErrTrailingBytes means octets follow the last field of a message whose
	// size is fixed.
	ErrTrailingBytes = errors.New("mqttsn: unexpected octets after the last field")
	// ErrUnknownType means the MsgType is reserved.
	ErrUnknownType = errors.New("mqttsn: unknown message type")
	// ErrUnsupportedProtocol means a CONNECT carries a ProtocolId other than
	// 0x01 (§5.3.8), for instance from an MQTT-SN 2.0 client. Answer it with
	// CONNACK RejectedNotSupported.
	ErrUnsupportedProtocol = errors.New("mqttsn: unsupported protocol id")
	// ErrReservedTopicIDType means a message that uses TopicIdType carries
	// 0b11 (decoding), or a TopicIDType is above TopicShort (encoding).
	ErrReservedTopicIDType = errors.New("mqttsn: reserved topic id type")
	// ErrNestedEncapsulation means an encapsulated message wraps another
	// encapsulated message, which §5.5 does not provide for.
	ErrNestedEncapsulation = errors.New("mqttsn: nested encapsulation")
)

// Encoding errors: the packet holds a value the wire format cannot carry,
// which is a bug in the caller.
var (
	// ErrTooLarge means the message is longer than 65535 octets, or a node id
	// does not fit the 1-octet length of the encapsulation.
	ErrTooLarge = errors.New("mqttsn: message too large")
	// ErrInvalidQoS means a QoS is outside -1..2.
	ErrInvalidQoS = errors.New("mqttsn: invalid QoS")
	// ErrInvalidShortTopic means a short topic name is not exactly 2 octets.
	ErrInvalidShortTopic = errors.New("mqttsn: short topic name must be 2 octets")
	// ErrInvalidTopic means the topic fields do not match the topic id type,
	// for instance a TopicName on a PUBLISH that carries a topic id.
	ErrInvalidTopic = errors.New("mqttsn: topic fields do not match the topic id type")
	// ErrInvalidField means another value cannot be encoded, such as a
	// Duration without HasDuration or a radius above 3.
	ErrInvalidField = errors.New("mqttsn: field value cannot be encoded")
)

// FieldError reports a problem with one field of one message, in decoding
// or in encoding. Err is, or wraps, one of the package's sentinels.
type FieldError struct {
	Type  MsgType // message type
	Field string  // field name, such as "topic id"; empty for the message as a whole
	Err   error
}

// Error returns, for example, "mqttsn: PUBLISH topic id: packet too short".
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("mqttsn: ")
	b.WriteString(e.Type.String())
	if e.Field != "" {
		b.WriteByte(' ')
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "mqttsn: "))
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }
