package openssl

import (
	"errors"
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

// AnswerHelloVerify plays clients that receive at their addresses: on
// each socket it reads the HelloVerifyRequest and sends hello again with
// its cookie, as RFC 6347 §4.2.1 asks, so that the server takes the
// handshake up. It never goes further.
func AnswerHelloVerify(tb testing.TB, socks []*net.UDPConn, hello []byte) {
	tb.Helper()
	buf := make([]byte, 2048)
	for i, s := range socks {
		if err := s.SetReadDeadline(time.Now().Add(WaitTimeout)); err != nil {
			tb.Fatalf("openssl: %v", err)
		}
		n, from, err := s.ReadFrom(buf)
		if err != nil {
			tb.Fatalf("socket %d of the flood got no HelloVerifyRequest: %v", i, err)
		}
		cookie, ok := helloVerifyCookie(buf[:n])
		if !ok {
			tb.Fatalf("socket %d of the flood got % x, not a HelloVerifyRequest", i, buf[:n])
		}
		again, err := WithCookie(hello, cookie)
		if err != nil {
			tb.Fatalf("openssl: %v", err)
		}
		if _, err := s.WriteTo(again, from); err != nil {
			tb.Fatalf("openssl: socket %d: %v", i, err)
		}
	}
}

// helloVerifyCookie returns the cookie of a HelloVerifyRequest: record
// header (13), handshake header (12, type 3), server_version (2), cookie
// length (1), cookie.
func helloVerifyCookie(p []byte) ([]byte, bool) {
	const at = 13 + 12 + 2
	if len(p) <= at || p[0] != 22 || p[13] != 3 || len(p) < at+1+int(p[at]) {
		return nil, false
	}
	return p[at+1 : at+1+int(p[at])], true
}

// WithCookie returns the second ClientHello of a cookie exchange: hello,
// a first ClientHello in one record and one fragment, with cookie in its
// cookie field, message_seq 1 and record sequence number 1 (RFC 6347
// §4.2.1, §4.2.2).
//
//	record (13): type, version (2), epoch (2), sequence (6), length (2)
//	handshake (12): type, length (3), message_seq (2), offset (3), fragment length (3)
//	body: client_version (2), random (32), session_id <0..32>, cookie <0..255>, ...
func WithCookie(hello, cookie []byte) ([]byte, error) {
	const rec, hs = 13, 12
	if len(hello) < rec+hs+35 || hello[0] != 22 || hello[rec] != 1 {
		return nil, errors.New("openssl: not a ClientHello")
	}
	body := hello[rec+hs:]
	at := 34 + 1 + int(body[34]) // the cookie's length octet
	if len(body) <= at || len(body) < at+1+int(body[at]) {
		return nil, errors.New("openssl: ClientHello too short")
	}
	nb := append(append(append([]byte{}, body[:at]...), byte(len(cookie))), cookie...)
	nb = append(nb, body[at+1+int(body[at]):]...)
	out := append([]byte{}, hello[:rec]...)
	copy(out[5:11], []byte{0, 0, 0, 0, 0, 1})
	out[11], out[12] = byte((hs+len(nb))>>8), byte(hs+len(nb))
	l := len(nb)
	out = append(out, 1, byte(l>>16), byte(l>>8), byte(l), 0, 1, 0, 0, 0, byte(l>>16), byte(l>>8), byte(l))
	return append(out, nb...), nil
}
