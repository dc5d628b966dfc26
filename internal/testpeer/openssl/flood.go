package openssl

import (
	"net"
	"testing"
	"time"
)

// Flood sends hello (see ClientHello) to dst from n fresh UDP sockets
// bound to ip, a handshake flood from as many source ports, and returns
// the sockets, closed when the test ends. An ip other than 127.0.0.1
// that cannot be bound skips the test: not every system routes all of
// 127.0.0.0/8 to the loopback interface.
func Flood(tb testing.TB, dst *net.UDPAddr, ip string, n int, hello []byte) []*net.UDPConn {
	tb.Helper()
	socks := make([]*net.UDPConn, n)
	for i := range socks {
		s, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil && i == 0 && ip != "127.0.0.1" {
			tb.Skipf("cannot bind %s: %v", ip, err)
		}
		if err != nil {
			tb.Fatalf("openssl: flood from %s: %v", ip, err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		if _, err := s.WriteTo(hello, dst); err != nil {
			tb.Fatalf("openssl: flood from %s: %v", ip, err)
		}
		socks[i] = s
	}
	return socks
}

// ExpectHelloVerify requires a HelloVerifyRequest (RFC 6347 §4.2.1) on
// each socket: the cookie exchange, which costs the server nothing but a
// reply, and shows it took the ClientHello up as a pending handshake.
func ExpectHelloVerify(tb testing.TB, socks []*net.UDPConn) {
	tb.Helper()
	buf := make([]byte, 2048)
	for i, s := range socks {
		if err := s.SetReadDeadline(time.Now().Add(WaitTimeout)); err != nil {
			tb.Fatalf("openssl: %v", err)
		}
		n, _, err := s.ReadFrom(buf)
		if err != nil {
			tb.Fatalf("socket %d of the flood got no HelloVerifyRequest: %v", i, err)
		}
		// Record header (13 octets), then HandshakeType 3.
		if n <= 13 || buf[0] != 22 || buf[13] != 3 {
			tb.Fatalf("socket %d of the flood got % x, not a HelloVerifyRequest", i, buf[:n])
		}
	}
}
