package gateway

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// injectConn is a PacketConn for benchmarks: datagrams are handed to the
// gateway from any number of made-up UDP addresses, and what the gateway
// writes is counted and discarded, so a benchmark measures the gateway and
// not a network.
type injectConn struct {
	in      chan injected
	closed  chan struct{}
	once    sync.Once
	written atomic.Int64
	reply   chan struct{} // if set, receives a token per write
	replies chan []byte   // if set, receives a copy of each write
}

type injected struct {
	b  []byte
	ap netip.AddrPort
}

func newInjectConn() *injectConn {
	return &injectConn{in: make(chan injected, 1024), closed: make(chan struct{})}
}

func (c *injectConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		return copy(b, d.b), d.ap, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *injectConn) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	c.written.Add(1)
	if c.reply != nil {
		c.reply <- struct{}{}
	}
	if c.replies != nil {
		c.replies <- append([]byte(nil), b...)
	}
	return len(b), nil
}

func (c *injectConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	return n, net.UDPAddrFromAddrPort(ap), err
}
func (c *injectConn) WriteTo(b []byte, a net.Addr) (int, error) {
	return c.WriteToUDPAddrPort(b, a.(*net.UDPAddr).AddrPort())
}
func (c *injectConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *injectConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1883}
}
func (c *injectConn) SetDeadline(t time.Time) error      { return nil }
func (c *injectConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *injectConn) SetWriteDeadline(t time.Time) error { return nil }

func encode(tb testing.TB, p mqttsn.Packet) []byte {
	b, err := mqttsn.Append(nil, p)
	require.NoError(tb, err)
	return b
}

func clientAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
}

// countingConsumer counts notifications and drains its session.
type countingConsumer struct{ ch chan struct{} }

func (c *countingConsumer) Notify() {
	select {
	case c.ch <- struct{}{}:
	default:
	}
}
func (c *countingConsumer) Disconnected(mqttcore.ReasonCode) {}

// BenchmarkPublishQoS0 measures the per-message hot path: a registered
// client's QoS 0 PUBLISH read from the link, decoded, routed through the
// broker and taken by an in-process subscriber.
func BenchmarkPublishQoS0(b *testing.B) { benchPublish(b, 1, mqttsn.QoS0) }

// BenchmarkPublishQoS0Clients spreads the messages round robin over 1,000
// registered clients, as in the ingest scenario of snwgw bench: each shard
// then holds hundreds of sessions in its timer heap and the address map,
// which one client does not show.
func BenchmarkPublishQoS0Clients(b *testing.B) { benchPublish(b, 1000, mqttsn.QoS0) }

// BenchmarkPublishQoS1 is BenchmarkPublishQoS0 at QoS 1: each message is
// answered PUBACK, the path that waits for a durable store's commit.
func BenchmarkPublishQoS1(b *testing.B) { benchPublish(b, 1, mqttsn.QoS1) }

func benchPublish(b *testing.B, clients int, qos mqttsn.QoS) {
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(b, err)
	require.NoError(b, broker.Start(context.Background()))
	defer broker.Close(context.Background())
	g, err := New(broker, &Options{})
	require.NoError(b, err)
	defer g.Close(context.Background())
	conn := newInjectConn()
	conn.reply = make(chan struct{}, 16)
	require.NoError(b, g.Serve(Link{Name: "bench", Conn: conn}))

	// The subscriber drains in its own goroutine, as an MQTT client would.
	cons := &countingConsumer{ch: make(chan struct{}, 1)}
	sub, _, err := broker.Connect(mqttcore.ConnectOptions{ClientID: "sub", CleanStart: true, Consumer: cons, MaxQueued: 1 << 20})
	require.NoError(b, err)
	_, err = sub.Subscribe(mqttcore.Subscription{Filter: "bench/#"})
	require.NoError(b, err)
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range cons.ch {
			for {
				if _, ok := sub.Next(); !ok {
					break
				}
				got.Add(1)
			}
		}
	}()

	for i := range clients {
		ap := clientAddr(i)
		conn.in <- injected{encode(b, &mqttsn.Connect{ClientID: fmt.Sprintf("c%d", i), Duration: 600, CleanSession: true}), ap}
		<-conn.reply
		conn.in <- injected{encode(b, &mqttsn.Register{MsgID: 1, TopicName: fmt.Sprintf("bench/%d", i)}), ap}
		<-conn.reply
	}
	conn.reply = nil
	pub := encode(b, &mqttsn.Publish{QoS: qos, TopicID: 1, MsgID: 1, Data: make([]byte, 32)})
	if qos == mqttsn.QoS0 {
		pub = encode(b, &mqttsn.Publish{TopicID: 1, Data: make([]byte, 32)})
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		conn.in <- injected{pub, clientAddr(i % clients)}
	}
	// Wait until every message has reached the subscriber.
	for got.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	close(cons.ch)
	<-done
}

