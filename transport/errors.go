package transport

import "errors"

var (
	// ErrInvalidOptions reports a configuration that cannot work; fix the
	// options named in the wrapped message.
	ErrInvalidOptions = errors.New("transport: invalid options")

	// ErrPortUnavailable is returned by a serial link's WriteTo while the
	// port is closed and being reopened; the packet was not sent, and the
	// caller may retry later.
	ErrPortUnavailable = errors.New("transport: serial port unavailable")

	// ErrPayloadTooLarge is returned when a packet does not fit the link's
	// maximum frame payload; it was not sent.
	ErrPayloadTooLarge = errors.New("transport: payload too large for link")

	// ErrBadPacket is returned when a packet handed to a raw serial link is
	// not a single well-formed MQTT-SN packet (its length field must equal
	// its size), because the far end could not delimit it.
	ErrBadPacket = errors.New("transport: malformed MQTT-SN length")

	// ErrAddrType is returned when WriteTo is given an address of a type
	// that the link cannot send to.
	ErrAddrType = errors.New("transport: address type not supported by link")
)
