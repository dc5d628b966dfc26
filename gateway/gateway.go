package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// ErrClosed is returned by Serve after Close; the gateway cannot be reused.
var ErrClosed = errors.New("gateway: closed")

// Link is one way sensors reach the gateway.
type Link struct {
	// Name identifies the link in logs and statistics (e.g. "udp
	// 0.0.0.0:1883", "xbee /dev/ttyUSB0").
	Name string
	// Conn carries one MQTT-SN message per datagram.
	Conn net.PacketConn
	// Broadcast is where ADVERTISE is sent; nil sends none on this link.
	Broadcast net.Addr
	// MaxPacketSize is the largest datagram the link carries (default
	// 65535); a message to a client that would exceed it is dropped and
	// counted, as MQTT-SN 1.2 §6.10 asks for a topic or payload too long.
	MaxPacketSize int
	// ParseAddr turns the String form of an address on this link back
	// into the address, for Restore. A UDP link (one whose Conn offers
	// ReadFromUDPAddrPort) needs none; on any other link without it,
	// Restore cannot bind stored sessions to their clients (see Restore).
	// For a serial or XBee link it is transport.SerialAddr{Device: s} or
	// transport.ParseXBeeAddr.
	ParseAddr func(s string) (net.Addr, error)
}

// link is a served Link.
type link struct {
	Link
	udp udpConn // non-nil for UDP links: allocation-free reads and writes
}

// udpConn is what *net.UDPConn (and anything embedding it) offers beyond a
// PacketConn: reads and writes with netip.AddrPort, which allocate nothing.
type udpConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Gateway serves MQTT-SN clients on its links and connects each to the
// broker. Create it with New, add links with Serve, stop it with Close.
type Gateway struct {
	opts   Options
	broker *mqttcore.Broker
	// durable is broker.Durable(): acknowledgements wait for its store.
	durable bool
	log     *slog.Logger
	seed    maphash.Seed
	shards  []*shard
	stats   counters

	// qosM1 is the broker session QoS -1 messages are published through:
	// they come from no connected client (MQTT-SN 1.2 §6.8).
	qosM1 *mqttcore.Session

	addrMu sync.RWMutex
	addrs  map[addrKey]*session // written by shards, read by read loops

	mu      sync.Mutex // guards links and closed
	links   []*link
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup

	// ready is closed once Restore has run (at New without a Store): the
	// links read nothing before, so no datagram finds a session missing
	// that the store still holds.
	ready       chan struct{}
	restoreOnce sync.Once

	// predefByName maps topic names back to predefined ids, gateway-wide
	// and per ClientId; read-only after New.
	predefByName  map[string]uint16
	predefPerName map[string]map[string]uint16

	sessions   atomic.Int64 // sessions held, for MaxSessions
	topicBytes atomic.Int64 // bytes of registered topic names, for MaxTopicBytes

	ipMu  sync.Mutex
	perIP map[netip.Addr]int // sessions counted at each IP address, for MaxSessionsPerIP

	logLimit rateLimit // protocol-error log lines
	// unknownLimit bounds the DISCONNECTs sent to unknown senders, so a
	// flood of spoofed datagrams cannot turn the gateway into a reflector.
	unknownLimit rateLimit
}

// addrKey identifies a client on the network: its link and address, and
// for clients behind a forwarder the forwarder's Wireless Node Id.
type addrKey struct {
	link *link
	ap   netip.AddrPort // UDP senders
	str  string         // other links' addresses (serial, XBee)
	node string         // forwarder Wireless Node Id; "" for direct clients
}

