package mqttload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttcore/packet"
)

// Defaults applied by Config for zero fields.
const (
	DefaultPublishers  = 10
	DefaultSubscribers = 10
	DefaultMessages    = 20000
	DefaultPayloadSize = 100
	DefaultWindow      = 50
	DefaultInflight    = 20
	DefaultTimeout     = 2 * time.Minute
)

// ErrIncomplete reports a run whose messages did not all arrive before
// the timeout: the broker dropped or lost some.
var ErrIncomplete = errors.New("mqttload: not every message arrived")

// Config describes one load.
type Config struct {
	// Addr is the broker's TCP address.
	Addr string
	// Publishers and Subscribers are the numbers of client connections.
	// Every subscriber subscribes to every publisher's topic, so each
	// message is delivered Subscribers times.
	Publishers, Subscribers int
	// Messages is the number of messages each publisher sends.
	Messages int
	// PayloadSize is the size of every payload in bytes.
	PayloadSize int
	// QoS is the QoS of the publications and the subscriptions.
	QoS byte
	// Window is the number of messages per publisher in flight end to
	// end: published and not yet received by every subscriber.
	Window int
	// Inflight is the number of QoS 1 or 2 messages a publisher sends
	// before the broker has acknowledged them (PUBACK, PUBCOMP). The
	// default is Mosquitto's receive window for MQTT 3.1.1 clients, which
	// disconnects a client sending more.
	Inflight int
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Persistent gives the subscribers persistent sessions: they connect
	// with clean session 0 (MQTT 3.1.1 §3.1.2.4) under client ids that
	// stay the same for the run, so the broker keeps their subscriptions
	// and every QoS 1 and 2 message queued or in flight for them, and
	// stores them if it has persistence. The ids differ from one run to
	// the next, so a run never resumes what an earlier one left behind.
	// Publishers always connect with clean sessions.
	Persistent bool
}

func (c *Config) ensureDefaults() {
	if c.Publishers == 0 {
		c.Publishers = DefaultPublishers
	}
	if c.Subscribers == 0 {
		c.Subscribers = DefaultSubscribers
	}
	if c.Messages == 0 {
		c.Messages = DefaultMessages
	}
	if c.PayloadSize == 0 {
		c.PayloadSize = DefaultPayloadSize
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Inflight == 0 {
		c.Inflight = DefaultInflight
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Result is the outcome of a run.
type Result struct {
	Published int64         // messages sent by publishers
	Delivered int64         // messages received by subscribers
	Elapsed   time.Duration // from the first publish to the last delivery
}

// Rate is the delivery rate in messages per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Elapsed.Seconds()
}

// Run connects the subscribers, then the publishers, publishes every
// message and waits until each has reached every subscriber.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.ensureDefaults()
	if cfg.QoS > 2 || cfg.Publishers < 1 || cfg.Subscribers < 1 || cfg.Messages < 1 || cfg.PayloadSize < 0 || cfg.Window < 1 || cfg.Inflight < 1 || cfg.Inflight > 65535 {
		return Result{}, fmt.Errorf("mqttload: invalid configuration %+v", cfg)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := &run{cfg: cfg, want: int64(cfg.Publishers) * int64(cfg.Messages) * int64(cfg.Subscribers), done: make(chan struct{}), stop: make(chan struct{})}
	r.gate.init(cfg.Subscribers, int64(cfg.Publishers*cfg.Window))
	defer r.closeAll()
	// Closing the connections is what unblocks every goroutine when the
	// context ends.
	stop := context.AfterFunc(ctx, r.closeAll)
	defer stop()

	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range cfg.Subscribers {
		c, err := r.dial(ctx, "mqttload-sub-"+nonce+"-"+strconv.Itoa(i), !cfg.Persistent)
		if err != nil {
			return Result{}, err
		}
		if err := c.subscribe("mqttload/+", cfg.QoS); err != nil {
			return Result{}, err
		}
		r.goFunc(func() { r.subscriber(c, i) })
	}
	pubs := make([]*client, cfg.Publishers)
	for i := range pubs {
		c, err := r.dial(ctx, "mqttload-pub-"+nonce+"-"+strconv.Itoa(i), true)
		if err != nil {
			return Result{}, err
		}
		c.inflight = make(chan struct{}, cfg.Inflight)
		pubs[i] = c
	}
	start := time.Now()
	for i, c := range pubs {
		if cfg.QoS > 0 {
			r.goFunc(func() { r.publisherAcks(c) })
		}
		r.goFunc(func() { r.publisher(c, "mqttload/"+strconv.Itoa(i)) })
	}
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		err = fmt.Errorf("%w: %d of %d deliveries after %v", ErrIncomplete, r.delivered.Load(), r.want, time.Since(start).Round(time.Millisecond))
		if e := r.firstErr(); e != nil {
			err = fmt.Errorf("%w (%w)", err, e)
		}
	}
	res := Result{Published: r.published.Load(), Delivered: r.delivered.Load(), Elapsed: time.Since(start)}
	r.closeAll()
	r.wg.Wait()
	if err == nil {
		if e := r.firstErr(); e != nil {
			err = e
		}
	}
	return res, err
}

// run is the state of one Run.
type run struct {
	cfg       Config
	want      int64
	published atomic.Int64
	delivered atomic.Int64
	gate      gate
	done      chan struct{} // closed when every delivery has arrived
	stop      chan struct{} // closed when the run ends
	wg        sync.WaitGroup

	mu      sync.Mutex
	clients []*client
	err     error
	closed  bool
}

func (r *run) goFunc(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func (r *run) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && !r.closed {
		r.err = err
	}
}

func (r *run) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// closeAll ends the run: connections close and waiting publishers give
// up. It may be called more than once.
func (r *run) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	close(r.stop)
	for _, c := range r.clients {
		_ = c.nc.Close()
	}
	r.gate.close()
}

