package transport

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer/openssl"
	"github.com/snwgw/snwgw/internal/testpki"
)

// A CONNECT of MQTT-SN client "sensor" (MQTT-SN 1.2 §5.4.4) and its CONNACK
// accepted (§5.4.5), as a gateway would exchange them.
var (
	snConnect = []byte{0x0c, 0x04, 0x04, 0x01, 0x00, 0x3c, 's', 'e', 'n', 's', 'o', 'r'}
	snConnack = []byte{0x03, 0x05, 0x00}
)

const testTimeout = 20 * time.Second

var (
	pskKey1 = []byte("0123456789abcdef")
	pskKey2 = []byte("fedcba9876543210fedcba98")
)

// events is a slog handler that hands the listener's log messages to the
// test, so it can wait for a handshake failure instead of sleeping.
type events struct{ ch chan string }

func newEvents() *events { return &events{ch: make(chan string, 4096)} }

// Enabled leaves out pion's per-record trace messages.
func (e *events) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	select {
	case e.ch <- r.Message:
	default:
	}
	return nil
}
func (e *events) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *events) WithGroup(string) slog.Handler      { return e }

// wait returns once msg has been logged.
func (e *events) wait(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case m := <-e.ch:
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("no %q logged", msg)
		}
	}
}

func listenDTLS(t *testing.T, opts DTLSOptions) *DTLSConn {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	c, err := ListenDTLS(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func port(c *DTLSConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// srvAddr is where a client on this machine reaches c.
func srvAddr(c *DTLSConn) *net.UDPAddr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port(c)}
}

// dialDTLS runs a Go DTLS client handshake from local to the listener.
func dialDTLS(t *testing.T, srv *DTLSConn, local string, opts ...dtls.ClientOption) (*dtls.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn := newClient(t, srv, local, opts...)
	return conn, conn.HandshakeContext(ctx)
}

// dialRefused runs a client handshake that the listener must refuse. A
// refused client does not always learn of it (an alert encrypted with
// keys it does not share is discarded), so the test waits for the
// listener's report and then gives up on the client.
func dialRefused(t *testing.T, srv *DTLSConn, ev *events, opts ...dtls.ClientOption) {
	t.Helper()
	conn := newClient(t, srv, "", opts...)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- conn.HandshakeContext(ctx) }()
	ev.wait(t, "DTLS handshake failed")
	cancel()
	require.Error(t, <-errc)
}

// newClient prepares a Go DTLS client from local (an IP address, "" for
// 127.0.0.1) to the listener.
func newClient(t *testing.T, srv *DTLSConn, local string, opts ...dtls.ClientOption) *dtls.Conn {
	t.Helper()
	conn, _ := newClientSocket(t, srv, local, opts...)
	return conn
}

// newClientSocket is newClient that also returns the client's UDP socket.
func newClientSocket(t *testing.T, srv *DTLSConn, local string, opts ...dtls.ClientOption) (*dtls.Conn, *net.UDPConn) {
	t.Helper()
	if local == "" {
		local = "127.0.0.1"
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(local)})
	if err != nil && local != "127.0.0.1" {
		t.Skipf("cannot bind %s: %v", local, err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	raddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port(srv)}
	conn, err := dtls.ClientWithOptions(pc, raddr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, pc
}

func pskClient(identity string, key []byte) []dtls.ClientOption {
	return []dtls.ClientOption{
		dtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8),
	}
}

func certClient(t *testing.T, p *testpki.PKI, certFile, keyFile string) []dtls.ClientOption {
	t.Helper()
	opts := []dtls.ClientOption{dtls.WithRootCAs(p.Pool()), dtls.WithServerName("127.0.0.1")}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		opts = append(opts, dtls.WithCertificates(cert))
	}
	return opts
}

