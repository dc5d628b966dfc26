package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAvailabilityCloseRace forces, one by one, the interleavings of Close
// with the setup after a connection (which publishes the retained online
// state) and checks that the retained state upstream ends offline in each.
// A relay between the bridge and a real mosquitto holds, drops, answers or
// cuts at chosen packets; hooks in the bridge stop it at the points a relay
// cannot reach. Every wait is on an event, never on time.
func TestAvailabilityCloseRace(t *testing.T) {
	t.Run("online acknowledgement held", func(t *testing.T) {
		// bridge --PUBLISH online--> broker; the PUBACK is held.
		// Close: the sender gives up waiting; bridge --PUBLISH offline-->;
		// only then is the held PUBACK let through.
		m := startMosquitto(t)
		topic := "snwgw/gw-held/state"
		var onlineID atomic.Uint32
		held, release := make(chan struct{}), make(chan struct{})
		var holdOnce, releaseOnce sync.Once
		r := newMQTTRelay(t, m.addr(), relayRules{
			fromBridge: func(c *relayConn, p *packets.ControlPacket) bool {
				if pub, ok := statePublish(p, topic, StateOnline); ok && c.n == 1 {
					onlineID.Store(uint32(pub.PacketID))
				}
				if _, ok := statePublish(p, topic, StateOffline); ok {
					releaseOnce.Do(func() { close(release) })
				}
				return true
			},
			fromBroker: func(c *relayConn, p *packets.ControlPacket) bool {
				if ack, ok := p.Content.(*packets.Puback); ok && c.n == 1 && uint32(ack.PacketID) == onlineID.Load() {
					holdOnce.Do(func() {
						close(held)
						c.r.await(release)
					})
				}
				return true
			},
		})
		br := raceBridge(t, r, "gw-held", nil)
		r.awaitTest(t, held, "the PUBACK of online was never held")

		require.NoError(t, br.Close(closeCtx(t)))
		assertRetainedOffline(t, m, r, topic)
		assert.Equal(t, []string{"1 online", "1 offline"}, r.statePublishes(topic))
		assert.Equal(t, []string{"1 0x00"}, r.disconnects(), "offline acknowledged: a normal DISCONNECT")
	})

	t.Run("online about to be sent", func(t *testing.T) {
		// The sender is stopped just before it publishes online, and sends
		// it only once Close has cancelled it: online goes out after Close
		// began, and offline must still follow it.
		m := startMosquitto(t)
		topic := "snwgw/gw-about/state"
		reached := make(chan struct{})
		var once sync.Once
		r := newMQTTRelay(t, m.addr(), relayRules{})
		br := raceBridge(t, r, "gw-about", func(br *Bridge) {
			br.hooks.beforeOnline = func(ctx context.Context) {
				once.Do(func() {
					close(reached)
					<-ctx.Done()
				})
			}
		})
		r.awaitTest(t, reached, "the sender never came to publish online")

		require.NoError(t, br.Close(closeCtx(t)))
		assertRetainedOffline(t, m, r, topic)
		assert.Equal(t, []string{"1 online", "1 offline"}, r.statePublishes(topic),
			"online was sent after Close began, and offline after it")
		assert.Equal(t, []string{"1 0x00"}, r.disconnects())
	})

	t.Run("offline refused", func(t *testing.T) {
		// Online is retained upstream; the offline PUBLISH never reaches
		// the broker and the bridge gets PUBACK 0x87 Not authorized. A
		// normal DISCONNECT would leave online retained for good.
		m := startMosquitto(t)
		topic := "snwgw/gw-refused/state"
		var onlineID atomic.Uint32
		acked := make(chan struct{})
		var once sync.Once
		r := newMQTTRelay(t, m.addr(), relayRules{
			fromBridge: func(c *relayConn, p *packets.ControlPacket) bool {
				if pub, ok := statePublish(p, topic, StateOnline); ok {
					onlineID.Store(uint32(pub.PacketID))
				}
				if pub, ok := statePublish(p, topic, StateOffline); ok {
					c.toBridge(puback(pub.PacketID, packets.PubackNotAuthorized))
					return false
				}
				return true
			},
			fromBroker: func(c *relayConn, p *packets.ControlPacket) bool {
				if ack, ok := p.Content.(*packets.Puback); ok && uint32(ack.PacketID) == onlineID.Load() {
					once.Do(func() { close(acked) })
				}
				return true
			},
		})
		br := raceBridge(t, r, "gw-refused", nil)
		r.awaitTest(t, acked, "the broker never acknowledged online")

		require.NoError(t, br.Close(closeCtx(t)))
		assertRetainedOffline(t, m, r, topic)
		assert.Equal(t, []string{"1 online", "1 offline"}, r.statePublishes(topic))
		assert.Equal(t, []string{"1 0x04"}, r.disconnects(), "offline not acknowledged: DISCONNECT with the will")
	})

	t.Run("reconnected during close", func(t *testing.T) {
		// Connection 1 is cut after the broker took online but before the
		// bridge had its PUBACK, so online stays in paho's session. Close
		// finds the link down and cannot publish offline; then connection 2
		// comes up (its CONNACK was held until that moment) and paho sends
		// online again from the session. Close must not end connection 2
		// with a normal DISCONNECT.
		m := startMosquitto(t)
		topic := "snwgw/gw-reconnect/state"
		var onlineID atomic.Uint32
		connackHeld, releaseConnack := make(chan struct{}), make(chan struct{})
		var holdOnce, releaseOnce sync.Once
		r := newMQTTRelay(t, m.addr(), relayRules{
			fromBridge: func(c *relayConn, p *packets.ControlPacket) bool {
				if pub, ok := statePublish(p, topic, StateOnline); ok && c.n == 1 {
					onlineID.Store(uint32(pub.PacketID))
				}
				return true
			},
			fromBroker: func(c *relayConn, p *packets.ControlPacket) bool {
				switch {
				case c.n == 1:
					if ack, ok := p.Content.(*packets.Puback); ok && uint32(ack.PacketID) == onlineID.Load() {
						c.cut()
						return false
					}
				case c.n == 2 && p.Type == packets.CONNACK:
					holdOnce.Do(func() {
						close(connackHeld)
						c.r.await(releaseConnack)
					})
				}
				return true
			},
		})
		offlineErr := make(chan error, 1)
		br := raceBridge(t, r, "gw-reconnect", func(br *Bridge) {
			br.hooks.afterOffline = func(err error) {
				offlineErr <- err
				releaseOnce.Do(func() { close(releaseConnack) })
				// Hold Close until connection 2 is up.
				timeout := time.After(waitTime)
				for {
					up, _, changed := br.link.get()
					if up {
						return
					}
					select {
					case <-changed:
					case <-timeout:
						return
					}
				}
			}
		})
		r.awaitTest(t, connackHeld, "the bridge never reconnected")

		require.NoError(t, br.Close(closeCtx(t)))
		assert.Error(t, <-offlineErr, "the offline publish found no connection")
		assertRetainedOffline(t, m, r, topic)
		assert.Equal(t, []string{"1 online", "2 online"}, r.statePublishes(topic),
			"online was sent again on connection 2, during Close")
		assert.Equal(t, []string{"2 0x04"}, r.disconnects())
	})

	t.Run("link lost under the offline publish", func(t *testing.T) {
		// The connection dies while Close waits for the offline PUBACK, and
		// no new one can be made. Close must not wait out PublishTimeout
		// (an hour here): the lost connection has published the will.
		m := startMosquitto(t)
		topic := "snwgw/gw-lost/state"
		live := newObserver(t, m.addr(), topic)
		var onlineID atomic.Uint32
		acked := make(chan struct{})
		var once sync.Once
		r := newMQTTRelay(t, m.addr(), relayRules{
			fromBridge: func(c *relayConn, p *packets.ControlPacket) bool {
				if pub, ok := statePublish(p, topic, StateOnline); ok {
					onlineID.Store(uint32(pub.PacketID))
				}
				if _, ok := statePublish(p, topic, StateOffline); ok {
					c.r.refuse.Store(true)
					c.cut()
					return false
				}
				return true
			},
			fromBroker: func(c *relayConn, p *packets.ControlPacket) bool {
				if ack, ok := p.Content.(*packets.Puback); ok && uint32(ack.PacketID) == onlineID.Load() {
					once.Do(func() { close(acked) })
				}
				return true
			},
		})
		br := raceBridge(t, r, "gw-lost", func(br *Bridge) { br.opts.PublishTimeout = time.Hour })
		r.awaitTest(t, acked, "the broker never acknowledged online")
		assert.Equal(t, StateOnline, live.next(t, nil).Payload)

		require.NoError(t, br.Close(closeCtx(t)), "Close returns once the link is down")
		// The will: nothing else can follow it, as no connection is left.
		assert.Equal(t, StateOffline, live.next(t, nil).Payload)
		assertRetainedOffline(t, m, r, topic)
		assert.Equal(t, []string{"1 online", "1 offline"}, r.statePublishes(topic))
		assert.Empty(t, r.disconnects())
	})
}