// client is one MQTT 3.1.1 connection of the load.
type client struct {
	nc       net.Conn
	br       *bufio.Reader
	wmu      sync.Mutex
	bw       *bufio.Writer
	inflight chan struct{} // publishers: messages not yet acknowledged by the broker
}

func (r *run) dial(ctx context.Context, id string, clean bool) (*client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", r.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mqttload: %w", err)
	}
	c := &client{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	r.mu.Lock()
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	if err := c.write(&packet.ConnectPacket{ClientID: id, CleanStart: clean}, true); err != nil {
		return nil, err
	}
	p, err := packet.Read(c.br, packet.V311, 0)
	if err != nil {
		return nil, fmt.Errorf("mqttload: CONNACK of %s: %w", id, err)
	}
	if ack, ok := p.(*packet.ConnackPacket); !ok || ack.ReasonCode != packet.Success {
		return nil, fmt.Errorf("mqttload: connect of %s refused: %v", id, p)
	}
	return c, nil
}

func (c *client) write(p packet.Packet, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := packet.Append(c.bw.AvailableBuffer(), p, packet.V311)
	if err != nil {
		return fmt.Errorf("mqttload: encoding %s: %w", p.Type(), err)
	}
	if _, err := c.bw.Write(b); err != nil {
		return fmt.Errorf("mqttload: %w", err)
	}
	if flush {
		return c.flush()
	}
	return nil
}

func (c *client) flush() error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("mqttload: %w", err)
	}
	return nil
}

func (c *client) lockedFlush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flush()
}

func (c *client) subscribe(filter string, qos byte) error {
	if err := c.write(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}, true); err != nil {
		return err
	}
	p, err := packet.Read(c.br, packet.V311, 0)
	if err != nil {
		return fmt.Errorf("mqttload: SUBACK: %w", err)
	}
	if ack, ok := p.(*packet.SubackPacket); !ok || len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] != packet.ReasonCode(qos) {
		return fmt.Errorf("mqttload: subscription refused: %v", p)
	}
	return nil
}

// errStopped ends a publisher when the run ends.
var errStopped = errors.New("mqttload: run stopped")

// acquire takes a token from sem, flushing c first if it would block, so
// nothing written waits in the buffer while the publisher waits.
func (r *run) acquire(c *client, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	if err := c.lockedFlush(); err != nil {
		return err
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-r.stop:
		return errStopped
	}
}

func (r *run) publisher(c *client, topic string) {
	p := &packet.PublishPacket{Topic: topic, QoS: r.cfg.QoS, Payload: make([]byte, r.cfg.PayloadSize)}
	var id uint16
	for range r.cfg.Messages {
		if err := r.gate.enter(c.lockedFlush); err != nil {
			r.fail(err)
			return
		}
		if r.cfg.QoS > 0 {
			if err := r.acquire(c, c.inflight); err != nil {
				r.fail(err)
				return
			}
			if id++; id == 0 {
				id = 1
			}
			p.PacketID = id
		}
		if err := c.write(p, false); err != nil {
			r.fail(err)
			return
		}
		r.published.Add(1)
	}
	if err := c.lockedFlush(); err != nil {
		r.fail(err)
	}
}

