package main

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
)

// syncBuffer is a log sink that tests may read while serve writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `snwgw serve` with args until the test ends and returns
// the running server.
func startServe(t *testing.T, args ...string) (*server, *syncBuffer) {
	t.Helper()
	if !slices.Contains(args, "--mqtt") {
		// Never the default TCP port 1883: something else may hold it.
		args = append(args, "--mqtt", "127.0.0.1:0")
	}
	return startServeAsIs(t, args...)
}

// startServeAsIs is startServe without the added --mqtt, for a
// configuration whose own [[broker.listener]] tables are under test (an
// --mqtt flag replaces them).
func startServeAsIs(t *testing.T, args ...string) (*server, *syncBuffer) {
	t.Helper()
	if !slices.Contains(args, "--data-dir") && !slices.Contains(args, "--no-persistence") {
		// Never the working directory's snwgw-data.
		args = append(args, "--data-dir", t.TempDir())
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *server, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- runServe(ctx, args, logs, func(s *server) { ready <- s }) }()
	var srv *server
	select {
	case srv = <-ready:
	case err := <-done:
		cancel()
		require.NoError(t, err, "serve failed to start; log:\n%s", logs)
	}
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		assert.Contains(t, logs.String(), "snwgw stopped")
	})
	return srv, logs
}

// udpClient speaks raw MQTT-SN to the gateway over loopback UDP.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
	gw   *net.UDPAddr
}

func dialUDP(t *testing.T, gw net.Addr) *udpClient {
	t.Helper()
	return dialUDPFrom(t, gw, net.IPv4(127, 0, 0, 1))
}

// dialUDPFrom binds the client to ip, such as another address of the
// loopback network, so it can play a device elsewhere.
func dialUDPFrom(t *testing.T, gw net.Addr, ip net.IP) *udpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &udpClient{t: t, conn: conn, gw: gw.(*net.UDPAddr)}
}

func (c *udpClient) send(p mqttsn.Packet) {
	c.t.Helper()
	b, err := mqttsn.Append(nil, p)
	require.NoError(c.t, err)
	_, err = c.conn.WriteToUDP(b, c.gw)
	require.NoError(c.t, err)
}

// next reads the gateway's next message; the deadline only bounds a test
// whose gateway has stopped answering.
func (c *udpClient) next() mqttsn.Packet {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 2048)
	n, err := c.conn.Read(buf)
	require.NoError(c.t, err)
	p, err := mqttsn.Parse(buf[:n])
	require.NoError(c.t, err)
	return p
}

// none requires that nothing from the gateway is waiting to be read.
func (c *udpClient) none() {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now()))
	buf := make([]byte, 2048)
	n, err := c.conn.Read(buf)
	require.Error(c.t, err, "unexpected datagram % x", buf[:n])
}

func TestServeOverUDP(t *testing.T) {
	srv, logs := startServe(t, "--udp", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--log-level", "debug")
	require.Len(t, srv.udp, 1)
	gw := srv.udp[0].LocalAddr()

	sub := dialUDP(t, gw)
	sub.send(&mqttsn.Connect{ClientID: "sub", Duration: 60, CleanSession: true})
	require.Equal(t, &mqttsn.ConnAck{}, sub.next())
	sub.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "serve/test"})
	ack := sub.next().(*mqttsn.SubAck)
	require.Equal(t, mqttsn.Accepted, ack.ReturnCode)

	pub := dialUDP(t, gw)
	pub.send(&mqttsn.Connect{ClientID: "pub", Duration: 60, CleanSession: true})
	require.Equal(t, &mqttsn.ConnAck{}, pub.next())
	pub.send(&mqttsn.Register{MsgID: 1, TopicName: "serve/test"})
	reg := pub.next().(*mqttsn.RegAck)
	pub.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: 2, Data: []byte("hello")})
	assert.Equal(t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: 2}, pub.next())

	p := sub.next().(*mqttsn.Publish)
	assert.Equal(t, ack.TopicID, p.TopicID)
	assert.Equal(t, []byte("hello"), p.Data)
	sub.send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})

	assert.Contains(t, logs.String(), "mqtt-sn client connected")
	assert.Contains(t, logs.String(), "client=sub")
}

func TestServeRejectsBadFlagsAndConfig(t *testing.T) {
	var out bytes.Buffer
	err := runServe(context.Background(), []string{"--log-level", "loud"}, &out, nil)
	var u usageError
	assert.ErrorAs(t, err, &u)
	err = runServe(context.Background(), []string{"--config", "/nonexistent/gateway.toml"}, &out, nil)
	assert.ErrorContains(t, err, "/nonexistent/gateway.toml")
	err = runServe(context.Background(), []string{"--udp", "localhost:1883"}, &out, nil)
	assert.Error(t, err, "a host name is not an address to listen on")
}
