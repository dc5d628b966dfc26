package packet

import "strconv"

// Type is the MQTT control packet type, the high nibble of the first byte of
// every packet (3.1.1 §2.2.1, 5.0 §2.1.2).
type Type byte

// Control packet types. 0 is reserved in both versions; 15 (AUTH) exists in
// MQTT 5 only and is reserved in 3.1.1.
const (
	Connect Type = iota + 1
	Connack
	Publish
	Puback
	Pubrec
	Pubrel
	Pubcomp
	Subscribe
	Suback
	Unsubscribe
	Unsuback
	Pingreq
	Pingresp
	Disconnect
	Auth
)

var typeNames = [...]string{
	Connect: "CONNECT", Connack: "CONNACK", Publish: "PUBLISH", Puback: "PUBACK",
	Pubrec: "PUBREC", Pubrel: "PUBREL", Pubcomp: "PUBCOMP", Subscribe: "SUBSCRIBE",
	Suback: "SUBACK", Unsubscribe: "UNSUBSCRIBE", Unsuback: "UNSUBACK", Pingreq: "PINGREQ",
	Pingresp: "PINGRESP", Disconnect: "DISCONNECT", Auth: "AUTH",
}

// String returns the name the specifications use, such as "PUBLISH".
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// requiredFlags holds the fixed header flags (low nibble) every type but
// PUBLISH must carry exactly; anything else is malformed (3.1.1 §2.2.2
// [MQTT-2.2.2-2], 5.0 §2.1.3 [MQTT-2.1.3-1]).
var requiredFlags = [16]byte{Pubrel: 0b0010, Subscribe: 0b0010, Unsubscribe: 0b0010}

// Version is the protocol level of a connection as a CONNECT carries it.
type Version byte

// Protocol versions. V31 is read (and written, for tests) so that old
// clients get a proper answer; it is handled like V311 after the CONNECT.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   Version = 5 // MQTT 5.0, protocol name "MQTT"
)

// String returns the version as people write it, such as "3.1.1".
func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// ProtocolName returns the protocol name a CONNECT of this version carries
// (3.1.1 §3.1.2.1, 5.0 §3.1.2.1), or "" for an unknown version.
func (v Version) ProtocolName() string {
	switch v {
	case V31:
		return "MQIsdp"
	case V311, V5:
		return "MQTT"
	}
	return ""
}

func (v Version) valid() bool { return v == V31 || v == V311 || v == V5 }

// Packet is one MQTT control packet. It is implemented by the pointer types
// of this package (*PublishPacket and so on), which Read returns and Append
// and Size take.
type Packet interface {
	// Type returns the control packet type.
	Type() Type
}

// encoder is what Append and Size need from a packet: the fixed header flags,
// the validated remaining length and the body.
type encoder interface {
	Packet
	// flags returns the low nibble of the first byte.
	flags() byte
	// size validates the packet for v and returns its remaining length.
	size(v Version) (int, error)
	// appendBody appends variable header and payload; only called after size
	// succeeded for the same version.
	appendBody(b []byte, v Version) []byte
}