// raceBridge creates a bridge to the upstream broker through r, lets
// prepare set hooks or options, starts it, and closes it when the test ends
// if the test has not.
func raceBridge(t *testing.T, r *mqttRelay, clientID string, prepare func(*Bridge)) *Bridge {
	t.Helper()
	br, err := New(newBroker(t), Options{
		Name: "race", URL: "mqtt://" + r.ln.Addr().String(), ClientID: clientID,
		ConnectRetryMin: 20 * time.Millisecond, ConnectRetryMax: 100 * time.Millisecond,
		Rules:  []Rule{{LocalFilter: "x/#", Direction: DirectionOut, QoS: 1}},
		Logger: testLogger(t),
	})
	require.NoError(t, err)
	if prepare != nil {
		prepare(br)
	}
	require.NoError(t, br.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		_ = br.Close(ctx)
	})
	return br
}

// closeCtx bounds a Close of a test; it is a failure bound, never a measurement.
func closeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	t.Cleanup(cancel)
	return ctx
}

// assertRetainedOffline waits until every connection through r has ended,
// which mosquitto's side ends only once it has handled all the bridge sent
// (mosquitto handles a DISCONNECT, the will it asks for and the close in
// one step of its single event loop, before it serves the new subscriber),
// and checks that a new subscriber gets offline as the retained state.
func assertRetainedOffline(t *testing.T, m *mosquitto, r *mqttRelay, topic string) {
	t.Helper()
	r.finish(t)
	got := newObserver(t, m.addr(), topic).next(t, nil)
	assert.Equal(t, StateOffline, got.Payload, "the retained state")
	assert.True(t, got.Retain)
}

