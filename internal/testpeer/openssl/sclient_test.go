package openssl_test

import (
	"context"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/archtest"
	"github.com/snwgw/snwgw/internal/testpeer/openssl"
	"github.com/snwgw/snwgw/transport"
)

// TestImports: the driver needs only the standard library and testpeer's
// lookup rule.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/internal/testpeer/openssl", "github.com/snwgw/snwgw/internal/testpeer")
}

var key = []byte("0123456789abcdef")

func listen(t *testing.T) *transport.DTLSConn {
	t.Helper()
	srv, err := transport.ListenDTLS(context.Background(), transport.DTLSOptions{
		Addr: "127.0.0.1:0",
		PSK:  map[string][]byte{"probe": key},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestBinaryRoundTrip sends bytes that a line-oriented reading would
// mangle (NUL, CR, LF, 0xFF) both ways through s_client -quiet.
func TestBinaryRoundTrip(t *testing.T) {
	srv := listen(t)
	c := openssl.Start(t, "-dtls1_2", "-quiet", "-connect", srv.LocalAddr().String(),
		"-psk_identity", "probe", "-psk", hex.EncodeToString(key))
	up := []byte{0x00, 0x0d, 0x0a, 0xff, 'Q', 0x00}
	c.Write(t, up)
	require.NoError(t, srv.SetReadDeadline(time.Now().Add(openssl.WaitTimeout)))
	buf := make([]byte, 64)
	n, from, err := srv.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, up, buf[:n], "one write, one datagram, unchanged")

	_, err = srv.WriteTo([]byte{0x03, 0x05, 0x00}, from)
	require.NoError(t, err)
	_, err = srv.WriteTo([]byte{0x0a, 0xff}, from)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x03, 0x05}, c.ReadFull(t, 2))
	assert.Equal(t, []byte{0x00, 0x0a, 0xff}, c.ReadFull(t, 3))
	assert.Equal(t, "\x03\x05\x00\x0a\xff", c.Stdout(), "with -quiet stdout carries the application data alone")
}

// TestWaitOutputAndExit waits for text in s_client's connection report,
// then for its exit after end of input.
func TestWaitOutputAndExit(t *testing.T) {
	srv := listen(t)
	c := openssl.Start(t, "-dtls1_2", "-connect", srv.LocalAddr().String(),
		"-psk_identity", "probe", "-psk", hex.EncodeToString(key), "-cipher", "PSK-AES128-CCM8")
	require.True(t, c.WaitOutput(t, "Cipher is PSK-AES128-CCM8"), "%s", c)
	c.CloseStdin(t)
	require.NoError(t, c.Wait(t), "%s", c)
	assert.False(t, c.WaitOutput(t, "Cipher is"), "already consumed")
	select {
	case <-c.Exited():
	default:
		t.Fatal("Exited not closed after Wait")
	}
}

// TestFailure: with nothing listening, s_client exits with an error, and
// a wait for output it never printed reports false instead of hanging.
func TestFailure(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	c := openssl.Start(t, "-dtls1_2", "-quiet", "-connect", addr, "-psk_identity", "probe", "-psk", hex.EncodeToString(key))
	assert.False(t, c.WaitOutput(t, "anything"))
	assert.Error(t, c.Wait(t), "%s", c)
}

func TestClientHello(t *testing.T) {
	hello := openssl.ClientHello(t, "-psk_identity", "probe", "-psk", hex.EncodeToString(key))
	// record: ContentType 22 handshake, ProtocolVersion 0xFEFx, Epoch 0,
	// SequenceNumber (6), Length (2); then HandshakeType 1 client_hello
	// (RFC 6347 §4.1, §4.2.2).
	require.Greater(t, len(hello), 13)
	assert.Equal(t, byte(22), hello[0])
	assert.Equal(t, byte(0xfe), hello[1])
	assert.Equal(t, []byte{0, 0}, hello[3:5])
	assert.Equal(t, byte(1), hello[13])
	assert.Equal(t, len(hello)-13, int(hello[11])<<8|int(hello[12]), "one record fills the datagram")
}
