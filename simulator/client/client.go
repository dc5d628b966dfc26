package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// State is the client's view of its session (MQTT-SN 1.2 §6.14, Fig. 4).
type State int32

// Session states.
const (
	// StateDisconnected: no session; Connect was never called, the client
	// or the gateway sent DISCONNECT, or Connect failed.
	StateDisconnected State = iota
	// StateConnecting: Connect is running.
	StateConnecting
	// StateActive: connected; every call is allowed.
	StateActive
	// StateAsleep: Sleep succeeded; the gateway buffers messages until
	// Wake or Connect.
	StateAsleep
	// StateAwake: Wake is collecting the buffered messages.
	StateAwake
	// StateLost: the gateway stopped answering (a call failed with
	// ErrTimeout) or the link failed.
	StateLost
)

var stateNames = [...]string{"disconnected", "connecting", "active", "asleep", "awake", "lost"}

// String returns the state's name in lower case.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Stats are the Client's counters since Dial.
type Stats struct {
	Sent          uint64 // datagrams sent, retransmissions included
	Retransmitted uint64 // retransmissions after T_retry
	Received      uint64 // well-formed messages received from the gateway
	Malformed     uint64 // datagrams the codec rejected
	Ignored       uint64 // datagrams from other addresses or nodes, and unexpected messages
	Delivered     uint64 // messages handed to Options.Handler
	Dropped       uint64 // messages not delivered because the queue was full
	InvalidTopic  uint64 // PUBLISHes rejected for an unknown topic id
	QoS2Evicted   uint64 // QoS 2 message ids forgotten before their PUBREL
	TopicsRefused uint64 // REGISTERs refused because the topic table was full
}

type counters struct {
	sent, retransmitted, received, malformed, ignored      atomic.Uint64
	delivered, dropped, invalidTopic, qos2Evicted, refused atomic.Uint64
}

// maxDatagram is the largest message (65535 octets) plus the largest
// encapsulation header (3 + 252 octets).
const maxDatagram = 65535 + 255

// key identifies an awaited reply: its type and message id (0 for the
// replies that carry none, such as CONNACK and PINGRESP).
type key struct {
	t  mqttsn.MsgType
	id uint16
}

// waiter receives the replies matching its keys while it is registered.
type waiter struct {
	keys []key
	ch   chan mqttsn.Packet
	// onReply, if set, runs on the read loop before the first reply is
	// handed over, so state the reply creates (a topic id from SUBACK) is
	// in place before the gateway's next message is read. Only the read
	// loop touches it after registration.
	onReply func(mqttsn.Packet)
}

// event is an item of the dispatcher's queue: a message for the handler,
// or a flush marker that the dispatcher closes when it reaches it.
type event struct {
	msg   Message
	flush chan struct{}
}

// Client is an MQTT-SN 1.2 client bound to one gateway. Its methods are
// safe for concurrent use; see the package documentation for the
// protocol rules it keeps.
type Client struct {
	conn net.PacketConn
	gw   net.Addr
	opts Options
	log  *slog.Logger

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	readDone  chan struct{} // closed when the read loop ends
	readErr   error         // why it ended; written before readDone is closed

	// One outstanding message per class (§6.5, §6.6, §6.9); ctl covers
	// the exchanges that carry no message id (CONNECT, PINGREQ,
	// DISCONNECT, the Will updates), whose replies could not be told
	// apart otherwise.
	regSem, pubSem, subSem, ctlSem chan struct{}

	events chan event    // to the dispatcher; bounded by Options.QueueSize
	lostCh chan error    // session-lost notifications to the dispatcher
	kaKick chan struct{} // wakes the keep-alive loop after a state change
	rxTick chan struct{} // signalled on every message received, for Wake
	stats  counters

	sendMu   sync.Mutex
	wbuf     []byte    // encoding buffer, guarded by sendMu
	ebuf     []byte    // encapsulation buffer, guarded by sendMu
	lastSent time.Time // guarded by sendMu

	mu      sync.Mutex
	state   State
	down    chan struct{} // closed when the current session ends
	downErr error         // why it ended
	nextID  uint16
	will    *Will
	waiters map[key]*waiter
	topics  registry
	qos2    map[uint16]struct{} // incoming QoS 2 ids between PUBREC and PUBREL
	qos2Seq []uint16            // the same ids, oldest first
}