// readFrom reads one packet from the listener, guarded by a deadline.
func readFrom(t *testing.T, srv *DTLSConn) ([]byte, DTLSAddr) {
	t.Helper()
	require.NoError(t, srv.SetReadDeadline(time.Now().Add(testTimeout)))
	buf := make([]byte, 2048)
	n, from, err := srv.ReadFrom(buf)
	require.NoError(t, err)
	addr, ok := from.(DTLSAddr)
	require.True(t, ok, "ReadFrom address is %T", from)
	return buf[:n], addr
}

// clientRead reads one packet on a Go DTLS client, guarded by a deadline.
func clientRead(t *testing.T, c *dtls.Conn) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(testTimeout)))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	require.NoError(t, err)
	return buf[:n]
}

func TestDTLSOpenSSLPSK(t *testing.T) {
	// openssl's choice, and the cipher suite of constrained devices
	// (RFC 7925 §4.2).
	for _, cipher := range []string{"", "PSK-AES128-CCM8"} {
		t.Run("cipher "+cipher, func(t *testing.T) { testOpenSSLPSK(t, cipher) })
	}
}

func testOpenSSLPSK(t *testing.T, cipher string) {
	ev := newEvents()
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1, "sensor-2": pskKey2}, Logger: slog.New(ev)})
	args := []string{"-dtls1_2", "-connect", "127.0.0.1:" + strconv.Itoa(port(srv)), "-psk_identity", "sensor-2", "-psk", hex.EncodeToString(pskKey2)}
	if cipher != "" {
		args = append(args, "-cipher", cipher)
	}
	s := openssl.Start(t, args...)
	s.Write(t, []byte("hello over dtls\n"))

	data, from := readFrom(t, srv)
	assert.Equal(t, "hello over dtls\n", string(data))
	assert.Equal(t, IdentityPSK, from.Kind)
	assert.Equal(t, "sensor-2", from.Identity)
	assert.Equal(t, "psk:sensor-2@"+from.AddrPort.String(), from.String())

	_, err := srv.WriteTo([]byte("reply-7f3a\n"), from)
	require.NoError(t, err)
	require.True(t, s.WaitOutput(t, "reply-7f3a"), "%s", s)

	// EOF on stdin makes s_client send close_notify, which ends the
	// association: the listener no longer has a peer to write to.
	s.CloseStdin(t)
	require.NoError(t, s.Wait(t), "%s", s)
	ev.wait(t, "DTLS association closed")
	_, err = srv.WriteTo([]byte("x"), from)
	require.ErrorIs(t, err, ErrNoAssociation)
	assert.Equal(t, uint64(1), srv.Stats().Handshakes)
	if cipher != "" {
		assert.Contains(t, s.Stdout(), "Cipher is "+cipher)
	}
}

func TestDTLSOpenSSLWrongPSK(t *testing.T) {
	ev := newEvents()
	// A wrong key shows only when the client's encrypted Finished cannot be
	// read, so the handshake fails at its timeout.
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}, Logger: slog.New(ev), HandshakeTimeout: time.Second})
	for _, tc := range []struct{ name, identity, key string }{
		{"wrong key", "sensor-1", hex.EncodeToString(pskKey2)},
		{"unknown identity", "intruder", hex.EncodeToString(pskKey1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openssl.Start(t, "-dtls1_2", "-connect", "127.0.0.1:"+strconv.Itoa(port(srv)),
				"-psk_identity", tc.identity, "-psk", tc.key)
			s.Write(t, []byte("let me in\n"))
			ev.wait(t, "DTLS handshake failed")
			// With a wrong key s_client cannot read the server's encrypted
			// alert and would retransmit for minutes; stop it.
			s.Kill(t)
		})
	}
	st := srv.Stats()
	assert.Equal(t, uint64(0), st.Handshakes)
	assert.Equal(t, uint64(2), st.HandshakeFailures)
	assert.Equal(t, uint64(0), st.PacketsIn, "nothing reached the gateway")
}

