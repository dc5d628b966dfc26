package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Impairment is what a lossy radio link does to the datagrams going one way.
// Percentages are of datagrams, 0 to 100. The zero value passes every
// datagram at once.
type Impairment struct {
	// Loss drops datagrams.
	Loss float64
	// Duplicate sends a datagram twice.
	Duplicate float64
	// Reorder holds a datagram back by ReorderHold, so the datagrams
	// sent after it overtake it.
	Reorder float64
	// Delay is added to every datagram; Jitter varies it uniformly by up
	// to Jitter either way (never below zero).
	Delay  time.Duration
	Jitter time.Duration
}

// ReorderHold is how much longer than the longest delay a reordered
// datagram is held back: long enough that the next datagrams overtake it,
// short enough to stay well under any retransmission interval.
const ReorderHold = 5 * time.Millisecond

// DefaultMaxPending bounds the delayed datagrams of one direction of an
// ImpairedConn.
const DefaultMaxPending = 1024

// ErrInvalidImpairment: a percentage is outside 0 to 100, or a duration is
// negative.
var ErrInvalidImpairment = errors.New("simulator: invalid impairment")

// Validate reports a value the impairment cannot apply.
func (im Impairment) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", im.Loss}, {"duplicate", im.Duplicate}, {"reorder", im.Reorder}} {
		if !(p.v >= 0 && p.v <= 100) { // also rejects NaN
			return fmt.Errorf("%w: %s %v%% is outside 0-100", ErrInvalidImpairment, p.name, p.v)
		}
	}
	if im.Delay < 0 || im.Jitter < 0 {
		return fmt.Errorf("%w: negative delay or jitter", ErrInvalidImpairment)
	}
	return nil
}

// IsZero reports whether the impairment changes nothing.
func (im Impairment) IsZero() bool { return im == Impairment{} }

// ImpairOptions configure an ImpairedConn.
type ImpairOptions struct {
	// Up applies to datagrams written (towards the gateway), Down to
	// datagrams read (towards the device).
	Up, Down Impairment
	// Seed seeds the random source, so the same traffic meets the same
	// fate in every run with the same seed.
	Seed uint64
	// MaxPending bounds the datagrams held back in each direction
	// (delayed, reordered or waiting to be read); what is beyond it is
	// dropped and counted as Overflow. 0 means DefaultMaxPending.
	MaxPending int
}

// ImpairStats count what happened to the datagrams of one direction.
type ImpairStats struct {
	Datagrams  uint64 // datagrams offered
	Dropped    uint64 // lost on purpose
	Duplicated uint64 // sent a second time
	Reordered  uint64 // held back for others to overtake
	Overflow   uint64 // dropped because MaxPending were already held
}

// Add returns the sum of two sets of counters.
func (s ImpairStats) Add(o ImpairStats) ImpairStats {
	return ImpairStats{
		Datagrams:  s.Datagrams + o.Datagrams,
		Dropped:    s.Dropped + o.Dropped,
		Duplicated: s.Duplicated + o.Duplicated,
		Reordered:  s.Reordered + o.Reordered,
		Overflow:   s.Overflow + o.Overflow,
	}
}

// ImpairedConn is a net.PacketConn that impairs the datagrams of the one
// it wraps, in both directions. A goroutine reads the wrapped connection;
// ReadFrom returns what survives, in the order the impairment gives.
// Deadlines apply to ReadFrom only.
type ImpairedConn struct {
	inner      net.PacketConn
	up, down   *impairer
	in         chan datagram // survivors of the down direction, bounded
	closed     chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
	readErr    atomic.Pointer[error]
	readFailed chan struct{}

	dlMu      sync.Mutex
	deadline  time.Time
	dlChanged chan struct{} // closed and replaced when the deadline changes
}

type datagram struct {
	b    []byte
	addr net.Addr
}

