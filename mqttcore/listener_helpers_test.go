package mqttcore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// ioTimeout bounds every read a test makes, so a broken broker fails the
// test instead of hanging it. It is a deadlock guard, not a timing claim.
const ioTimeout = 10 * time.Second

// server is a broker serving one listener on loopback.
type server struct {
	b      *mqttcore.Broker
	addr   string
	port   string
	l      net.Listener
	served chan error // Serve's result
}

// serveBroker starts a broker (with $SYS off unless opts ask for it) and
// a TCP listener on 127.0.0.1:0; both are closed when the test ends.
func serveBroker(t testing.TB, opts *mqttcore.Options, lopts mqttcore.ListenerOptions) *server {
	t.Helper()
	if opts == nil {
		opts = &mqttcore.Options{}
	}
	if opts.SysInterval == 0 {
		opts.SysInterval = -1
	}
	b, err := mqttcore.New(opts)
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	return serveOn(t, b, l, lopts)
}

func serveOn(t testing.TB, b *mqttcore.Broker, l net.Listener, lopts mqttcore.ListenerOptions) *server {
	t.Helper()
	s := &server{b: b, addr: l.Addr().String(), l: l, served: make(chan error, 1)}
	_, s.port, _ = net.SplitHostPort(s.addr)
	go func() { s.served <- b.Serve(l, lopts) }()
	t.Cleanup(func() {
		_ = l.Close()
		select {
		case err := <-s.served:
			assert.NoError(t, err)
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after its listener closed")
		}
		assert.NoError(t, b.Close(context.Background()))
	})
	return s
}

// eventually waits until cond holds, checking the broker's own state on a
// ticker: the way tests learn that a client has subscribed or gone,
// instead of sleeping.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, ioTimeout, 2*time.Millisecond, "waiting for %s", what)
}

// waitSubscriptions waits until the broker holds n subscriptions.
func (s *server) waitSubscriptions(t *testing.T, n int64) {
	t.Helper()
	eventually(t, strconv.FormatInt(n, 10)+" subscriptions", func() bool { return s.b.Stats().Subscriptions == n })
}

// waitConnected waits until n clients are connected.
func (s *server) waitConnected(t *testing.T, n int64) {
	t.Helper()
	eventually(t, strconv.FormatInt(n, 10)+" connected clients", func() bool { return s.b.Stats().ClientsConnected == n })
}

// rawClient speaks MQTT with the packet codec, for tests that need exact
// control over what goes on the wire.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
	v  packet.Version
}

func dialRaw(t *testing.T, addr string, v packet.Version) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
}

// connectRaw dials and connects, requiring a successful CONNACK.
func connectRaw(t *testing.T, addr string, v packet.Version, cp *packet.ConnectPacket) (*rawClient, *packet.ConnackPacket) {
	t.Helper()
	c := dialRaw(t, addr, v)
	c.send(cp)
	ack := c.expect(packet.Connack).(*packet.ConnackPacket)
	require.Equal(t, packet.Success, ack.ReasonCode, "CONNACK")
	return c, ack
}

func (c *rawClient) send(p packet.Packet) {
	c.t.Helper()
	b, err := packet.Append(nil, p, c.v)
	require.NoError(c.t, err)
	_, err = c.nc.Write(b)
	require.NoError(c.t, err)
}

func (c *rawClient) sendBytes(b []byte) {
	c.t.Helper()
	_, err := c.nc.Write(b)
	require.NoError(c.t, err)
}

// recv reads the next packet; it returns the read error for tests that
// expect the connection to end.
func (c *rawClient) recv() (packet.Packet, error) {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(ioTimeout)))
	v := c.v
	return packet.Read(c.br, v, 0)
}

// expect reads the next packet and requires it to be of type want.
func (c *rawClient) expect(want packet.Type) packet.Packet {
	c.t.Helper()
	p, err := c.recv()
	require.NoError(c.t, err, "waiting for %s", want)
	require.Equal(c.t, want, p.Type(), "got %#v", p)
	return p
}

// expectEOF requires an orderly close: end of stream, not a reset.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(ioTimeout)))
	_, err := io.Copy(io.Discard, c.br)
	require.NoError(c.t, err, "want EOF (orderly close), got an error")
}

// expectDisconnect requires a v5 DISCONNECT with rc followed by EOF.
func (c *rawClient) expectDisconnect(rc packet.ReasonCode) {
	c.t.Helper()
	d := c.expect(packet.Disconnect).(*packet.DisconnectPacket)
	assert.Equal(c.t, rc, d.ReasonCode, "DISCONNECT reason %s", d.ReasonCode)
	c.expectEOF()
}

// closed reports whether the connection ended (EOF or reset) without
// another packet.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	p, err := c.recv()
	require.Error(c.t, err, "want the connection closed, got %#v", p)
	assert.False(c.t, errors.Is(err, packet.ErrMalformed), "got %v", err)
}

func ptr[T any](v T) *T { return &v }

// v5 and v311 CONNECTs with a client id.
func connect5(id string) *packet.ConnectPacket {
	return &packet.ConnectPacket{ClientID: id, CleanStart: true}
}