// statePublish reports whether p is a PUBLISH of payload on topic.
func statePublish(p *packets.ControlPacket, topic, payload string) (*packets.Publish, bool) {
	pub, ok := p.Content.(*packets.Publish)
	if !ok || pub.Topic != topic || string(pub.Payload) != payload {
		return nil, false
	}
	return pub, true
}

func puback(id uint16, reason byte) *packets.ControlPacket {
	p := packets.NewControlPacket(packets.PUBACK)
	p.Content.(*packets.Puback).PacketID = id
	p.Content.(*packets.Puback).ReasonCode = reason
	return p
}

// mqttRelay stands between the bridge and mosquitto and relays MQTT packet
// by packet, so that a test can see what the bridge sends and hold, drop,
// answer or cut at a chosen packet. Forwarded packets keep their bytes.
type mqttRelay struct {
	ln     net.Listener
	target string
	rules  relayRules
	// refuse closes new connections at once.
	refuse atomic.Bool

	stop     chan struct{} // closed when the test ends: rules stop holding
	accepted chan struct{} // closed when the accept loop has returned
	relays   sync.WaitGroup

	mu     sync.Mutex
	n      int // connections so far
	conns  map[*relayConn]struct{}
	events []relayEvent
}

// relayRules see every packet of their direction, on that direction's
// goroutine, and return whether to forward it; a rule that blocks holds its
// direction of that connection (see await). A nil rule forwards everything.
type relayRules struct {
	fromBridge, fromBroker func(c *relayConn, p *packets.ControlPacket) bool
}

// relayEvent is one packet the relay read.
type relayEvent struct {
	conn       int
	fromBridge bool
	p          *packets.ControlPacket
}

// relayConn is one bridge connection and its connection to the broker.
type relayConn struct {
	r              *mqttRelay
	n              int // 1 for the relay's first connection
	bridge, broker *net.TCPConn
	wmu            sync.Mutex // serialises writes to the bridge
	ends           atomic.Int32
}