func TestDTLSOpenSSLCertificate(t *testing.T) {
	p := testpki.New(t, "site")
	srv := listenDTLS(t, DTLSOptions{Certificates: []tls.Certificate{p.ServerCert}, ClientCAs: p.Pool()})
	certFile, keyFile := p.Issue(t, "sensor-7", time.Now().Add(time.Hour), testpki.Client)
	s := openssl.Start(t, "-dtls1_2", "-connect", "127.0.0.1:"+strconv.Itoa(port(srv)),
		"-CAfile", p.CAFile, "-verify_return_error", "-cert", certFile, "-key", keyFile)
	s.Write(t, []byte("hello from a certificate\n"))

	data, from := readFrom(t, srv)
	assert.Equal(t, "hello from a certificate\n", string(data))
	assert.Equal(t, IdentityCertificate, from.Kind)
	assert.Equal(t, "sensor-7", from.Identity)
	_, err := srv.WriteTo([]byte("reply-c3\n"), from)
	require.NoError(t, err)
	require.True(t, s.WaitOutput(t, "reply-c3"), "%s", s)
	assert.Contains(t, s.Stdout(), "Verify return code: 0 (ok)")
}

func TestDTLSOpenSSLNoClientCertificate(t *testing.T) {
	ev := newEvents()
	p := testpki.New(t, "site")
	srv := listenDTLS(t, DTLSOptions{Certificates: []tls.Certificate{p.ServerCert}, ClientCAs: p.Pool(), Logger: slog.New(ev)})
	s := openssl.Start(t, "-dtls1_2", "-connect", "127.0.0.1:"+strconv.Itoa(port(srv)), "-CAfile", p.CAFile)
	s.Write(t, []byte("anonymous\n"))
	ev.wait(t, "DTLS handshake failed")
	require.Error(t, s.Wait(t), "s_client must fail:\n%s", s)
	st := srv.Stats()
	assert.Equal(t, uint64(0), st.PacketsIn)
	assert.Equal(t, uint64(0), st.Handshakes)
}

// TestDTLSMQTTSN carries MQTT-SN datagrams end to end between Go DTLS
// clients, two with pre-shared keys and one with a certificate, and the
// listener, checking that each reply reaches its own association.
func TestDTLSMQTTSN(t *testing.T) {
	p := testpki.New(t, "site")
	srv := listenDTLS(t, DTLSOptions{
		PSK:          map[string][]byte{"sensor-1": pskKey1, "sensor-2": pskKey2},
		Certificates: []tls.Certificate{p.ServerCert},
		ClientCAs:    p.Pool(),
	})
	certFile, keyFile := p.Issue(t, "sensor-3", time.Now().Add(time.Hour), testpki.Client)
	clients := map[string]*dtls.Conn{}
	for id, opts := range map[string][]dtls.ClientOption{
		"sensor-1": pskClient("sensor-1", pskKey1),
		"sensor-2": pskClient("sensor-2", pskKey2),
		"sensor-3": certClient(t, p, certFile, keyFile),
	} {
		c, err := dialDTLS(t, srv, "", opts...)
		require.NoError(t, err, id)
		clients[id] = c
	}
	for id, c := range clients {
		_, err := c.Write(append(snConnect, id...))
		require.NoError(t, err)
	}
	for range clients {
		data, from := readFrom(t, srv)
		assert.Equal(t, string(snConnect)+from.Identity, string(data), "packet from %s", from)
		_, err := srv.WriteTo(append(snConnack, from.Identity...), from)
		require.NoError(t, err)
	}
	for id, c := range clients {
		assert.Equal(t, string(snConnack)+id, string(clientRead(t, c)))
	}
	st := srv.Stats()
	assert.Equal(t, 3, st.Associations, "%+v", st)
	assert.Equal(t, 0, st.Pending, "%+v", st)
	assert.Equal(t, uint64(3), st.Handshakes)
	assert.Equal(t, uint64(3), st.PacketsIn)
	assert.Equal(t, uint64(3), st.PacketsOut)
}