// New returns a gateway that connects its clients to b. It starts the
// shards; the broker must be started by the caller.
func New(b *mqttcore.Broker, opts *Options) (*Gateway, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no broker", ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.ensureDefaults()
	if o.Shards == 0 {
		o.Shards = runtime.GOMAXPROCS(0)
	}
	g := &Gateway{
		opts:    o,
		broker:  b,
		log:     o.Logger,
		seed:    maphash.MakeSeed(),
		addrs:   make(map[addrKey]*session),
		perIP:   make(map[netip.Addr]int),
		closing: make(chan struct{}),
		ready:   make(chan struct{}),
		durable: b.Durable(),
	}
	if o.Store == nil {
		g.restoreOnce.Do(func() { close(g.ready) })
	}
	g.logLimit.init(10, time.Minute)
	g.unknownLimit.init(200, time.Second)
	g.predefByName = invert(o.Predefined)
	g.predefPerName = make(map[string]map[string]uint16, len(o.PredefinedPerClient))
	for id, m := range o.PredefinedPerClient {
		merged := invert(o.Predefined)
		for tid, name := range m {
			merged[name] = tid
		}
		g.predefPerName[id] = merged
	}
	qs, _, err := b.Connect(mqttcore.ConnectOptions{
		ClientID:   fmt.Sprintf("snwgw-gw%d-qos-1", o.GatewayID),
		CleanStart: true,
		Consumer:   discardConsumer{},
		// QoS -1 senders have no connection; an ACL judges their messages
		// under this session's ClientId.
		Authenticated: true,
		// An MQTT client taking this id over would stop QoS -1 for good.
		Internal: true,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: broker session for QoS -1: %w", err)
	}
	g.qosM1 = qs
	g.shards = make([]*shard, o.Shards)
	for i := range g.shards {
		g.shards[i] = newShard(g)
	}
	for _, sh := range g.shards {
		g.goFunc(sh.run)
	}
	return g, nil
}

func invert(m map[uint16]string) map[string]uint16 {
	r := make(map[string]uint16, len(m))
	for id, name := range m {
		r[name] = id
	}
	return r
}

// predefinedID returns the predefined id of topic for clientID.
func (g *Gateway) predefinedID(clientID, topic string) (uint16, bool) {
	idx := g.predefByName
	if per, ok := g.predefPerName[clientID]; ok {
		idx = per
	}
	id, ok := idx[topic]
	return id, ok
}

// goFunc runs f in a goroutine that Close waits for. The Add happens before
// the goroutine starts, so it can never race Wait.
func (g *Gateway) goFunc(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// Serve starts serving l in the background: a read loop for its datagrams
// and, when l has a broadcast address, periodic ADVERTISE. The gateway owns
// l.Conn from now on and closes it on Close. With Options.Store the link
// starts reading once Restore has run.
func (g *Gateway) Serve(l Link) error {
	if l.Conn == nil {
		return fmt.Errorf("%w: link %q has no connection", ErrInvalidOptions, l.Name)
	}
	if l.MaxPacketSize <= 0 || l.MaxPacketSize > 65535 {
		l.MaxPacketSize = 65535
	}
	lk := &link{Link: l}
	lk.udp, _ = l.Conn.(udpConn)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.links = append(g.links, lk)
	g.goFunc(func() { g.readLoop(lk) })
	if l.Broadcast != nil && g.opts.AdvertiseInterval > 0 {
		g.goFunc(func() { g.advertiseLoop(lk) })
	}
	return nil
}

// Close stops the gateway: it closes every link, ends every session
// without publishing wills (a graceful shutdown, spec-interpretation #14)
// and waits for its goroutines until ctx is done. It is safe to call more
// than once.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.closing)
		for _, l := range g.links {
			l.Conn.Close()
		}
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("gateway: close: %w", ctx.Err())
	}
	g.qosM1.Disconnect(mqttcore.DisconnectOptions{})
	return nil
}

// shardFor returns the shard that owns the session of clientID.
func (g *Gateway) shardFor(clientID string) *shard {
	return g.shards[maphash.String(g.seed, clientID)%uint64(len(g.shards))]
}

// ipOf returns the IP address a session at key counts under, or the zero
// Addr for links that have none. Loopback senders are not counted: they
// are this host, whose fleet simulator and benchmarks run 100,000 clients
// from one address, and a local user needs no slots to harm the gateway.
func ipOf(key addrKey, addr net.Addr) netip.Addr {
	ip := key.ap.Addr()
	if ua, ok := addr.(*net.UDPAddr); ok && !key.ap.IsValid() {
		ip = ua.AddrPort().Addr().Unmap()
	}
	if !ip.IsValid() || ip.IsLoopback() {
		return netip.Addr{}
	}
	return ip
}

// claimIP counts a new session at ip, unless ip already holds
// MaxSessionsPerIP of them.
func (g *Gateway) claimIP(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	g.ipMu.Lock()
	defer g.ipMu.Unlock()
	if limit := g.opts.MaxSessionsPerIP; limit > 0 && g.perIP[ip] >= limit {
		return false
	}
	g.perIP[ip]++
	return true
}

// releaseIP uncounts a session at ip.
func (g *Gateway) releaseIP(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	g.ipMu.Lock()
	defer g.ipMu.Unlock()
	if g.perIP[ip] <= 1 {
		delete(g.perIP, ip)
	} else {
		g.perIP[ip]--
	}
}

