package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial"
)

// ptyPair is a pseudo-terminal: the link opens the slave by path, the test
// plays the device on the master.
type ptyPair struct {
	master *os.File
	slave  *os.File // held open so the tty outlives the link's reopen attempts
	path   string
}

func newPty(t *testing.T) *ptyPair {
	t.Helper()
	m, s, err := pty.Open()
	require.NoError(t, err)
	p := &ptyPair{master: m, slave: s, path: s.Name()}
	t.Cleanup(func() {
		_ = m.Close()
		_ = s.Close()
	})
	return p
}

// expect reads exactly len(want) bytes from the master and compares them.
// The deadline is a guard against a hung test, not a synchronisation.
func (p *ptyPair) expect(t *testing.T, want []byte) {
	t.Helper()
	require.NoError(t, p.master.SetReadDeadline(time.Now().Add(10*time.Second)))
	got := make([]byte, len(want))
	_, err := io.ReadFull(p.master, got)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func (p *ptyPair) send(t *testing.T, b []byte) {
	t.Helper()
	_, err := p.master.Write(b)
	require.NoError(t, err)
}

// readPacket reads one packet from the link, with a guard deadline.
func readPacket(t *testing.T, c net.PacketConn) ([]byte, net.Addr) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 2048)
	n, from, err := c.ReadFrom(buf)
	require.NoError(t, err)
	return buf[:n], from
}

// stateEvents records OnState calls on a channel the test can wait on.
type stateEvent struct {
	up  bool
	err error
}

func stateRecorder() (chan stateEvent, func(bool, error)) {
	ch := make(chan stateEvent, 64)
	return ch, func(up bool, err error) { ch <- stateEvent{up, err} }
}

func waitState(t *testing.T, ch chan stateEvent, up bool) stateEvent {
	t.Helper()
	select {
	case ev := <-ch:
		require.Equal(t, up, ev.up, "state event %+v", ev)
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no state event (want up=%v)", up)
		return stateEvent{}
	}
}

