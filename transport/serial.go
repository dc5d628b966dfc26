package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"
)

// Serial link defaults.
const (
	DefaultBaudRate     = 9600 // the factory setting of XBee modules
	DefaultDataBits     = 8
	DefaultQueueLen     = 256
	DefaultReopenMin    = 100 * time.Millisecond
	DefaultReopenMax    = 10 * time.Second
	DefaultFrameTimeout = 200 * time.Millisecond
	maxQueueLen         = 1 << 16
	serialReadSize      = 4096
)

// Serial framings selectable by name in SerialOptions.Framing.
const (
	FramingRaw  = "raw"
	FramingXBee = "xbee"
)

// SerialAddr is the address of the single peer at the other end of a
// serial line with raw framing; it names the device.
type SerialAddr struct {
	Device string
}

// Network implements net.Addr.
func (SerialAddr) Network() string { return "serial" }

// String implements net.Addr.
func (a SerialAddr) String() string { return a.Device }

// Port is an open serial port. go.bug.st/serial's serial.Port satisfies
// it; tests substitute their own. SetReadTimeout(d) makes Read return
// (0, nil) when no byte arrived within d; serial.NoTimeout blocks.
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(d time.Duration) error
}

// Opener opens device with mode, enabling RTS/CTS hardware flow control if
// flowControl is set. OpenPort is the default.
type Opener func(device string, mode *serial.Mode, flowControl bool) (Port, error)

// SerialOptions configures a serial link. The zero value of a field
// selects its default.
type SerialOptions struct {
	// Device is the port's path, for example /dev/ttyUSB0 or a stable
	// /dev/serial/by-id/ link. Required.
	Device string
	// BaudRate is any rate the operating system accepts (default 9600).
	BaudRate int
	// DataBits is 5, 6, 7 or 8 (default 8).
	DataBits int
	// Parity and StopBits default to none and one.
	Parity   serial.Parity
	StopBits serial.StopBits
	// FlowControl enables RTS/CTS hardware flow control.
	FlowControl bool

	// Framing is FramingRaw (default) or FramingXBee. Framer, if set,
	// replaces both with a framer of the caller's own.
	Framing string
	// RawMaxPacket is the largest packet of raw framing (default
	// DefaultRawMaxPacket).
	RawMaxPacket int
	// XBee configures XBee framing.
	XBee XBeeOptions
	// Framer is a custom framer; the link becomes its only user.
	Framer Framer

	// QueueLen bounds the packets decoded but not yet read by ReadFrom;
	// packets beyond it are dropped and counted (default 256).
	QueueLen int
	// FrameTimeout is how long a started frame may wait for its next byte
	// before the framer abandons it and resynchronises (default 200ms;
	// negative disables). It bounds how long garbage that looks like the
	// start of a long frame can hold back the frames behind it.
	FrameTimeout time.Duration
	// ReopenMin and ReopenMax bound the exponential backoff between
	// attempts to reopen a lost port (defaults 100ms and 10s).
	ReopenMin, ReopenMax time.Duration
	// AllowAbsent lets OpenSerial succeed when the port cannot be opened
	// yet; the link then keeps trying in the background. Otherwise the
	// first failure is returned, so configuration mistakes show at start.
	AllowAbsent bool

	// Open opens the port (default OpenPort).
	Open Opener
	// OnState, if set, is called from the link's reader each time the port
	// comes up (err nil) or is lost (err says why). It must not block.
	OnState func(up bool, err error)
	// Logger receives port loss and recovery reports (default: discard).
	Logger *slog.Logger
}

