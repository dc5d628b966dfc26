package client

import (
	"context"
	"net"
	"testing"
	"testing/synctest"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGW plays the gateway's side of scripted conversations from the test
// goroutine, over a memconn.Conn or a real UDP socket.
type fakeGW struct {
	t      *testing.T
	conn   net.PacketConn
	client net.Addr // where send goes; learnt from the first datagram if nil
	node   []byte   // when set, every message is encapsulated for this node
	radius uint8
	trace  []traced // every datagram, in order
}

// traced is a datagram as it was on the wire.
type traced struct {
	b          []byte
	fromClient bool
}

// recv reads the next datagram from the client and parses it, removing
// and checking the encapsulation if the gateway expects one.
func (g *fakeGW) recv() mqttsn.Packet {
	g.t.Helper()
	buf := make([]byte, maxDatagram)
	n, from, err := g.conn.ReadFrom(buf)
	require.NoError(g.t, err, "gateway read")
	if g.client == nil {
		g.client = from
	}
	g.trace = append(g.trace, traced{b: append([]byte(nil), buf[:n]...), fromClient: true})
	p, err := mqttsn.Parse(buf[:n])
	require.NoError(g.t, err, "gateway parse % x", buf[:n])
	if g.node != nil {
		e, ok := p.(*mqttsn.Encapsulated)
		require.True(g.t, ok, "want an encapsulated message, got %v", p.Type())
		assert.Equal(g.t, g.node, e.NodeID, "node id")
		assert.Equal(g.t, g.radius, e.Radius, "radius")
		p, err = mqttsn.Parse(e.Message)
		require.NoError(g.t, err)
	}
	return p
}

// expect reads the next message and checks it equals want.
func (g *fakeGW) expect(want mqttsn.Packet) mqttsn.Packet {
	g.t.Helper()
	got := g.recv()
	assert.Equal(g.t, want, got)
	return got
}

// send writes p to the client, encapsulated if the gateway expects that.
func (g *fakeGW) send(p mqttsn.Packet) {
	g.t.Helper()
	b, err := mqttsn.Append(nil, p)
	require.NoError(g.t, err)
	if g.node != nil {
		b, err = (&mqttsn.Encapsulated{Radius: g.radius, NodeID: g.node, Message: b}).AppendTo(nil)
		require.NoError(g.t, err)
	}
	g.sendRaw(b)
}

func (g *fakeGW) sendRaw(b []byte) {
	g.t.Helper()
	require.NotNil(g.t, g.client, "the client has not sent anything yet")
	g.trace = append(g.trace, traced{b: append([]byte(nil), b...)})
	_, err := g.conn.WriteTo(b, g.client)
	require.NoError(g.t, err)
}

// memLink returns two Conns on a fresh in-memory network. When the test
// ends it checks that no datagram went to an address nobody listens on,
// so a datagram sent astray fails the test instead of vanishing.
func memLink(t *testing.T, a, b string) (*memconn.Conn, *memconn.Conn) {
	t.Helper()
	n := memconn.NewNetwork()
	t.Cleanup(func() { assert.Zero(t, n.Dropped.Load(), "datagrams dropped by the in-memory network") })
	return n.Listen(a), n.Listen(b)
}

// harness is a Client on a memconn.Conn with a fakeGW on the other end, and
// the messages and lost-session errors the Client reported.
type harness struct {
	t    *testing.T
	c    *Client
	gw   *fakeGW
	gwc  *memconn.Conn
	msgs chan Message
	lost chan error
}

// newHarness dials a Client with opts (Handler and OnConnectionLost are
// filled in) and closes it when the test ends. Call it inside
// synctest.Test.
func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	cc, gc := memLink(t, "client", "gateway")
	h := &harness{t: t, gwc: gc, msgs: make(chan Message, 64), lost: make(chan error, 4)}
	h.gw = &fakeGW{t: t, conn: gc, client: cc.LocalAddr()}
	if opts.Forwarder != nil {
		h.gw.node, h.gw.radius = opts.Forwarder.NodeID, opts.Forwarder.Radius
	}
	opts.Handler = func(m Message) { h.msgs <- m }
	opts.OnConnectionLost = func(err error) { h.lost <- err }
	c, err := Dial(cc, gc.LocalAddr(), opts)
	require.NoError(t, err)
	h.c = c
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return h
}

// run calls f on its own goroutine and returns a channel with its error.
func run(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// connect runs Connect against a gateway that accepts at once.
func (h *harness) connect() {
	h.t.Helper()
	done := run(func() error { return h.c.Connect(context.Background()) })
	h.gw.recv() // client --CONNECT--> GW
	h.gw.send(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
	require.NoError(h.t, <-done)
	require.Equal(h.t, StateActive, h.c.State())
}

// quiet checks, once every goroutine of the bubble is blocked, that the
// client sent nothing more and delivered nothing more.
func (h *harness) quiet() {
	h.t.Helper()
	synctest.Wait()
	assert.Zero(h.t, h.gwc.Pending(), "client sent unexpected datagrams")
	assert.Zero(h.t, len(h.msgs), "unexpected deliveries")
}
