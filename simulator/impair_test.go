package simulator

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chanConn is an in-memory net.PacketConn built on channels, so synctest
// can see when everything is blocked: the test puts datagrams in `in`
// (what the far side sends) and takes what was written from `out`.
type chanConn struct {
	in, out chan datagram
	closed  chan struct{}
	once    sync.Once
}

var farAddr = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1883}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan datagram, 100000), out: make(chan datagram, 100000), closed: make(chan struct{})}
}

func (c *chanConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(p, d.b), d.addr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *chanConn) WriteTo(p []byte, a net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.out <- datagram{append([]byte(nil), p...), a}
	return len(p), nil
}

func (c *chanConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *chanConn) LocalAddr() net.Addr              { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }
func (c *chanConn) SetDeadline(time.Time) error      { return nil }
func (c *chanConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chanConn) SetWriteDeadline(time.Time) error { return nil }

func numbered(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

// drain returns the numbers of the datagrams waiting in ch.
func drain(ch chan datagram) []int {
	var got []int
	for {
		select {
		case d := <-ch:
			got = append(got, int(binary.BigEndian.Uint32(d.b)))
		default:
			return got
		}
	}
}

// sendUp writes n numbered datagrams and returns what reached the wire.
func sendUp(t *testing.T, opts ImpairOptions, n int) ([]int, ImpairStats) {
	t.Helper()
	var got []int
	var st ImpairStats
	synctest.Test(t, func(t *testing.T) {
		inner := newChanConn()
		c, err := Impair(inner, opts)
		require.NoError(t, err)
		for i := range n {
			_, err := c.WriteTo(numbered(i), farAddr)
			require.NoError(t, err)
		}
		time.Sleep(time.Second) // fake time: every held datagram comes due
		synctest.Wait()
		got = drain(inner.out)
		st, _ = c.Stats()
		require.NoError(t, c.Close())
	})
	return got, st
}

func TestImpairLossAndDuplication(t *testing.T) {
	const n = 10000
	opts := ImpairOptions{Up: Impairment{Loss: 10, Duplicate: 5}, Seed: 42}
	got, st := sendUp(t, opts, n)
	assert.Equal(t, uint64(n), st.Datagrams)
	assert.InDelta(t, n*0.10, float64(st.Dropped), n*0.02, "about 10 %% lost")
	assert.InDelta(t, n*0.90*0.05, float64(st.Duplicated), n*0.015, "about 5 %% of the survivors duplicated")
	assert.Len(t, got, n-int(st.Dropped)+int(st.Duplicated), "every survivor and every copy reached the wire")
	assert.True(t, slices.IsSorted(got), "no reordering was asked for")

	again, _ := sendUp(t, opts, n)
	assert.Equal(t, got, again, "the same seed gives the same run")
	other, _ := sendUp(t, ImpairOptions{Up: opts.Up, Seed: 43}, n)
	assert.NotEqual(t, got, other, "another seed gives another run")
}

func TestImpairReorder(t *testing.T) {
	const n = 1000
	got, st := sendUp(t, ImpairOptions{Up: Impairment{Reorder: 20}, Seed: 1}, n)
	assert.Len(t, got, n, "reordering loses nothing")
	assert.InDelta(t, n*0.2, float64(st.Reordered), n*0.05)
	assert.False(t, slices.IsSorted(got), "held datagrams were overtaken")
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	for i := range n {
		require.Equal(t, i, sorted[i])
	}
}

func TestImpairDelayWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanConn()
		c, err := Impair(inner, ImpairOptions{Up: Impairment{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}, Seed: 5})
		require.NoError(t, err)
		defer c.Close()
		for i := range 100 {
			_, err := c.WriteTo(numbered(i), farAddr)
			require.NoError(t, err)
		}
		time.Sleep(80*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		assert.Empty(t, drain(inner.out), "nothing arrives before delay - jitter")
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		got := drain(inner.out)
		assert.Len(t, got, 100, "everything arrives by delay + jitter")
		assert.False(t, slices.IsSorted(got), "jitter reorders datagrams sent together")
	})
}

func TestImpairDownDirection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanConn()
		c, err := Impair(inner, ImpairOptions{Down: Impairment{Loss: 50, Delay: 10 * time.Millisecond}, Seed: 9})
		require.NoError(t, err)
		const n = 200
		for i := range n {
			inner.in <- datagram{numbered(i), farAddr}
		}
		synctest.Wait()
		_, down := c.Stats()
		assert.Equal(t, uint64(n), down.Datagrams)
		buf := make([]byte, 16)
		for range n - int(down.Dropped) {
			k, from, err := c.ReadFrom(buf) // blocks (fake time) until the delay passed
			require.NoError(t, err)
			assert.Equal(t, 4, k)
			assert.Equal(t, farAddr, from)
		}
		up, _ := c.Stats()
		assert.Zero(t, up.Datagrams)
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "Close is idempotent")
		_, _, err = c.ReadFrom(buf)
		assert.ErrorIs(t, err, net.ErrClosed)
		_, err = c.WriteTo([]byte{1}, farAddr)
		assert.ErrorIs(t, err, net.ErrClosed)
	})
}

func TestImpairOverflowIsCounted(t *testing.T) {
	got, st := sendUp(t, ImpairOptions{Up: Impairment{Delay: time.Millisecond}, MaxPending: 10}, 25)
	assert.Len(t, got, 10)
	assert.Equal(t, uint64(15), st.Overflow)
}

func TestImpairReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanConn()
		c, err := Impair(inner, ImpairOptions{})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
		start := time.Now()
		_, _, err = c.ReadFrom(make([]byte, 8))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "fake time: the deadline, exactly")

		// A deadline moved while ReadFrom waits applies at once.
		done := make(chan error, 1)
		require.NoError(t, c.SetReadDeadline(time.Time{}))
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 8))
			done <- err
		}()
		synctest.Wait()
		require.NoError(t, c.SetReadDeadline(time.Now()))
		assert.ErrorIs(t, <-done, os.ErrDeadlineExceeded)
	})
}

func TestImpairInnerReadErrorEndsReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := newChanConn()
		c, err := Impair(inner, ImpairOptions{})
		require.NoError(t, err)
		inner.in <- datagram{numbered(1), farAddr}
		synctest.Wait()
		require.NoError(t, inner.Close())
		synctest.Wait()
		n, _, err := c.ReadFrom(make([]byte, 8))
		require.NoError(t, err, "what was queued comes first")
		assert.Equal(t, 4, n)
		_, _, err = c.ReadFrom(make([]byte, 8))
		assert.ErrorIs(t, err, net.ErrClosed)
		require.NoError(t, c.Close())
	})
}

func TestImpairmentValidate(t *testing.T) {
	for _, im := range []Impairment{{Loss: -1}, {Duplicate: 101}, {Reorder: 200}, {Delay: -time.Second}, {Jitter: -1}} {
		err := im.Validate()
		assert.True(t, errors.Is(err, ErrInvalidImpairment), "%+v", im)
		_, err = Impair(newChanConn(), ImpairOptions{Down: im})
		assert.ErrorIs(t, err, ErrInvalidImpairment)
	}
	assert.NoError(t, Impairment{Loss: 100, Duplicate: 0, Reorder: 50}.Validate())
}
