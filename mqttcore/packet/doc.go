// Package packet is the MQTT 3.1.1 and 5.0 wire format used by the broker
// core: one struct per control packet, Read to decode a packet from a
// connection and Append/Size to encode one, for both protocol versions and in
// both directions (server and client packets alike).
//
// It is standard library only, does no I/O beyond the bufio.Reader it is
// given, and keeps no state: the protocol version of a connection is passed
// to every call. Decoded packets own their memory. Every length read from the
// network is bounded before anything is allocated for it (see Read), and
// every rule of the specifications that can be checked on a single packet is
// checked in both directions, so Append never produces a packet that Read
// rejects.
//
// Errors wrap the sentinels ErrMalformed, ErrProtocolError,
// ErrPacketTooLarge, ErrUnsupportedVersion and ErrNotInVersion; ReasonFor
// turns any of them into the MQTT 5 reason code a server reports before it
// closes the connection.
//
// Where the specifications leave room, this package decides as follows:
//
//   - A property in a packet that may not carry it, or an unknown property,
//     is malformed (5.0 §2.2.2.2); a repeated single-valued property, an
//     out-of-range value (a flag other than 0 or 1, a zero Receive Maximum,
//     Maximum Packet Size, Topic Alias or Subscription Identifier) or
//     Authentication Data without a method is a protocol error.
//   - A reason code a packet may not carry (such as 0x92 in a PUBACK) is a
//     protocol error; so is a 3.1.1 CONNACK return code above 5.
//   - Packet identifier 0 is a protocol error wherever an identifier
//     appears, and so is DUP on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
//   - An empty topic name is a protocol error unless a v5 Topic Alias is
//     present. Wildcards in a topic name and the syntax of topic filters are
//     left to the broker, which answers them with reason codes 0x90 and
//     0x8F instead of closing the connection.
//   - A SUBACK, and a v5 UNSUBACK, without reason codes is a protocol error.
//   - Non-minimal Variable Byte Integers are accepted on reading; writing
//     always uses the shortest form, and the shortest packet form (a
//     2-byte-body PUBACK for Success without properties, a DISCONNECT
//     without body for normal disconnection). AUTH is written with a
//     property length whenever it has a reason code.
//   - MQTT 3.1 is read (protocol name "MQIsdp", level 3) and handled like
//     3.1.1 after the CONNECT.
//
// References are to OASIS MQTT Version 3.1.1 (2014) and MQTT Version 5.0
// (2019), written "3.1.1 §3.3.1" and "5.0 §2.2.2.2".
package packet