// Impair wraps conn. The ImpairedConn owns conn from now on: Close closes it.
func Impair(conn net.PacketConn, opts ImpairOptions) (*ImpairedConn, error) {
	if err := opts.Up.Validate(); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	if err := opts.Down.Validate(); err != nil {
		return nil, fmt.Errorf("down: %w", err)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	c := &ImpairedConn{
		inner:      conn,
		in:         make(chan datagram, opts.MaxPending),
		closed:     make(chan struct{}),
		readFailed: make(chan struct{}),
		dlChanged:  make(chan struct{}),
	}
	// Two streams of one seed, so each direction's fate does not depend on
	// the other's traffic.
	c.up = newImpairer(opts.Up, opts.Seed, 1, opts.MaxPending)
	c.down = newImpairer(opts.Down, opts.Seed, 2, opts.MaxPending)
	c.goFunc(c.readLoop)
	return c, nil
}

// goFunc starts f as a goroutine that Close waits for.
func (c *ImpairedConn) goFunc(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// readLoop alone reads the wrapped connection.
func (c *ImpairedConn) readLoop() {
	buf := make([]byte, 65535)
	for {
		n, addr, err := c.inner.ReadFrom(buf)
		if err != nil {
			c.readErr.Store(&err)
			close(c.readFailed)
			return
		}
		b := append([]byte(nil), buf[:n]...)
		c.down.apply(b, addr, c.deliver)
	}
}

// deliver queues a surviving datagram for ReadFrom, or counts it as
// overflow when the queue is full.
func (c *ImpairedConn) deliver(b []byte, addr net.Addr) error {
	select {
	case c.in <- datagram{b, addr}:
	default:
		c.down.overflow.Add(1)
	}
	return nil
}

// ReadFrom returns the next datagram that survived the down impairment.
func (c *ImpairedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.dlMu.Lock()
		dl, changed := c.deadline, c.dlChanged
		c.dlMu.Unlock()
		var (
			expired <-chan time.Time
			timer   *time.Timer
		)
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		n, addr, again, err := c.wait(p, expired, changed)
		if timer != nil {
			timer.Stop()
		}
		if !again {
			return n, addr, err
		}
	}
}

// wait is one blocking step of ReadFrom; again reports a deadline change.
func (c *ImpairedConn) wait(p []byte, expired <-chan time.Time, changed <-chan struct{}) (n int, addr net.Addr, again bool, err error) {
	select {
	case d := <-c.in:
		return copy(p, d.b), d.addr, false, nil
	case <-c.closed:
		return 0, nil, false, net.ErrClosed
	case <-c.readFailed:
		// Hand out what is still queued before the error.
		select {
		case d := <-c.in:
			return copy(p, d.b), d.addr, false, nil
		default:
		}
		return 0, nil, false, *c.readErr.Load()
	case <-expired:
		return 0, nil, false, os.ErrDeadlineExceeded
	case <-changed:
		return 0, nil, true, nil
	}
}

// WriteTo sends p to addr through the up impairment. A datagram lost,
// delayed or overflowing on purpose is reported as written, as a radio
// would; an error comes only from the wrapped connection, for a datagram
// sent at once.
func (c *ImpairedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	err := c.up.apply(append([]byte(nil), p...), addr, func(b []byte, a net.Addr) error {
		_, err := c.inner.WriteTo(b, a)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close stops the impairment, discards what is held back and closes the
// wrapped connection. It is idempotent and waits for the read goroutine.
func (c *ImpairedConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		c.up.stop()
		c.down.stop()
		err = c.inner.Close()
		c.wg.Wait()
	})
	return err
}

// LocalAddr returns the wrapped connection's local address.
func (c *ImpairedConn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// SetDeadline sets the read deadline; writes never block.
func (c *ImpairedConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline makes a ReadFrom in progress and later ones fail with
// os.ErrDeadlineExceeded after t; the zero time removes the deadline.
func (c *ImpairedConn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	c.deadline = t
	close(c.dlChanged)
	c.dlChanged = make(chan struct{})
	c.dlMu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes are never held by the caller.
func (c *ImpairedConn) SetWriteDeadline(time.Time) error { return nil }

// Stats returns the counters of the up (written) and down (read)
// directions.
func (c *ImpairedConn) Stats() (up, down ImpairStats) {
	return c.up.stats(), c.down.stats()
}

// impairer applies one direction's Impairment. Held-back datagrams wait on
// timers that are tracked so stop can cancel them.
type impairer struct {
	im         Impairment
	maxPending int

	mu      sync.Mutex
	rng     *rand.Rand
	timers  map[uint64]*time.Timer // only with mu
	nextID  uint64
	stopped bool

	datagrams, dropped, duplicated, reordered, overflow atomic.Uint64
}

func newImpairer(im Impairment, seed, stream uint64, maxPending int) *impairer {
	return &impairer{
		im:         im,
		maxPending: maxPending,
		rng:        rand.New(rand.NewPCG(seed, stream)),
		timers:     make(map[uint64]*time.Timer),
	}
}

// chance draws against a percentage; 0 never happens and draws nothing,
// so an unimpaired direction consumes no randomness.
func (im *impairer) chance(percent float64) bool {
	return percent > 0 && im.rng.Float64()*100 < percent
}

// apply decides the datagram's fate and hands it (or its copies) to send,
// now or after a delay.
func (im *impairer) apply(b []byte, addr net.Addr, send func([]byte, net.Addr) error) error {
	im.datagrams.Add(1)
	im.mu.Lock()
	if im.chance(im.im.Loss) {
		im.mu.Unlock()
		im.dropped.Add(1)
		return nil
	}
	copies := 1
	if im.chance(im.im.Duplicate) {
		copies = 2
		im.duplicated.Add(1)
	}
	var err error
	for i := range copies {
		d := im.delay()
		if i == 0 && im.chance(im.im.Reorder) {
			d += im.im.Delay + im.im.Jitter + ReorderHold
			im.reordered.Add(1)
		}
		if d <= 0 {
			im.mu.Unlock()
			if e := send(b, addr); e != nil && err == nil {
				err = e
			}
			im.mu.Lock()
			continue
		}
		im.holdLocked(d, b, addr, send)
	}
	im.mu.Unlock()
	return err
}

// delay draws the datagram's delay; mu is held.
func (im *impairer) delay() time.Duration {
	d := im.im.Delay
	if j := im.im.Jitter; j > 0 {
		d += time.Duration(im.rng.Int64N(2*int64(j)+1)) - j
	}
	return max(d, 0)
}

// holdLocked sends the datagram after d, unless MaxPending are already
// held; mu is held.
func (im *impairer) holdLocked(d time.Duration, b []byte, addr net.Addr, send func([]byte, net.Addr) error) {
	if im.stopped {
		return
	}
	if len(im.timers) >= im.maxPending {
		im.overflow.Add(1)
		return
	}
	id := im.nextID
	im.nextID++
	im.timers[id] = time.AfterFunc(d, func() {
		im.mu.Lock()
		_, ok := im.timers[id]
		delete(im.timers, id)
		im.mu.Unlock()
		if ok {
			_ = send(b, addr) // a radio does not report a late datagram's fate
		}
	})
}

// stop cancels every held datagram.
func (im *impairer) stop() {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.stopped = true
	for id, t := range im.timers {
		t.Stop()
		delete(im.timers, id)
	}
}

func (im *impairer) stats() ImpairStats {
	return ImpairStats{
		Datagrams:  im.datagrams.Load(),
		Dropped:    im.dropped.Load(),
		Duplicated: im.duplicated.Load(),
		Reordered:  im.reordered.Load(),
		Overflow:   im.overflow.Load(),
	}
}