func (o SerialOptions) withDefaults() SerialOptions {
	if o.BaudRate == 0 {
		o.BaudRate = DefaultBaudRate
	}
	if o.DataBits == 0 {
		o.DataBits = DefaultDataBits
	}
	if o.Framing == "" {
		o.Framing = FramingRaw
	}
	if o.QueueLen == 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.FrameTimeout == 0 {
		o.FrameTimeout = DefaultFrameTimeout
	}
	if o.ReopenMin == 0 {
		o.ReopenMin = DefaultReopenMin
	}
	if o.ReopenMax == 0 {
		o.ReopenMax = max(DefaultReopenMax, o.ReopenMin)
	}
	if o.Open == nil {
		o.Open = OpenPort
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.XBee.Logger == nil {
		o.XBee.Logger = o.Logger
	}
	return o
}

// Validate reports the first option that cannot work, wrapping
// ErrInvalidOptions.
func (o SerialOptions) Validate() error {
	_, err := o.newFramer()
	return err
}

// newFramer validates the defaulted options and builds the framer.
func (o SerialOptions) newFramer() (Framer, error) {
	o = o.withDefaults()
	bad := func(format string, args ...any) (Framer, error) {
		return nil, fmt.Errorf("%w: serial %s: %s", ErrInvalidOptions, o.Device, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Device == "":
		return bad("device path is required")
	case o.BaudRate < 0:
		return bad("baud rate %d is negative", o.BaudRate)
	case o.DataBits < 5 || o.DataBits > 8:
		return bad("data bits %d outside 5..8", o.DataBits)
	case o.Parity < serial.NoParity || o.Parity > serial.SpaceParity:
		return bad("unknown parity %d", o.Parity)
	case o.StopBits < serial.OneStopBit || o.StopBits > serial.TwoStopBits:
		return bad("unknown stop bits %d", o.StopBits)
	case o.QueueLen < 0 || o.QueueLen > maxQueueLen:
		return bad("queue length %d outside 1..%d", o.QueueLen, maxQueueLen)
	case o.ReopenMin < 0 || o.ReopenMax < o.ReopenMin:
		return bad("reopen backoff %v..%v is not a valid range", o.ReopenMin, o.ReopenMax)
	}
	if o.Framer != nil {
		return o.Framer, nil
	}
	switch o.Framing {
	case FramingRaw:
		return NewRawFramer(o.RawMaxPacket)
	case FramingXBee:
		return NewXBeeFramer(o.XBee)
	}
	return bad("unknown framing %q (want %q or %q)", o.Framing, FramingRaw, FramingXBee)
}

// OpenPort opens a serial port through go.bug.st/serial.
func OpenPort(device string, mode *serial.Mode, flowControl bool) (Port, error) {
	if !flowControl {
		return serial.Open(device, mode)
	}
	return openWithFlowControl(device, mode)
}

// SerialStats counts a serial link's traffic and troubles. All counters
// only grow.
type SerialStats struct {
	FramerStats
	PacketsIn    uint64 // packets queued for ReadFrom
	PacketsOut   uint64 // packets written to the port
	Overflow     uint64 // packets dropped because ReadFrom fell behind
	Truncated    uint64 // packets cut to fit a ReadFrom buffer
	WriteErrors  uint64 // writes the port refused
	Unavailable  uint64 // writes refused because the port was away
	Unsendable   uint64 // packets the framing cannot carry (too long, malformed), dropped unsent
	PortFailures uint64 // times the port was lost
	Reopens      uint64 // times a lost port was opened again
	Up           bool   // whether the port is open now
}

// SerialLink is a net.PacketConn over a serial port: ReadFrom returns one
// framed packet, WriteTo frames and sends one. It reopens a lost port with
// capped exponential backoff until closed.
//
// Goroutines: one reader owns the port's read side and the framer's
// decoding side; WriteTo calls are serialised by wmu, which also guards
// the framer's encoding side.
type SerialLink struct {
	opts   SerialOptions
	framer Framer
	addr   SerialAddr
	log    *slog.Logger

	rx        chan packet
	done      chan struct{}
	closeOnce sync.Once
	stopCtx   func() bool
	wg        sync.WaitGroup

	pmu  sync.Mutex
	port Port // nil while the port is away

	wmu  sync.Mutex
	wbuf []byte

	dl deadlines

	packetsIn, packetsOut, overflow, truncated  atomic.Uint64
	writeErrors, unavailable, failures, reopens atomic.Uint64
	unsendable                                  atomic.Uint64
}

type packet struct {
	data []byte
	from net.Addr
}

// OpenSerial validates opts, opens the port and starts the link's reader.
// Cancelling ctx closes the link.
func OpenSerial(ctx context.Context, opts SerialOptions) (*SerialLink, error) {
	framer, err := opts.newFramer()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	l := &SerialLink{
		opts:   opts,
		framer: framer,
		addr:   SerialAddr{Device: opts.Device},
		log:    opts.Logger.With("device", opts.Device),
		rx:     make(chan packet, opts.QueueLen),
		done:   make(chan struct{}),
	}
	l.dl.changed = make(chan struct{})
	port, err := l.open()
	if err != nil {
		if !opts.AllowAbsent {
			return nil, err
		}
		l.log.Warn("serial port not available yet; retrying in the background", "err", err)
	}
	// Attached before the reader starts, so WriteTo works as soon as
	// OpenSerial returns.
	l.port = port
	l.start(func() { l.run(port) })
	// The callback only shuts down; it must not wait for the reader or
	// touch stopCtx, which is still being assigned when ctx is already done.
	l.stopCtx = context.AfterFunc(ctx, l.shutdown)
	return l, nil
}

func (l *SerialLink) open() (Port, error) {
	mode := &serial.Mode{BaudRate: l.opts.BaudRate, DataBits: l.opts.DataBits, Parity: l.opts.Parity, StopBits: l.opts.StopBits}
	p, err := l.opts.Open(l.opts.Device, mode, l.opts.FlowControl)
	if err != nil {
		return nil, fmt.Errorf("transport: open serial %s: %w", l.opts.Device, err)
	}
	return p, nil
}

// start runs f on a goroutine that Close waits for.
func (l *SerialLink) start(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

func (l *SerialLink) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// run is the reader: it owns the port's read side and the framer's
// decoding side, and reopens the port when it fails.
func (l *SerialLink) run(p Port) {
	if p != nil {
		l.notify(true, nil)
	}
	// delay is the next wait before reopening. It returns to ReopenMin
	// only once the port has stayed up for ReopenMax, so a port that fails
	// right after every open is retried ever more slowly, not at the
	// minimum interval.
	delay := l.opts.ReopenMin
	upSince := time.Now()
	for {
		if p == nil {
			if p = l.reopen(&delay); p == nil || !l.attach(p) {
				return
			}
			upSince = time.Now()
			l.reopens.Add(1)
			l.log.Info("serial port reopened")
			l.notify(true, nil)
		}
		err := l.readLoop(p)
		l.detach(p)
		if l.closed() {
			return
		}
		if time.Since(upSince) >= l.opts.ReopenMax {
			delay = l.opts.ReopenMin
		}
		l.failures.Add(1)
		l.log.Warn("serial port lost; reopening", "err", err, "retry_in", delay)
		l.notify(false, err)
		l.framer.Reset()
		p = nil
	}
}

func (l *SerialLink) notify(up bool, err error) {
	if l.opts.OnState != nil {
		l.opts.OnState(up, err)
	}
}

// attach makes p the port WriteTo uses, unless the link closed meanwhile.
func (l *SerialLink) attach(p Port) bool {
	l.pmu.Lock()
	if l.closed() {
		l.pmu.Unlock()
		_ = p.Close()
		return false
	}
	l.port = p
	l.pmu.Unlock()
	return true
}

func (l *SerialLink) detach(p Port) {
	l.pmu.Lock()
	if l.port == p {
		l.port = nil
	}
	l.pmu.Unlock()
	_ = p.Close()
}

// reopen tries to open the port, waiting *delay before each attempt and
// doubling it, up to ReopenMax, after each failure and after success (for
// the next loss). It returns nil once the link is closed.
func (l *SerialLink) reopen(delay *time.Duration) Port {
	t := time.NewTimer(*delay)
	defer t.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-l.done:
			return nil
		case <-t.C:
		}
		p, err := l.open()
		*delay = min(2**delay, l.opts.ReopenMax)
		if err == nil {
			return p
		}
		l.log.Debug("serial port still unavailable", "attempt", attempt, "retry_in", *delay, "err", err)
		t.Reset(*delay)
	}
}

// readLoop feeds bytes from p to the framer until p fails.
func (l *SerialLink) readLoop(p Port) error {
	buf := make([]byte, serialReadSize)
	timeout := serial.NoTimeout
	if err := p.SetReadTimeout(timeout); err != nil {
		return err
	}
	for {
		want := serial.NoTimeout
		if l.opts.FrameTimeout > 0 && l.framer.Pending() {
			want = l.opts.FrameTimeout
		}
		if want != timeout {
			if err := p.SetReadTimeout(want); err != nil {
				return err
			}
			timeout = want
		}
		n, err := p.Read(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			// The frame in progress saw no byte for FrameTimeout.
			if l.framer.Pending() {
				l.framer.Expire()
				l.deliver(nil)
			}
			continue
		}
		l.deliver(buf[:n])
	}
}

// deliver decodes b and queues every frame, copied out of the framer's
// buffer, for ReadFrom.
func (l *SerialLink) deliver(b []byte) {
	for {
		n, f, ok := l.framer.Decode(b)
		b = b[n:]
		if !ok {
			return
		}
		from := f.Source
		if from == nil {
			from = l.addr
		}
		// Counted before it is handed on, so that whoever reads it (and
		// looks at Stats) sees it counted; taken back if the queue is full.
		l.packetsIn.Add(1)
		select {
		case l.rx <- packet{data: append([]byte(nil), f.Payload...), from: from}:
		default:
			l.packetsIn.Add(^uint64(0))
			l.overflow.Add(1)
		}
	}
}

// ReadFrom implements net.PacketConn: it returns one packet and its sender
// (an XBeeAddr with XBee framing, the link's SerialAddr otherwise). A
// packet longer than b is truncated, as with UDP, and counted.
func (l *SerialLink) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		expired, changed := l.dl.read()
		var timer *time.Timer
		var timeout <-chan time.Time
		if !expired.IsZero() {
			d := time.Until(expired)
			if d <= 0 {
				return 0, nil, l.opErr("read", os.ErrDeadlineExceeded)
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case p := <-l.rx:
			stopTimer(timer)
			n := copy(b, p.data)
			if n < len(p.data) {
				l.truncated.Add(1)
			}
			return n, p.from, nil
		case <-l.done:
			stopTimer(timer)
			return 0, nil, l.opErr("read", net.ErrClosed)
		case <-timeout:
			return 0, nil, l.opErr("read", os.ErrDeadlineExceeded)
		case <-changed:
			stopTimer(timer)
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// WriteTo implements net.PacketConn: it frames b for addr and writes it.
// With XBee framing addr is an XBeeAddr (XBeeBroadcast for everyone); with
// raw framing it is the link's SerialAddr. While the port is away WriteTo
// fails at once with an error wrapping ErrPortUnavailable.
//
// A write deadline is checked before writing but cannot interrupt a write
// the port holds back (for example under hardware flow control).
func (l *SerialLink) WriteTo(b []byte, addr net.Addr) (int, error) {
	if l.closed() {
		return 0, l.opErr("write", net.ErrClosed)
	}
	if dl := l.dl.write(); !dl.IsZero() && !time.Now().Before(dl) {
		return 0, l.opErr("write", os.ErrDeadlineExceeded)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.pmu.Lock()
	p := l.port
	l.pmu.Unlock()
	if p == nil {
		l.unavailable.Add(1)
		return 0, l.opErr("write", ErrPortUnavailable)
	}
	frame, err := l.framer.AppendFrame(l.wbuf[:0], b, addr)
	if err != nil {
		if errors.Is(err, ErrPayloadTooLarge) || errors.Is(err, ErrBadPacket) {
			// No retry can send it: it is dropped here, before it can hold
			// up the packets behind it.
			l.unsendable.Add(1)
			l.log.Warn("serial packet dropped: the framing cannot carry it", "len", len(b), "to", addr, "err", err)
		}
		return 0, l.opErr("write", err)
	}
	l.wbuf = frame[:0]
	for len(frame) > 0 {
		n, err := p.Write(frame)
		if err != nil {
			l.writeErrors.Add(1)
			return 0, l.opErr("write", fmt.Errorf("%w: %w", ErrPortUnavailable, err))
		}
		if n == 0 {
			l.writeErrors.Add(1)
			return 0, l.opErr("write", fmt.Errorf("%w: port accepted no bytes", ErrPortUnavailable))
		}
		frame = frame[n:]
	}
	l.packetsOut.Add(1)
	return len(b), nil
}

func (l *SerialLink) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: l.addr.Network(), Addr: l.addr, Err: err}
}

// Close stops the link and waits for its reader; it is safe to call more
// than once. Blocked ReadFrom calls return an error matching net.ErrClosed.
func (l *SerialLink) Close() error {
	l.shutdown()
	l.stopCtx()
	l.wg.Wait()
	return nil
}

// shutdown marks the link closed and closes the port, which ends the
// reader's blocked Read.
func (l *SerialLink) shutdown() {
	l.closeOnce.Do(func() {
		l.pmu.Lock()
		close(l.done)
		p := l.port
		l.port = nil
		l.pmu.Unlock()
		if p != nil {
			_ = p.Close()
		}
	})
}

// LocalAddr implements net.PacketConn.
func (l *SerialLink) LocalAddr() net.Addr { return l.addr }

// MaxPacketSize is the longest packet WriteTo can send: what the framing
// carries in one frame. Whoever sends over the link should drop longer
// packets itself; WriteTo refuses them at once with an error wrapping
// ErrPayloadTooLarge, and retrying cannot help.
func (l *SerialLink) MaxPacketSize() int { return l.framer.MaxPayload() }

// SetDeadline implements net.PacketConn.
func (l *SerialLink) SetDeadline(t time.Time) error {
	l.dl.setRead(t)
	l.dl.setWrite(t)
	return nil
}

// SetReadDeadline implements net.PacketConn; it also wakes blocked reads.
func (l *SerialLink) SetReadDeadline(t time.Time) error {
	l.dl.setRead(t)
	return nil
}

// SetWriteDeadline implements net.PacketConn; see WriteTo for its limits.
func (l *SerialLink) SetWriteDeadline(t time.Time) error {
	l.dl.setWrite(t)
	return nil
}

// Stats returns a snapshot of the link's counters.
func (l *SerialLink) Stats() SerialStats {
	l.pmu.Lock()
	up := l.port != nil
	l.pmu.Unlock()
	return SerialStats{
		FramerStats:  l.framer.Stats(),
		PacketsIn:    l.packetsIn.Load(),
		PacketsOut:   l.packetsOut.Load(),
		Overflow:     l.overflow.Load(),
		Truncated:    l.truncated.Load(),
		WriteErrors:  l.writeErrors.Load(),
		Unavailable:  l.unavailable.Load(),
		Unsendable:   l.unsendable.Load(),
		PortFailures: l.failures.Load(),
		Reopens:      l.reopens.Load(),
		Up:           up,
	}
}

// deadlines holds a link's read and write deadlines; setting the read
// deadline wakes ReadFrom calls blocked under the old one.
type deadlines struct {
	mu      sync.Mutex
	rd, wd  time.Time
	changed chan struct{}
}

func (d *deadlines) read() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rd, d.changed
}

func (d *deadlines) write() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wd
}

func (d *deadlines) setRead(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rd = t
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *deadlines) setWrite(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wd = t
}

var _ net.PacketConn = (*SerialLink)(nil)