// TestMemoryPerIdleClient measures the heap held by idle MQTT-SN clients:
// each connected, with one registered topic and one subscription, which is
// what a typical sensor leaves behind. It reports bytes per client and
// fails above 2 KiB (the gateway must hold 100,000 clients on a Raspberry
// Pi). Run with -v to see the figure.
func TestMemoryPerIdleClient(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("connects 100,000 clients; memory is measured without -short and -race (make bench)")
	}
	const n = 100_000
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, broker.Start(context.Background()))
	defer broker.Close(context.Background())
	g, err := New(broker, &Options{})
	require.NoError(t, err)
	defer g.Close(context.Background())
	conn := newInjectConn()
	conn.replies = make(chan []byte, 16)
	require.NoError(t, g.Serve(Link{Name: "mem", Conn: conn}))
	// Each client waits for every answer, as MQTT-SN 1.2 clients do, and
	// every answer must be an acceptance, so the figure is for sessions
	// that really hold a topic id and a subscription.
	ask := func(ap netip.AddrPort, p mqttsn.Packet, want mqttsn.MsgType) {
		conn.in <- injected{encode(t, p), ap}
		reply, err := mqttsn.Parse(<-conn.replies)
		require.NoError(t, err)
		require.Equal(t, want, reply.Type())
		switch r := reply.(type) {
		case *mqttsn.ConnAck:
			require.Equal(t, mqttsn.Accepted, r.ReturnCode)
		case *mqttsn.RegAck:
			require.Equal(t, mqttsn.Accepted, r.ReturnCode)
		case *mqttsn.SubAck:
			require.Equal(t, mqttsn.Accepted, r.ReturnCode)
		}
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		ap := clientAddr(i)
		id := fmt.Sprintf("sensor-%06d", i)
		ask(ap, &mqttsn.Connect{ClientID: id, Duration: 600, CleanSession: true}, mqttsn.TypeConnAck)
		ask(ap, &mqttsn.Register{MsgID: 1, TopicName: "sensors/" + id + "/temp"}, mqttsn.TypeRegAck)
		ask(ap, &mqttsn.Subscribe{MsgID: 2, TopicName: "actuators/" + id + "/cmd"}, mqttsn.TypeSubAck)
	}
	require.Equal(t, int64(n), g.Stats().Sessions)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per idle client (gateway session + broker session + topic id + subscription): %.0f bytes", per)
	require.Less(t, per, 2048.0)
	runtime.KeepAlive(g)
}

// BenchmarkKeepAliveReschedule measures what a datagram from an active
// client costs the timers of its shard: its keep-alive deadline moves on,
// among 500 sessions (a shard's share of the ingest scenario's 1,000).
func BenchmarkKeepAliveReschedule(b *testing.B) {
	const sessions = 500
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(b, err)
	require.NoError(b, broker.Start(context.Background()))
	defer broker.Close(context.Background())
	g, err := New(broker, &Options{})
	require.NoError(b, err)
	defer g.Close(context.Background())
	sh := newShard(g) // not started: owned by this goroutine
	now := time.Now()
	ss := make([]*session, sessions)
	for i := range ss {
		s := sh.newSession(fmt.Sprintf("c%d", i))
		s.state = stActive
		s.keepAlive = 600 * time.Second
		s.lastHeard = now.Add(time.Duration(i) * time.Millisecond)
		s.reschedule()
		ss[i] = s
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := ss[i%sessions]
		s.lastHeard = now.Add(time.Duration(sessions+i) * time.Millisecond)
		s.reschedule()
	}
}
