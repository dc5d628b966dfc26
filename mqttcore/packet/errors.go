package packet

import "errors"

// Sentinel errors. Every error returned by Read, Append and Size wraps one of
// them (or, from Read, the reader's own error); match with errors.Is and turn
// into a reason code with ReasonFor.
var (
	// ErrMalformed means the bytes cannot be parsed as the packet they claim
	// to be (5.0 §4.13: reason 0x81). A server closes the connection, after
	// a v5 DISCONNECT 0x81.
	ErrMalformed = errors.New("packet: malformed packet")
	// ErrProtocolError means the packet parsed but holds data the protocol
	// does not allow (5.0 §4.13: reason 0x82). A server closes the
	// connection, after a v5 DISCONNECT 0x82.
	ErrProtocolError = errors.New("packet: protocol error")
	// ErrPacketTooLarge means the packet is larger than the maximum size
	// given to Read, or too large for MQTT at all when encoding (reason
	// 0x95).
	ErrPacketTooLarge = errors.New("packet: packet too large")
	// ErrUnsupportedVersion means a CONNECT asked for a protocol name and
	// level this package does not speak, or a call named an unknown Version.
	// A server answers with CONNACK 0x84 (3.1.1 return code 1).
	ErrUnsupportedVersion = errors.New("packet: unsupported protocol version")
	// ErrNotInVersion means a packet cannot be encoded for the requested
	// version because that version has no way to say it (an AUTH packet or
	// a failure reason code in a 3.1.1 PUBACK). It is a programming error
	// of the sender, never caused by network input.
	ErrNotInVersion = errors.New("packet: not expressible in this protocol version")
)

// ReasonFor returns the MQTT 5 reason code a server reports for err: the
// code of a wrapped ReasonCode, 0x81 for ErrMalformed, 0x82 for
// ErrProtocolError, 0x95 for ErrPacketTooLarge, 0x84 for
// ErrUnsupportedVersion, Success for nil and 0x80 (unspecified error) for
// anything else, including a truncated stream (io.ErrUnexpectedEOF), after
// which nothing can be sent anyway.
//
// On a first packet (Read with version 0) only ErrUnsupportedVersion leads
// to a CONNACK (5.0 §3.1.2.2, 3.1.1 §3.1.2.2); a server encodes that CONNACK
// for V311 when the client's level is unknown, which turns 0x84 into return
// code 1. Other errors on a CONNECT close the connection (v5 CONNACK with the
// code is allowed but optional).
func ReasonFor(err error) ReasonCode {
	var rc ReasonCode
	switch {
	case err == nil:
		return Success
	case errors.As(err, &rc):
		return rc
	case errors.Is(err, ErrMalformed):
		return MalformedPacket
	case errors.Is(err, ErrProtocolError):
		return ProtocolError
	case errors.Is(err, ErrPacketTooLarge):
		return PacketTooLarge
	case errors.Is(err, ErrUnsupportedVersion):
		return UnsupportedProtocolVersion
	default:
		return UnspecifiedError
	}
}