// Dial returns a Client that talks to the gateway at gw over conn, and
// starts its goroutines. No message is sent: call Connect to open a
// session, or Publish at QoS -1 without one. The Client owns conn from
// now on, and Close closes it. Datagrams from other addresses than gw are
// ignored.
func Dial(conn net.PacketConn, gw net.Addr, opts Options) (*Client, error) {
	if conn == nil || gw == nil {
		return nil, fmt.Errorf("%w: nil connection or gateway address", ErrInvalidOptions)
	}
	c, err := newClient(conn, gw, opts)
	if err != nil {
		return nil, err
	}
	c.spawn(c.readLoop)
	c.spawn(c.dispatch)
	if c.opts.KeepAlive > 0 {
		c.spawn(c.keepAlive)
	}
	return c, nil
}

// newClient returns a Client whose goroutines are not started yet.
func newClient(conn net.PacketConn, gw net.Addr, opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		conn:     conn,
		gw:       gw,
		opts:     opts,
		log:      opts.Logger.With("gateway", gw.String()),
		ctx:      ctx,
		cancel:   cancel,
		readDone: make(chan struct{}),
		regSem:   make(chan struct{}, 1),
		pubSem:   make(chan struct{}, 1),
		subSem:   make(chan struct{}, 1),
		ctlSem:   make(chan struct{}, 1),
		events:   make(chan event, opts.QueueSize),
		lostCh:   make(chan error, 1),
		kaKick:   make(chan struct{}, 1),
		rxTick:   make(chan struct{}, 1),
		down:     make(chan struct{}),
		will:     opts.Will,
		waiters:  make(map[key]*waiter),
		topics:   newRegistry(opts.MaxTopics),
		qos2:     make(map[uint16]struct{}),
	}
	return c, nil
}

// spawn runs f on a new goroutine that Close waits for. Add comes before
// go, so Wait never misses it.
func (c *Client) spawn(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// Close stops the Client's goroutines and closes its link, without
// sending DISCONNECT (call Disconnect first for a clean end). Calls in
// progress fail with ErrClosed. Close is idempotent and returns the
// error of closing the link.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.closeErr = c.conn.Close()
		c.wg.Wait()
	})
	return c.closeErr
}

// State returns the session state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Stats returns a snapshot of the Client's counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Sent:          s.sent.Load(),
		Retransmitted: s.retransmitted.Load(),
		Received:      s.received.Load(),
		Malformed:     s.malformed.Load(),
		Ignored:       s.ignored.Load(),
		Delivered:     s.delivered.Load(),
		Dropped:       s.dropped.Load(),
		InvalidTopic:  s.invalidTopic.Load(),
		QoS2Evicted:   s.qos2Evicted.Load(),
		TopicsRefused: s.refused.Load(),
	}
}

// LookupTopic returns the topic id known for a topic name, if any.
func (c *Client) LookupTopic(name string) (uint16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.topics.byName[name]
	return id, ok
}

// send encodes p, wraps it for the forwarder if there is one, and writes
// it to the gateway.
func (c *Client) send(p mqttsn.Packet) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	b, err := p.AppendTo(c.wbuf[:0])
	if err != nil {
		return fmt.Errorf("client: encode %v: %w", p.Type(), err)
	}
	c.wbuf = b
	if f := c.opts.Forwarder; f != nil {
		e := mqttsn.Encapsulated{Radius: f.Radius, NodeID: f.NodeID, Message: b}
		if b, err = e.AppendTo(c.ebuf[:0]); err != nil {
			return fmt.Errorf("client: encapsulate %v: %w", p.Type(), err)
		}
		c.ebuf = b
	}
	if _, err := c.conn.WriteTo(b, c.gw); err != nil {
		return fmt.Errorf("client: send %v: %w", p.Type(), err)
	}
	c.lastSent = time.Now()
	c.stats.sent.Add(1)
	return nil
}

// reply sends a message the read loop owes the gateway; a failure is
// only logged, as the gateway's retransmission will ask again.
func (c *Client) reply(p mqttsn.Packet) {
	if err := c.send(p); err != nil {
		c.log.Debug("reply failed", "err", err)
	}
}