func TestDTLSCertificateRefused(t *testing.T) {
	p := testpki.New(t, "site")
	other := testpki.New(t, "elsewhere")
	ev := newEvents()
	srv := listenDTLS(t, DTLSOptions{Certificates: []tls.Certificate{p.ServerCert}, ClientCAs: p.Pool(), Logger: slog.New(ev)})
	expiredCert, expiredKey := p.Issue(t, "expired", time.Now().Add(-time.Hour), testpki.Client)
	strangerCert, strangerKey := other.Issue(t, "stranger", time.Now().Add(time.Hour), testpki.Client)
	for _, tc := range []struct{ name, cert, key string }{
		{"expired", expiredCert, expiredKey},
		{"untrusted", strangerCert, strangerKey},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialRefused(t, srv, ev, certClient(t, p, tc.cert, tc.key)...)
		})
	}
	st := srv.Stats()
	assert.Equal(t, uint64(0), st.Handshakes)
	assert.Equal(t, uint64(3), st.HandshakeFailures)
}

func TestDTLSWrongPSKGoClient(t *testing.T) {
	ev := newEvents()
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}, Logger: slog.New(ev), HandshakeTimeout: time.Second})
	dialRefused(t, srv, ev, pskClient("sensor-1", pskKey2)...)
	dialRefused(t, srv, ev, pskClient("intruder", pskKey1)...)
	assert.Equal(t, uint64(2), srv.Stats().HandshakeFailures)
	// The right key still works afterwards.
	c, err := dialDTLS(t, srv, "", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	data, from := readFrom(t, srv)
	assert.Equal(t, snConnect, data)
	assert.Equal(t, "sensor-1", from.Identity)
}

// clientHello captures the first datagram of a Go DTLS client: a real
// ClientHello without a cookie.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, b)
	defer a.Close()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	conn, err := dtls.ClientWithOptions(a, sink.LocalAddr(), pskClient("flood", pskKey1)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.HandshakeContext(ctx)
	}()
	require.NoError(t, sink.SetReadDeadline(time.Now().Add(testTimeout)))
	buf := make([]byte, 2048)
	n, _, err := sink.ReadFrom(buf)
	cancel()
	<-done
	_ = conn.Close()
	require.NoError(t, err)
	require.True(t, isClientHello(buf[:n]))
	return buf[:n]
}

// TestDTLSCookielessFlood floods the listener with ClientHellos that
// never answer their HelloVerifyRequest, from many ports of the very
// address a real client then uses, more of them than the listener keeps
// waiting: they take no pending slot, and openssl s_client connects.
func TestDTLSCookielessFlood(t *testing.T) {
	const flood, maxUnverified = 100, 16
	srv := listenDTLS(t, DTLSOptions{
		PSK:                  map[string][]byte{"sensor-1": pskKey1},
		MaxPendingHandshakes: 8,
		MaxPendingPerIP:      4,
		MaxUnverified:        maxUnverified,
		// Longer than the test: a handshake that held a slot would hold
		// it throughout.
		HandshakeTimeout: 5 * time.Minute,
	})
	openssl.Flood(t, srvAddr(srv), "127.0.0.1", flood, clientHello(t))

	s := openssl.Start(t, "-dtls1_2", "-connect", "127.0.0.1:"+strconv.Itoa(port(srv)),
		"-psk_identity", "sensor-1", "-psk", hex.EncodeToString(pskKey1))
	s.Write(t, []byte("through the flood\n"))
	data, from := readFrom(t, srv)
	assert.Equal(t, "through the flood\n", string(data))
	assert.Equal(t, "sensor-1", from.Identity)

	// The listener reads in order: the flood came first, and each
	// ClientHello beyond maxUnverified, s_client's own included, ended the
	// oldest wait.
	st := srv.Stats()
	assert.Equal(t, 0, st.Pending, "%+v", st)
	assert.Equal(t, 1, st.Associations, "%+v", st)
	assert.Equal(t, maxUnverified-1, st.Unverified, "%+v", st)
	assert.Equal(t, uint64(flood+1-maxUnverified), st.Evicted, "%+v", st)
	assert.Zero(t, st.HandshakesDropped, "%+v", st)
}