// publisherAcks reads the broker's acknowledgements of a publisher's
// messages: PUBACK, or PUBREC (answered with PUBREL) and PUBCOMP.
func (r *run) publisherAcks(c *client) {
	for {
		p, err := packet.Read(c.br, packet.V311, 0)
		if err != nil {
			r.fail(fmt.Errorf("mqttload: publisher: %w", err))
			return
		}
		ack, ok := p.(*packet.AckPacket)
		if !ok {
			r.fail(fmt.Errorf("mqttload: publisher got %s", p.Type()))
			return
		}
		switch ack.PacketType {
		case packet.Puback, packet.Pubcomp:
			<-c.inflight
		case packet.Pubrec:
			err = c.write(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: ack.PacketID}, c.br.Buffered() == 0)
		}
		if err == nil && c.br.Buffered() == 0 {
			err = c.lockedFlush()
		}
		if err != nil {
			r.fail(err)
			return
		}
	}
}

// subscriber counts and acknowledges deliveries.
func (r *run) subscriber(c *client, i int) {
	for {
		p, err := packet.Read(c.br, packet.V311, 0)
		if err != nil {
			r.fail(fmt.Errorf("mqttload: subscriber: %w", err))
			return
		}
		switch p := p.(type) {
		case *packet.PublishPacket:
			switch p.QoS {
			case 1:
				err = c.write(&packet.AckPacket{PacketType: packet.Puback, PacketID: p.PacketID}, false)
			case 2:
				err = c.write(&packet.AckPacket{PacketType: packet.Pubrec, PacketID: p.PacketID}, false)
			}
			r.gate.received(i)
			if n := r.delivered.Add(1); n == r.want {
				close(r.done)
			}
		case *packet.AckPacket:
			if p.PacketType == packet.Pubrel {
				err = c.write(&packet.AckPacket{PacketType: packet.Pubcomp, PacketID: p.PacketID}, false)
			}
		}
		if err == nil && c.br.Buffered() == 0 {
			err = c.lockedFlush()
		}
		if err != nil {
			r.fail(err)
			return
		}
	}
}

// gate bounds the messages in flight end to end: a publisher may publish
// while the slowest subscriber lags fewer than high messages behind
// everything published, and once it has had to wait it waits until the lag
// is down to half that, so waking it is rare. Per-subscriber counts keep a
// fast subscriber from hiding a slow one (whose queue in the broker would
// otherwise overflow).
type gate struct {
	published atomic.Int64
	recv      []paddedCount
	high, low int64
	waiters   atomic.Int32
	mu        sync.Mutex
	cond      *sync.Cond
	closed    bool // guarded by mu
}

// paddedCount keeps each subscriber's counter on its own cache line.
type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

func (g *gate) init(subscribers int, high int64) {
	g.recv = make([]paddedCount, subscribers)
	g.high, g.low = high, max(high/2, 1)
	g.cond = sync.NewCond(&g.mu)
}

func (g *gate) lag() int64 {
	least := g.recv[0].n.Load()
	for i := 1; i < len(g.recv); i++ {
		least = min(least, g.recv[i].n.Load())
	}
	return g.published.Load() - least
}

// enter admits one more message, calling flush before it waits.
func (g *gate) enter(flush func() error) error {
	if g.lag() < g.high {
		g.published.Add(1)
		return nil
	}
	if err := flush(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiters.Add(1)
	for !g.closed && g.lag() > g.low {
		g.cond.Wait()
	}
	g.waiters.Add(-1)
	if g.closed {
		return errStopped
	}
	g.published.Add(1)
	return nil
}

// close releases every waiting publisher for good.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.cond.Broadcast()
	g.mu.Unlock()
}

// received counts a delivery to subscriber i and wakes the waiting
// publishers once the lag is low enough. A publisher that registers as a
// waiter after the count was taken sees the new count when it checks.
func (g *gate) received(i int) {
	g.recv[i].n.Add(1)
	if g.waiters.Load() > 0 && g.lag() <= g.low {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	}
}