// moveIP counts s at the IP of key from now on: a session that moved is
// not refused, its slot only moves with it.
func (s *session) moveIP(key addrKey, addr net.Addr) {
	ip := ipOf(key, addr)
	if ip == s.ip {
		return
	}
	g := s.g()
	g.releaseIP(s.ip)
	g.ipMu.Lock()
	if ip.IsValid() {
		g.perIP[ip]++
	}
	g.ipMu.Unlock()
	s.ip = ip
}

// lookup returns the session at k, if any.
func (g *Gateway) lookup(k addrKey) *session {
	g.addrMu.RLock()
	s := g.addrs[k]
	g.addrMu.RUnlock()
	return s
}

// bind points k at s, replacing whatever was there, and returns the
// replaced session (nil if none or s itself).
func (g *Gateway) bind(k addrKey, s *session) *session {
	g.addrMu.Lock()
	old := g.addrs[k]
	g.addrs[k] = s
	g.addrMu.Unlock()
	if old == s {
		return nil
	}
	return old
}

// unbind removes k if it still points at s.
func (g *Gateway) unbind(k addrKey, s *session) {
	g.addrMu.Lock()
	if g.addrs[k] == s {
		delete(g.addrs, k)
	}
	g.addrMu.Unlock()
}

// logProtocol logs a misbehaving peer at warn level, at most a few lines a
// minute, so a flood of garbage cannot flood the log.
func (g *Gateway) logProtocol(msg string, args ...any) {
	if g.logLimit.allow(time.Now()) {
		g.log.Warn(msg, args...)
	}
}

// discardConsumer backs the QoS -1 broker session, which never subscribes.
type discardConsumer struct{}

func (discardConsumer) Notify()                          {}
func (discardConsumer) Disconnected(mqttcore.ReasonCode) {}

// rateLimit is a token bucket: n events per period.
type rateLimit struct {
	mu     sync.Mutex
	tokens float64
	max    float64
	rate   float64 // tokens per second
	last   time.Time
}

func (r *rateLimit) init(n int, per time.Duration) {
	r.max = float64(n)
	r.tokens = r.max
	r.rate = float64(n) / per.Seconds()
}

func (r *rateLimit) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() {
		r.tokens = min(r.max, r.tokens+now.Sub(r.last).Seconds()*r.rate)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// errUnsendable reports a message that can never be sent: larger than its
// link carries, or impossible to encode. Retransmitting it is pointless.
var errUnsendable = errors.New("gateway: message cannot be sent")

// encodeTo encodes p into buf and sends it to addr on l, wrapped for the
// forwarder when node is set (MQTT-SN 1.2 §5.5). Failures are counted (and
// logged, rate-limited) here; callers look at the error only to tell a
// message that can never be sent (errUnsendable) from a write that
// retransmission may repair.
func (g *Gateway) encodeTo(buf *[]byte, l *link, addr net.Addr, node []byte, p mqttsn.Packet) error {
	b, err := p.AppendTo((*buf)[:0])
	msg := b
	if err == nil && node != nil {
		// The wrapper is appended behind the inner message, which it copies
		// in; the buffer keeps both so its capacity is reused next time.
		n := len(b)
		b, err = (&mqttsn.Encapsulated{NodeID: node, Message: b[:n]}).AppendTo(b)
		if err == nil {
			msg = b[n:]
		}
	}
	if err != nil {
		g.stats.encodeErrors.Add(1)
		g.logProtocol("gateway: cannot encode message", "type", p.Type(), "err", err)
		return fmt.Errorf("%w: %w", errUnsendable, err)
	}
	*buf = b
	if len(msg) > l.MaxPacketSize {
		g.stats.tooLarge.Add(1)
		return fmt.Errorf("%w: %d octets, link %q carries %d", errUnsendable, len(msg), l.Name, l.MaxPacketSize)
	}
	if err := g.write(l, addr, msg); err != nil {
		g.stats.writeErrors.Add(1)
		if !errors.Is(err, net.ErrClosed) {
			g.logProtocol("gateway: write failed", "link", l.Name, "addr", addr, "err", err)
		}
		return err
	}
	g.stats.sent.Add(1)
	return nil
}

func (g *Gateway) write(l *link, addr net.Addr, b []byte) error {
	if l.udp != nil {
		if ua, ok := addr.(*net.UDPAddr); ok {
			_, err := l.udp.WriteToUDPAddrPort(b, ua.AddrPort())
			return err
		}
	}
	_, err := l.Conn.WriteTo(b, addr)
	return err
}