func TestDTLSHandshakeFloodPerIP(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{
		PSK:                  map[string][]byte{"sensor-1": pskKey1},
		MaxPendingHandshakes: 64,
		MaxPendingPerIP:      4,
	})
	hello := clientHello(t)
	// Fifty ClientHellos, ten of which answer with their cookie: only
	// those can take a pending slot, and only four of them do.
	socks := openssl.Flood(t, srvAddr(srv), "127.0.0.1", 50, hello)
	openssl.AnswerHelloVerify(t, socks[:10], hello)

	// A legitimate client from another address is served while the
	// flood's handshakes are pending. The listener reads datagrams in
	// order, so the whole flood has been judged by the time it is through.
	c, err := dialDTLS(t, srv, "127.0.0.2", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	data, from := readFrom(t, srv)
	assert.Equal(t, snConnect, data)
	assert.Equal(t, "sensor-1", from.Identity)

	st := srv.Stats()
	assert.Equal(t, 4, st.Pending, "pending handshakes bounded per IP: %+v", st)
	assert.Equal(t, uint64(6), st.HandshakesDropped, "%+v", st)
	assert.Equal(t, 46, st.Unverified, "the unanswered and the refused wait: %+v", st)
	assert.Equal(t, 1, st.Associations, "%+v", st)
}

func TestDTLSHandshakeFloodTotal(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{
		PSK:                  map[string][]byte{"sensor-1": pskKey1},
		MaxPendingHandshakes: 8,
		MaxPendingPerIP:      4,
		// Short, so that the slots come back within the test.
		HandshakeTimeout: 2 * time.Second,
	})
	hello := clientHello(t)
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		socks := openssl.Flood(t, srvAddr(srv), ip, 10, hello)
		openssl.AnswerHelloVerify(t, socks, hello)
	}
	// Four from each of the first two addresses took the eight slots; the
	// third address found none. The listener reads in order, so a
	// datagram sent after the flood is read after it: the dropped count
	// is final once a stray datagram is counted.
	stray, err := net.DialUDP("udp", nil, srvAddr(srv))
	require.NoError(t, err)
	defer stray.Close()
	_, err = stray.Write(snConnect)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return srv.Stats().Ignored == 1 }, testTimeout, time.Millisecond)
	st := srv.Stats()
	assert.Equal(t, 8, st.Pending, "%+v", st)
	assert.Equal(t, uint64(22), st.HandshakesDropped, "%+v", st)

	// The slots come back when the flood's handshakes time out.
	require.Eventually(t, func() bool { return srv.Stats().Pending == 0 }, testTimeout, 10*time.Millisecond)
	assert.Equal(t, uint64(8), srv.Stats().HandshakeFailures, "the answered handshakes timed out")
	c, err := dialDTLS(t, srv, "127.0.0.4", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	data, _ := readFrom(t, srv)
	assert.Equal(t, snConnect, data)
}