func openLink(t *testing.T, opts SerialOptions) *SerialLink {
	t.Helper()
	l, err := OpenSerial(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestSerialRawOverPty(t *testing.T) {
	p := newPty(t)
	// 250000 baud is not a standard termios rate; a pty accepts it as a
	// real port would.
	l := openLink(t, SerialOptions{Device: p.path, BaudRate: 250000})

	// Device → gateway: packets split across writes, garbage between.
	stream := append(append(append([]byte{}, rawPingreq...), 0x00, 0x00), rawSearchgw...)
	p.send(t, stream[:3])
	p.send(t, stream[3:])
	for _, want := range [][]byte{rawPingreq, rawSearchgw} {
		got, from := readPacket(t, l)
		assert.Equal(t, want, got)
		assert.Equal(t, SerialAddr{Device: p.path}, from)
	}

	// Gateway → device: bytes exactly as given, including 0x0A, 0x0D,
	// 0x11 and 0x13, which a tty not in raw mode would alter or eat.
	pkt := []byte{0x08, 0x0C, 0x0A, 0x0D, 0x11, 0x13, 0x7F, 0x03}
	n, err := l.WriteTo(pkt, l.LocalAddr())
	require.NoError(t, err)
	assert.Equal(t, len(pkt), n)
	p.expect(t, pkt)

	_, err = l.WriteTo([]byte{0x05, 0x16}, l.LocalAddr())
	require.ErrorIs(t, err, ErrBadPacket)
	_, err = l.WriteTo(rawPingreq, node)
	require.ErrorIs(t, err, ErrAddrType)
	// One octet longer than the framing carries: refused at once, and
	// the packet after it goes out as if nothing had happened.
	require.Equal(t, DefaultRawMaxPacket, l.MaxPacketSize())
	long := make([]byte, DefaultRawMaxPacket+1)
	copy(long, []byte{0x01, byte(len(long) >> 8), byte(len(long)), 0x0C})
	_, err = l.WriteTo(long, l.LocalAddr())
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	_, err = l.WriteTo(rawPingreq, l.LocalAddr())
	require.NoError(t, err)
	p.expect(t, rawPingreq)

	st := l.Stats()
	assert.Equal(t, uint64(2), st.PacketsIn)
	assert.Equal(t, uint64(2), st.PacketsOut)
	assert.Equal(t, uint64(2), st.Unsendable, "the malformed and the long packet")
	assert.Equal(t, uint64(2), st.GarbageBytes)
	assert.True(t, st.Up)
}

func TestSerialXBeeOverPty(t *testing.T) {
	for _, escaped := range []bool{false, true} {
		t.Run(map[bool]string{false: "mode 1", true: "mode 2"}[escaped], func(t *testing.T) {
			p := newPty(t)
			l := openLink(t, SerialOptions{Device: p.path, BaudRate: 115200, Framing: FramingXBee, XBee: XBeeOptions{Escaped: escaped}})

			// A failed transmit status and a modem status, then a packet.
			p.send(t, hexBytes(t, "7E 00 07 8B 02 FF FE 03 21 00 51 7E 00 02 8A 06 6F"))
			rx := xbeeRxVectors[2].wire
			if escaped {
				rx = xbeeRxVectors[3].wire
			}
			p.send(t, hexBytes(t, rx))
			got, from := readPacket(t, l)
			assert.Equal(t, []byte{0x02, 0x16}, got)
			assert.Equal(t, XBeeAddr{Addr64: 0x0013A20040A1B2C3, Addr16: 0x1234}, from)
			st := l.Stats()
			assert.Equal(t, uint64(1), st.TxStatusFail)
			assert.Equal(t, uint64(1), st.ModemStatus)

			// The transmit requests of the hand-written vectors, in order.
			for _, v := range xbeeTxVectors {
				if v.escaped != escaped || v.dst != node {
					continue
				}
				_, err := l.WriteTo(v.payload, v.dst)
				require.NoError(t, err)
				p.expect(t, hexBytes(t, v.wire))
			}
			_, err := l.WriteTo(rawPingreq, l.LocalAddr())
			require.ErrorIs(t, err, ErrAddrType)
		})
	}
}

func TestSerialXBeeMaxPayloadEnforced(t *testing.T) {
	p := newPty(t)
	l := openLink(t, SerialOptions{Device: p.path, Framing: FramingXBee, XBee: XBeeOptions{MaxPayload: 84}})
	_, err := l.WriteTo(make([]byte, 85), XBeeBroadcast)
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	_, err = l.WriteTo(make([]byte, 84), XBeeBroadcast)
	require.NoError(t, err)
}

func TestSerialPortDisappearsAndReturns(t *testing.T) {
	first := newPty(t)
	link := filepath.Join(t.TempDir(), "ttyUSB0")
	require.NoError(t, os.Symlink(first.path, link))
	events, onState := stateRecorder()
	l := openLink(t, SerialOptions{Device: link, ReopenMin: time.Millisecond, ReopenMax: 5 * time.Millisecond, OnState: onState})
	waitState(t, events, true)

	first.send(t, rawPingreq)
	got, _ := readPacket(t, l)
	assert.Equal(t, rawPingreq, got)

	// Unplug: the device end goes away.
	require.NoError(t, first.master.Close())
	ev := waitState(t, events, false)
	assert.Error(t, ev.err)
	_, err := l.WriteTo(rawPingreq, l.LocalAddr())
	require.ErrorIs(t, err, ErrPortUnavailable)
	assert.False(t, l.Stats().Up)

	// Plug back in, as a new tty behind the same stable path.
	second := newPty(t)
	tmp := link + ".new"
	require.NoError(t, os.Symlink(second.path, tmp))
	require.NoError(t, os.Rename(tmp, link))
	waitState(t, events, true)

	second.send(t, rawSearchgw)
	got, from := readPacket(t, l)
	assert.Equal(t, rawSearchgw, got)
	assert.Equal(t, SerialAddr{Device: link}, from)
	_, err = l.WriteTo(rawPingreq, from)
	require.NoError(t, err)
	second.expect(t, rawPingreq)

	st := l.Stats()
	assert.Equal(t, uint64(1), st.PortFailures)
	assert.Equal(t, uint64(1), st.Reopens)
	assert.Equal(t, uint64(1), st.Unavailable)
	assert.True(t, st.Up)
}

func TestSerialCloseUnblocksReadFrom(t *testing.T) {
	for _, viaCtx := range []bool{false, true} {
		p := newPty(t)
		ctx, cancel := context.WithCancel(context.Background())
		l, err := OpenSerial(ctx, SerialOptions{Device: p.path})
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() {
			_, _, err := l.ReadFrom(make([]byte, 64))
			errc <- err
		}()
		if viaCtx {
			cancel()
		} else {
			require.NoError(t, l.Close())
		}
		err = <-errc
		require.ErrorIs(t, err, net.ErrClosed)
		require.NoError(t, l.Close(), "Close is idempotent")
		cancel()
		_, err = l.WriteTo(rawPingreq, l.LocalAddr())
		require.ErrorIs(t, err, net.ErrClosed)
	}
}

func TestSerialOpenErrors(t *testing.T) {
	_, err := OpenSerial(context.Background(), SerialOptions{Device: filepath.Join(t.TempDir(), "missing")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")

	for name, o := range map[string]SerialOptions{
		"no device":     {},
		"data bits":     {Device: "/dev/x", DataBits: 9},
		"parity":        {Device: "/dev/x", Parity: serial.Parity(9)},
		"stop bits":     {Device: "/dev/x", StopBits: serial.StopBits(7)},
		"negative baud": {Device: "/dev/x", BaudRate: -1},
		"queue":         {Device: "/dev/x", QueueLen: -1},
		"backoff range": {Device: "/dev/x", ReopenMin: time.Second, ReopenMax: time.Millisecond},
		"framing":       {Device: "/dev/x", Framing: "slip"},
		"raw max":       {Device: "/dev/x", RawMaxPacket: 1 << 20},
		"xbee max":      {Device: "/dev/x", Framing: FramingXBee, XBee: XBeeOptions{MaxPayload: -5}},
	} {
		assert.ErrorIs(t, o.Validate(), ErrInvalidOptions, name)
		_, err := OpenSerial(context.Background(), o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
	assert.NoError(t, SerialOptions{Device: "/dev/x"}.Validate())
}

// fakePort is an in-memory Port built on channels, so that the link's
// timers run under testing/synctest.
type fakePort struct {
	in      chan []byte
	gone    chan struct{}
	once    sync.Once
	written chan []byte

	mu      sync.Mutex
	timeout time.Duration
	rest    []byte
	chunk   int // bytes accepted per Write; 0 means all
}

var errUnplugged = errors.New("fake port unplugged")

func newFakePort() *fakePort {
	return &fakePort{in: make(chan []byte), gone: make(chan struct{}), written: make(chan []byte, 64), timeout: serial.NoTimeout}
}

func (f *fakePort) Read(p []byte) (int, error) {
	f.mu.Lock()
	if len(f.rest) > 0 {
		n := copy(p, f.rest)
		f.rest = f.rest[n:]
		f.mu.Unlock()
		return n, nil
	}
	timeout := f.timeout
	f.mu.Unlock()
	var expired <-chan time.Time
	if timeout != serial.NoTimeout {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case b := <-f.in:
		n := copy(p, b)
		f.mu.Lock()
		f.rest = b[n:]
		f.mu.Unlock()
		return n, nil
	case <-f.gone:
		return 0, errUnplugged
	case <-expired:
		return 0, nil
	}
}

func (f *fakePort) Write(p []byte) (int, error) {
	select {
	case <-f.gone:
		return 0, errUnplugged
	default:
	}
	f.mu.Lock()
	n := len(p)
	if f.chunk > 0 {
		n = min(n, f.chunk)
	}
	f.mu.Unlock()
	f.written <- append([]byte(nil), p[:n]...)
	return n, nil
}

func (f *fakePort) Close() error {
	f.once.Do(func() { close(f.gone) })
	return nil
}

func (f *fakePort) SetReadTimeout(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timeout = d
	return nil
}

// fakeOpener hands out the ports and errors a test queues, and records
// when each attempt happened.
type fakeOpener struct {
	results  chan any // *fakePort or error
	attempts chan time.Time
}

func newFakeOpener() *fakeOpener {
	return &fakeOpener{results: make(chan any, 64), attempts: make(chan time.Time, 64)}
}

func (o *fakeOpener) open(string, *serial.Mode, bool) (Port, error) {
	o.attempts <- time.Now()
	switch r := (<-o.results).(type) {
	case *fakePort:
		return r, nil
	case error:
		return nil, r
	}
	panic("fakeOpener: bad result")
}

func TestSerialFrameTimeoutResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFakePort()
		op := newFakeOpener()
		op.results <- fp
		l := openLink(t, SerialOptions{Device: "fake", Open: op.open, FrameTimeout: 50 * time.Millisecond})
		// 0x40 announces a 64-octet packet; the PINGREQ behind it only
		// comes out once the frame timeout gives up on that.
		fp.in <- []byte{0x40, 0x02, 0x16}
		start := time.Now()
		got, _ := readPacket(t, l)
		assert.Equal(t, rawPingreq, got)
		assert.Equal(t, 50*time.Millisecond, time.Since(start))
		st := l.Stats()
		assert.Equal(t, uint64(1), st.Timeouts)
		assert.Equal(t, uint64(1), st.GarbageBytes)
	})
}

func TestSerialReopenBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		op := newFakeOpener()
		op.results <- errors.New("no such device")
		events, onState := stateRecorder()
		l := openLink(t, SerialOptions{Device: "fake", Open: op.open, AllowAbsent: true, OnState: onState,
			ReopenMin: 10 * time.Millisecond, ReopenMax: 50 * time.Millisecond})
		start := <-op.attempts

		// While the port is away, writes fail at once.
		_, err := l.WriteTo(rawPingreq, l.LocalAddr())
		require.ErrorIs(t, err, ErrPortUnavailable)

		// Attempts back off 10, 20, 40, then stay at the 50ms cap.
		var offsets []time.Duration
		for range 5 {
			op.results <- errors.New("no such device")
			at := <-op.attempts
			offsets = append(offsets, at.Sub(start))
			start = at
		}
		assert.Equal(t, []time.Duration{10, 20, 40, 50, 50}, scale(offsets, time.Millisecond))

		fp := newFakePort()
		op.results <- fp
		<-op.attempts
		waitState(t, events, true)
		fp.in <- rawPingreq
		got, _ := readPacket(t, l)
		assert.Equal(t, rawPingreq, got)

		// Writes go out whole even if the port takes a byte at a time.
		fp.mu.Lock()
		fp.chunk = 1
		fp.mu.Unlock()
		_, err = l.WriteTo(rawSearchgw, l.LocalAddr())
		require.NoError(t, err)
		var out []byte
		for range len(rawSearchgw) {
			out = append(out, <-fp.written...)
		}
		assert.Equal(t, rawSearchgw, out)

		// Lost at once: reported, and the backoff carries on from the cap,
		// since a port that fails right after opening must not be retried
		// at the minimum interval.
		require.NoError(t, fp.Close())
		ev := waitState(t, events, false)
		require.ErrorIs(t, ev.err, errUnplugged)
		lost := time.Now()
		fp2 := newFakePort()
		op.results <- fp2
		at := <-op.attempts
		assert.Equal(t, 50*time.Millisecond, at.Sub(lost))
		waitState(t, events, true)

		// Up for ReopenMax, then lost: the backoff starts over.
		time.Sleep(50 * time.Millisecond) // advances the bubble's fake clock
		require.NoError(t, fp2.Close())
		waitState(t, events, false)
		lost = time.Now()
		op.results <- newFakePort()
		at = <-op.attempts
		assert.Equal(t, 10*time.Millisecond, at.Sub(lost))
		waitState(t, events, true)
		st := l.Stats()
		assert.Equal(t, uint64(3), st.Reopens)
		assert.Equal(t, uint64(2), st.PortFailures)
		require.NoError(t, l.Close())
	})
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / unit
	}
	return out
}

func TestSerialQueueOverflowCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFakePort()
		op := newFakeOpener()
		op.results <- fp
		l := openLink(t, SerialOptions{Device: "fake", Open: op.open, QueueLen: 2})
		// Five packets in one read with nobody reading: two fit the queue.
		fp.in <- append(append(append(append(append([]byte{}, rawPingreq...), rawPingreq...), rawPingreq...), rawPingreq...), rawPingreq...)
		synctest.Wait()
		st := l.Stats()
		assert.Equal(t, uint64(2), st.PacketsIn)
		assert.Equal(t, uint64(3), st.Overflow)
		assert.Equal(t, uint64(5), st.FramesIn)
	})
}

func TestSerialReadDeadlineAndTruncation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFakePort()
		op := newFakeOpener()
		op.results <- fp
		l := openLink(t, SerialOptions{Device: "fake", Open: op.open})

		require.NoError(t, l.SetReadDeadline(time.Now().Add(time.Second)))
		_, _, err := l.ReadFrom(make([]byte, 8))
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)

		// A deadline moved while a read waits takes effect at once.
		errc := make(chan error, 1)
		require.NoError(t, l.SetReadDeadline(time.Time{}))
		go func() {
			_, _, err := l.ReadFrom(make([]byte, 8))
			errc <- err
		}()
		synctest.Wait()
		require.NoError(t, l.SetReadDeadline(time.Now()))
		require.ErrorIs(t, <-errc, os.ErrDeadlineExceeded)

		require.NoError(t, l.SetDeadline(time.Time{}))
		fp.in <- rawSearchgw
		buf := make([]byte, 2)
		n, _, err := l.ReadFrom(buf)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		assert.Equal(t, uint64(1), l.Stats().Truncated)

		require.NoError(t, l.SetWriteDeadline(time.Now()))
		_, err = l.WriteTo(rawPingreq, l.LocalAddr())
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	})
}

func TestSerialContextAlreadyDone(t *testing.T) {
	p := newPty(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := OpenSerial(ctx, SerialOptions{Device: p.path})
	require.NoError(t, err)
	_, _, err = l.ReadFrom(make([]byte, 8))
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, l.Close())
}
