// Package mqttsn is the MQTT-SN 1.2 wire format: one type per message,
// decoding of whole datagrams and append-style encoding. It does no I/O
// and keeps no state beyond the reusable Parser, so gateways, simulators
// and fuzzers can share it.
//
// # Framing
//
// Every message starts with a Length field of 1 octet, or of 3 octets
// (0x01 followed by a big-endian uint16) for messages longer than 255
// octets (MQTT-SN 1.2 §5.2.1). Length counts the whole message, itself
// included. Parse takes exactly one datagram and requires Length to equal
// its size; it accepts the 3-octet form for messages of any size. The
// encoders write the shortest form, so a message decoded from a
// non-canonical 3-octet header encodes to the 1-octet form.
//
// The forwarder encapsulation (type 0xFE, §5.5) is the one exception: its
// 1-octet Length counts only up to the end of the Wireless Node Id, and
// exactly one well-framed MQTT-SN message follows.
//
// # Decoding
//
// Parse returns a Packet that owns its memory. Parser reuses one struct
// per message type and returns byte fields that alias the input, for hot
// paths that process one datagram at a time. Strings are always copies.
//
// Errors wrap the exported sentinels (ErrShortPacket, ErrLengthMismatch,
// ErrUnknownType, ErrUnsupportedProtocol, …) and, for a problem in a
// field, come as a *FieldError naming the message and the field, so
// callers can match them with errors.Is and errors.As. Input never
// causes a panic.
//
// Flag bits a message does not use are ignored on decode and written as
// zero on encode (Table 4 and the per-message sections of §5.4 say which
// bits each message uses). Decoding normalises equivalent wire forms so
// that decode, encode and decode again gives the same Packet: for
// instance a WILLTOPIC with Flags but no topic decodes to the empty
// WILLTOPIC.
//
// The codec checks the wire format only. Protocol rules that depend on
// the direction or state of a conversation (which QoS values a message may
// carry, reserved topic ids 0x0000 and 0xFFFF, ClientId length) belong to
// the gateway or client.
//
// # Encoding
//
// Every message type has AppendTo, which appends the whole message
// (Length, MsgType and body) and rejects values the wire format cannot
// carry with a *FieldError wrapping a sentinel such as ErrInvalidQoS or
// ErrTooLarge. On error the buffer is returned unchanged.
package mqttsn