// TestDTLSCookieMismatch sends ClientHellos with cookies the listener did
// not send to their address: they take no slot and do not disturb the
// handshake waiting there, which goes on when the right cookie comes.
func TestDTLSCookieMismatch(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}})
	hello := clientHello(t)
	sock := openssl.Flood(t, srvAddr(srv), "127.0.0.1", 1, hello)[0]
	require.NoError(t, sock.SetReadDeadline(time.Now().Add(testTimeout)))
	buf := make([]byte, 2048)
	n, _, err := sock.ReadFrom(buf)
	require.NoError(t, err)
	cookie, ok := helloVerifyCookie(buf[:n])
	require.True(t, ok, "% x is not a HelloVerifyRequest", buf[:n])

	wrong := append([]byte{}, cookie...)
	wrong[0] ^= 0xFF
	forged, err := openssl.WithCookie(hello, wrong)
	require.NoError(t, err)
	_, err = sock.WriteTo(forged, srvAddr(srv))
	require.NoError(t, err)
	// The same from an address the listener sent nothing to.
	openssl.Flood(t, srvAddr(srv), "127.0.0.1", 1, forged)

	right, err := openssl.WithCookie(hello, cookie)
	require.NoError(t, err)
	_, err = sock.WriteTo(right, srvAddr(srv))
	require.NoError(t, err)
	// The handshake goes on: the ServerHello flight comes back.
	n, _, err = sock.ReadFrom(buf)
	require.NoError(t, err)
	require.True(t, n > 13 && buf[0] == 22 && buf[13] == 2, "% x is not a ServerHello", buf[:n])

	st := srv.Stats()
	assert.Equal(t, uint64(2), st.CookieMismatch, "%+v", st)
	assert.Equal(t, 1, st.Pending, "%+v", st)
	assert.Equal(t, 0, st.Unverified, "%+v", st)
}

func TestDTLSMaxAssociations(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1, "sensor-2": pskKey2}, MaxAssociations: 1})
	c, err := dialDTLS(t, srv, "", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	// The second client's ClientHellos find no room; it gives up.
	c2 := newClient(t, srv, "", pskClient("sensor-2", pskKey2)...)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	require.Error(t, c2.HandshakeContext(ctx))
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	_, from := readFrom(t, srv)
	assert.Equal(t, "sensor-1", from.Identity)
	// The listener reads in order: the refused ClientHellos came first.
	assert.NotZero(t, srv.Stats().HandshakesDropped)
	assert.Equal(t, 1, srv.Stats().Associations)
}

func TestDTLSIgnoresStrayDatagrams(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}})
	s, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port(srv)})
	require.NoError(t, err)
	defer s.Close()
	// Plain MQTT-SN and an application-data record are not handshakes.
	for _, p := range [][]byte{snConnect, {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0}, {22}} {
		_, err = s.Write(p)
		require.NoError(t, err)
	}
	c, err := dialDTLS(t, srv, "", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	readFrom(t, srv)
	assert.Equal(t, uint64(3), srv.Stats().Ignored)
}

func TestDTLSAdmit(t *testing.T) {
	var mu sync.Mutex
	var asked []netip.AddrPort
	srv := listenDTLS(t, DTLSOptions{
		PSK: map[string][]byte{"sensor-1": pskKey1},
		Admit: func(ap netip.AddrPort) bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, ap)
			return ap.Addr() != netip.MustParseAddr("127.0.0.1")
		},
	})
	openssl.Flood(t, srvAddr(srv), "127.0.0.1", 3, clientHello(t))
	c, err := dialDTLS(t, srv, "127.0.0.2", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	readFrom(t, srv)
	assert.Equal(t, uint64(3), srv.Stats().HandshakesDropped)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, asked, 4, "asked once per new sender, not per datagram")
}

func TestDTLSIdleTimeout(t *testing.T) {
	ev := newEvents()
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}, IdleTimeout: 200 * time.Millisecond, Logger: slog.New(ev)})
	c, err := dialDTLS(t, srv, "", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	_, from := readFrom(t, srv)
	// The listener closes the idle association with close_notify.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(testTimeout)))
	_, err = c.Read(make([]byte, 64))
	require.ErrorIs(t, err, io.EOF)
	assert.Equal(t, uint64(1), srv.Stats().Expired)
	ev.wait(t, "DTLS association closed")
	_, err = srv.WriteTo([]byte("x"), from)
	assert.ErrorIs(t, err, ErrNoAssociation)
}

