// Package transport moves MQTT-SN datagrams between sensors and the
// gateway. Every link is a net.PacketConn: ReadFrom returns exactly one
// MQTT-SN packet and the net.Addr of its sender, WriteTo sends one.
//
// Three kinds of link exist:
//
//   - UDP (ListenUDP): IPv4, IPv6 or dual-stack sockets with a large
//     receive buffer, broadcast sends and multicast group membership for
//     ADVERTISE, SEARCHGW and GWINFO.
//   - Serial (OpenSerial): a serial port opened through go.bug.st/serial,
//     with pluggable framing: Raw (MQTT-SN packets back to back, delimited
//     by their own length field) or XBee (Digi API frames, mode 1 or 2).
//     A serial link reopens its port with capped exponential backoff when
//     the port disappears, for example when a USB adapter is unplugged.
//   - DTLS (ListenDTLS): DTLS 1.2 over one UDP socket, through
//     github.com/pion/dtls, with pre-shared keys or X.509 certificates and
//     cookie exchange; each association is one peer, and handshakes in
//     progress are bounded in total and per source address once their
//     client has echoed its cookie, and by a separate, self-renewing
//     bound before.
//
// Addresses: a UDP peer is a *net.UDPAddr; an XBee node is an XBeeAddr
// (64-bit and 16-bit network address); the single peer at the other end
// of a raw serial line is a SerialAddr naming the device; a DTLS peer is a
// DTLSAddr carrying its PSK identity or certificate subject, which the
// gateway uses as the client's identity for access control.
//
// Closing a link, or cancelling the context it was opened with, unblocks
// ReadFrom, which then returns an error matching net.ErrClosed.
package transport