func newMQTTRelay(t *testing.T, target string, rules relayRules) *mqttRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &mqttRelay{ln: ln, target: target, rules: rules, stop: make(chan struct{}), accepted: make(chan struct{}),
		conns: map[*relayConn]struct{}{}}
	go r.accept()
	t.Cleanup(func() {
		close(r.stop)
		_ = ln.Close()
		<-r.accepted
		r.mu.Lock()
		for c := range r.conns {
			c.cut()
		}
		r.mu.Unlock()
		r.relays.Wait()
	})
	return r
}

func (r *mqttRelay) accept() {
	defer close(r.accepted)
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.refuse.Load() {
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", r.target, waitTime)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		r.n++
		rc := &relayConn{r: r, n: r.n, bridge: c.(*net.TCPConn), broker: up.(*net.TCPConn)}
		r.conns[rc] = struct{}{}
		r.mu.Unlock()
		r.relays.Add(2)
		go rc.pipe(true)
		go rc.pipe(false)
	}
}

// pipe relays one direction until its source ends, then passes the end on
// (a half close); the second direction to end closes both connections.
func (c *relayConn) pipe(fromBridge bool) {
	defer c.r.relays.Done()
	src, dst, rule := c.broker, c.bridge, c.r.rules.fromBroker
	if fromBridge {
		src, dst, rule = c.bridge, c.broker, c.r.rules.fromBridge
	}
	for {
		var raw bytes.Buffer
		p, err := packets.ReadPacket(io.TeeReader(src, &raw))
		if err != nil {
			break
		}
		c.r.mu.Lock()
		c.r.events = append(c.r.events, relayEvent{conn: c.n, fromBridge: fromBridge, p: p})
		c.r.mu.Unlock()
		if rule != nil && !rule(c, p) {
			continue
		}
		c.wmu.Lock()
		_, err = dst.Write(raw.Bytes())
		c.wmu.Unlock()
		if err != nil {
			break
		}
	}
	_ = dst.CloseWrite()
	if c.ends.Add(1) == 2 {
		_ = c.bridge.Close()
		_ = c.broker.Close()
		c.r.mu.Lock()
		delete(c.r.conns, c)
		c.r.mu.Unlock()
	}
}

// toBridge sends p to the bridge, as if the broker had sent it.
func (c *relayConn) toBridge(p *packets.ControlPacket) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = p.WriteTo(c.bridge)
}

// cut resets both connections, as a network failure would: no DISCONNECT,
// so the broker publishes the will.
func (c *relayConn) cut() {
	for _, conn := range []*net.TCPConn{c.bridge, c.broker} {
		_ = conn.SetLinger(0)
		_ = conn.Close()
	}
}

// await blocks a rule until ch is closed or the test ends.
func (r *mqttRelay) await(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-r.stop:
	}
}

// awaitTest waits, on the test's goroutine, until ch is closed.
func (r *mqttRelay) awaitTest(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTime):
		t.Fatal(msg)
	}
}

// finish stops accepting and waits until every relayed connection has
// ended on both sides.
func (r *mqttRelay) finish(t *testing.T) {
	t.Helper()
	_ = r.ln.Close()
	<-r.accepted
	done := make(chan struct{})
	go func() {
		r.relays.Wait()
		close(done)
	}()
	r.awaitTest(t, done, "relayed connections never ended")
}

// statePublishes lists the PUBLISH packets of the bridge on topic as
// "<connection> <payload>", in the order the relay read them.
func (r *mqttRelay) statePublishes(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if pub, ok := e.p.Content.(*packets.Publish); ok && e.fromBridge && pub.Topic == topic {
			out = append(out, fmt.Sprintf("%d %s", e.conn, pub.Payload))
		}
	}
	return out
}

// disconnects lists the bridge's DISCONNECT packets as
// "<connection> <reason code>".
func (r *mqttRelay) disconnects() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if d, ok := e.p.Content.(*packets.Disconnect); ok && e.fromBridge {
			out = append(out, fmt.Sprintf("%d 0x%02x", e.conn, d.ReasonCode))
		}
	}
	return out
}