// TestDTLSForgedRecords sends records that are not the peer's from the
// peer's own address: they are dropped, and the association lives on.
func TestDTLSForgedRecords(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}})
	c, pc := newClientSocket(t, srv, "", pskClient("sensor-1", pskKey1)...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, c.HandshakeContext(ctx))
	// One round trip first: until the server has finished its side of the
	// handshake, a clear-text alert at epoch 0 is legitimately part of it.
	_, err := c.Write(snConnect)
	require.NoError(t, err)
	readFrom(t, srv)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port(srv)}
	forged := [][]byte{
		// application_data, epoch 1, garbage ciphertext
		{23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		// a warning alert in clear text at epoch 0
		{21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 1, 0},
		// a fresh ClientHello
		clientHello(t),
		// not DTLS at all
		snConnect,
	}
	for _, p := range forged {
		_, err := pc.WriteTo(p, dst)
		require.NoError(t, err)
	}
	// The association must keep working. A record that crosses the forged
	// ClientHello in the association's state machine may be discarded on a
	// loaded machine, as a datagram may be on any link, so the client sends
	// again a bounded number of times, as an MQTT-SN client retransmits; a
	// killed association fails every attempt.
	var (
		data []byte
		from DTLSAddr
	)
	for attempt := 1; ; attempt++ {
		_, err := c.Write(snConnect)
		require.NoError(t, err)
		require.NoError(t, srv.SetReadDeadline(time.Now().Add(2*time.Second)))
		buf := make([]byte, 2048)
		n, a, err := srv.ReadFrom(buf)
		if err == nil {
			data, from = buf[:n], a.(DTLSAddr)
			break
		}
		require.Less(t, attempt, 5, "the association stopped working after forged records: %v", err)
	}
	assert.Equal(t, snConnect, data)
	assert.Equal(t, "sensor-1", from.Identity)
	_, err = srv.WriteTo(snConnack, from)
	require.NoError(t, err)
	assert.Equal(t, snConnack, clientRead(t, c))
	assert.Equal(t, 1, srv.Stats().Associations)
}

func TestDTLSClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := ListenDTLS(ctx, DTLSOptions{Addr: "127.0.0.1:0", PSK: map[string][]byte{"sensor-1": pskKey1}})
	require.NoError(t, err)
	c, err := dialDTLS(t, srv, "", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	readFrom(t, srv) // the association is established on both sides
	errc := make(chan error, 1)
	go func() {
		_, _, err := srv.ReadFrom(make([]byte, 64))
		errc <- err
	}()
	cancel() // closes the listener, which says goodbye to its peers
	require.ErrorIs(t, <-errc, net.ErrClosed)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(testTimeout)))
	_, err = c.Read(make([]byte, 64))
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, srv.Close(), "Close after cancel is harmless")
	_, err = srv.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	assert.ErrorIs(t, err, ErrNoAssociation)
}

func TestDTLSWriteToErrors(t *testing.T) {
	srv := listenDTLS(t, DTLSOptions{PSK: map[string][]byte{"sensor-1": pskKey1}})
	_, err := srv.WriteTo([]byte("x"), XBeeBroadcast)
	assert.ErrorIs(t, err, ErrAddrType)
	_, err = srv.WriteTo([]byte("x"), DTLSAddr{AddrPort: netip.MustParseAddrPort("127.0.0.1:9")})
	assert.ErrorIs(t, err, ErrNoAssociation)

	c, err := dialDTLS(t, srv, "", pskClient("sensor-1", pskKey1)...)
	require.NoError(t, err)
	_, err = c.Write(snConnect)
	require.NoError(t, err)
	_, from := readFrom(t, srv)
	impostor := from
	impostor.Identity = "sensor-9"
	_, err = srv.WriteTo(snConnack, impostor)
	assert.ErrorIs(t, err, ErrNoAssociation, "same UDP address, other identity")
	_, err = srv.WriteTo(snConnack, net.UDPAddrFromAddrPort(from.AddrPort))
	require.NoError(t, err)
	assert.Equal(t, snConnack, clientRead(t, c))
}