// newMsgID returns the next message id, never 0 (spec-interpretation #26).
func (c *Client) newMsgID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// acquire takes one of the semaphores that keep one message of a class
// outstanding.
func (c *Client) acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

func release(sem chan struct{}) { <-sem }

// wait registers a waiter for replies matching keys. The semaphores make
// every key unique among the registered waiters.
func (c *Client) wait(keys ...key) *waiter {
	return c.waitFunc(nil, keys...)
}

// waitFunc is wait with an onReply function.
func (c *Client) waitFunc(onReply func(mqttsn.Packet), keys ...key) *waiter {
	w := &waiter{keys: keys, ch: make(chan mqttsn.Packet, len(keys)), onReply: onReply}
	c.mu.Lock()
	for _, k := range keys {
		c.waiters[k] = w
	}
	c.mu.Unlock()
	return w
}

// unwait removes w; later replies for its keys are unexpected.
func (c *Client) unwait(w *waiter) {
	c.mu.Lock()
	for _, k := range w.keys {
		if c.waiters[k] == w {
			delete(c.waiters, k)
		}
	}
	c.mu.Unlock()
}

// active returns the channel of the current session if it is active.
func (c *Client) active() (<-chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateActive {
		return nil, fmt.Errorf("%w (state %v)", ErrNotConnected, c.state)
	}
	return c.down, nil
}

// endSession ends the session whose channel is sess, if it is still the
// current one, and moves to state st. notify tells the dispatcher to call
// Options.OnConnectionLost.
func (c *Client) endSession(sess <-chan struct{}, err error, st State, notify bool) {
	c.mu.Lock()
	if c.down != sess || c.state == StateDisconnected || c.state == StateLost {
		c.mu.Unlock()
		return
	}
	prev := c.state
	c.state = st
	c.downErr = err
	close(c.down)
	c.mu.Unlock()
	if !notify || prev == StateConnecting {
		return
	}
	c.log.Warn("session ended", "err", err)
	select {
	case c.lostCh <- err:
	default: // one notification is pending already
	}
}

// sessionErr returns why the current session ended.
func (c *Client) sessionErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.downErr == nil {
		return ErrDisconnected
	}
	return c.downErr
}

// Internal results of await.
var (
	errRetry    = errors.New("client: retry timer")
	errActivity = errors.New("client: message received")
)

// await waits for a reply on w, the retry timer, a signal on activity
// (nil for none), or the end of the call: ctx, the session (sess, nil for
// QoS -1), the read loop or the Client.
func (c *Client) await(ctx context.Context, sess <-chan struct{}, w *waiter, timer <-chan time.Time, activity <-chan struct{}) (mqttsn.Packet, error) {
	select {
	case p := <-w.ch:
		return p, nil
	case <-timer:
		return nil, errRetry
	case <-activity:
		return nil, errActivity
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-sess:
		return nil, c.sessionErr()
	case <-c.readDone:
		return nil, c.readErr
	case <-c.ctx.Done():
		return nil, ErrClosed
	}
}

// exchange calls send(false), then waits for a reply on w, retransmitting
// with send(true) after every RetryInterval at most RetryCount times
// (§6.13). When the gateway never answers, the session sess is lost.
func (c *Client) exchange(ctx context.Context, sess <-chan struct{}, w *waiter, t mqttsn.MsgType, send func(retry bool) error) (mqttsn.Packet, error) {
	if err := send(false); err != nil {
		return nil, err
	}
	timer := time.NewTimer(c.opts.RetryInterval)
	defer timer.Stop()
	for n := 0; ; n++ {
		p, err := c.await(ctx, sess, w, timer.C, nil)
		if err != errRetry {
			return p, err
		}
		if n == c.opts.RetryCount {
			err := fmt.Errorf("client: %v sent %d times: %w", t, n+1, ErrTimeout)
			c.endSession(sess, err, StateLost, true)
			return nil, err
		}
		c.stats.retransmitted.Add(1)
		if err := send(true); err != nil {
			return nil, err
		}
		timer.Reset(c.opts.RetryInterval)
	}
}