func TestDTLSOptionsValidate(t *testing.T) {
	p := testpki.New(t, "site")
	good := DTLSOptions{Addr: ":8883", PSK: map[string][]byte{"a": pskKey1}}
	require.NoError(t, good.Validate())
	for name, mutate := range map[string]func(o *DTLSOptions){
		"no address":       func(o *DTLSOptions) { o.Addr = "" },
		"bad network":      func(o *DTLSOptions) { o.Network = "tcp" },
		"no credentials":   func(o *DTLSOptions) { o.PSK = nil },
		"short key":        func(o *DTLSOptions) { o.PSK = map[string][]byte{"a": []byte("short")} },
		"empty identity":   func(o *DTLSOptions) { o.PSK = map[string][]byte{"": pskKey1} },
		"CAs without cert": func(o *DTLSOptions) { o.ClientCAs = p.Pool() },
		"negative timeout": func(o *DTLSOptions) { o.HandshakeTimeout = -time.Second },
		"negative pending": func(o *DTLSOptions) { o.MaxPendingHandshakes = -1 },
		"negative assocs":  func(o *DTLSOptions) { o.MaxAssociations = -1 },
		"tiny MTU":         func(o *DTLSOptions) { o.MTU = 100 },
	} {
		o := good
		mutate(&o)
		err := o.Validate()
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
		_, err = ListenDTLS(context.Background(), o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
}

func TestLoadDTLSCertificates(t *testing.T) {
	p := testpki.New(t, "site")
	certFile, keyFile := p.Issue(t, "gw2", time.Now().Add(time.Hour), testpki.Server)
	certs, pool, err := LoadDTLSCertificates(certFile, keyFile, p.CAFile)
	require.NoError(t, err)
	assert.Len(t, certs, 1)
	assert.NotNil(t, pool)
	_, pool, err = LoadDTLSCertificates(certFile, keyFile, "")
	require.NoError(t, err)
	assert.Nil(t, pool)
	_, _, err = LoadDTLSCertificates(certFile, certFile, "")
	assert.ErrorIs(t, err, ErrInvalidOptions)
	_, _, err = LoadDTLSCertificates(certFile, keyFile, keyFile)
	assert.ErrorIs(t, err, ErrInvalidOptions)
	_, _, err = LoadDTLSCertificates(certFile, keyFile, filepath.Join(t.TempDir(), "missing"))
	assert.True(t, errors.Is(err, ErrInvalidOptions) && errors.Is(err, os.ErrNotExist))
}

// BenchmarkDTLSRoundTrip measures one MQTT-SN datagram to the listener and
// one back over an established PSK association on loopback.
func BenchmarkDTLSRoundTrip(b *testing.B) {
	b.ReportAllocs()
	srv, err := ListenDTLS(context.Background(), DTLSOptions{Addr: "127.0.0.1:0", PSK: map[string][]byte{"sensor-1": pskKey1}})
	require.NoError(b, err)
	defer srv.Close()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(b, err)
	defer pc.Close()
	c, err := dtls.ClientWithOptions(pc, srv.LocalAddr(), pskClient("sensor-1", pskKey1)...)
	require.NoError(b, err)
	defer c.Close()
	require.NoError(b, c.HandshakeContext(context.Background()))
	buf := make([]byte, 256)
	cbuf := make([]byte, 256)
	for b.Loop() {
		if _, err := c.Write(snConnect); err != nil {
			b.Fatal(err)
		}
		n, from, err := srv.ReadFrom(buf)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := srv.WriteTo(buf[:n], from); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(cbuf); err != nil {
			b.Fatal(err)
		}
	}
}

func TestListenDTLSUnusableCertificate(t *testing.T) {
	for name, cert := range map[string]tls.Certificate{
		"no key":    {Certificate: [][]byte{{0x30}}},
		"no chain":  {PrivateKey: testpki.NewKey(t)},
		"not a key": {Certificate: [][]byte{{0x30}}, PrivateKey: "secret"},
	} {
		_, err := ListenDTLS(context.Background(), DTLSOptions{Addr: "127.0.0.1:0", Certificates: []tls.Certificate{cert}})
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
}
