package memconn

import (
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/archtest"
)

func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/internal/memconn")
}

// read is one ReadFrom's result.
type read struct {
	data string
	from net.Addr
	err  error
}

func readOne(c *Conn) read {
	buf := make([]byte, 64)
	n, from, err := c.ReadFrom(buf)
	return read{string(buf[:n]), from, err}
}

// readAsync runs ReadFrom on its own goroutine.
func readAsync(c *Conn) <-chan read {
	ch := make(chan read, 1)
	go func() { ch <- readOne(c) }()
	return ch
}

func send(t *testing.T, c *Conn, to, data string) {
	t.Helper()
	n, err := c.WriteTo([]byte(data), Addr(to))
	require.NoError(t, err)
	require.Equal(t, len(data), n)
}

func TestUnicast(t *testing.T) {
	n := NewNetwork()
	a, b := n.Listen("a"), n.Listen("b")
	buf := []byte("one")
	_, err := a.WriteTo(buf, b.LocalAddr())
	require.NoError(t, err)
	buf[0] = 'X' // the datagram was copied
	send(t, a, "b", "two")
	assert.Equal(t, 2, b.Pending())
	assert.Equal(t, read{"one", Addr("a"), nil}, readOne(b))
	assert.Equal(t, read{"two", Addr("a"), nil}, readOne(b))
	assert.Zero(t, b.Pending())
	assert.Zero(t, a.Pending())
	assert.Zero(t, n.Dropped.Load())
	assert.Equal(t, "mem", a.LocalAddr().Network())
}

func TestDrops(t *testing.T) {
	n := NewNetwork()
	a, b := n.Listen("a"), n.Listen("b")
	send(t, a, "nowhere", "x")
	assert.Equal(t, uint64(1), n.Dropped.Load(), "no listener")
	for range QueueLen + 2 {
		send(t, a, "b", "x")
	}
	assert.Equal(t, QueueLen, b.Pending())
	assert.Equal(t, uint64(3), n.Dropped.Load(), "queue full")
}

func TestListenTaken(t *testing.T) {
	n := NewNetwork()
	a := n.Listen("a")
	assert.PanicsWithValue(t, `memconn: address "a" in use`, func() { n.Listen("a") })
	require.NoError(t, a.Close())
	n.Listen("a") // free again
}

func TestGroup(t *testing.T) {
	n := NewNetwork()
	client, gw1, gw2, other := n.Listen("client"), n.Listen("gw1"), n.Listen("gw2"), n.Listen("other")
	gw1.Join("bcast")
	gw2.Join("bcast")
	gw2.Join("bcast") // joining again changes nothing
	client.Join("bcast")
	send(t, client, "bcast", "search")
	for _, c := range []*Conn{gw1, gw2, client} {
		assert.Equal(t, read{"search", Addr("client"), nil}, readOne(c), c.LocalAddr())
	}
	assert.Zero(t, gw2.Pending(), "one copy per member")
	assert.Zero(t, other.Pending(), "not a member")
	// A member's own address still works, answers go to the sender's.
	send(t, gw1, "client", "info")
	assert.Equal(t, read{"info", Addr("gw1"), nil}, readOne(client))

	// Close leaves the group; a group with no members drops.
	require.NoError(t, gw1.Close())
	require.NoError(t, gw2.Close())
	require.NoError(t, client.Close())
	gw1.Join("bcast") // a closed Conn joins nothing
	send(t, other, "bcast", "search")
	assert.Equal(t, uint64(1), n.Dropped.Load())
	n.Listen("bcast") // no longer a group
}

func TestGroupFullMember(t *testing.T) {
	n := NewNetwork()
	a, full, ok := n.Listen("a"), n.Listen("full"), n.Listen("ok")
	full.Join("g")
	for range QueueLen {
		send(t, a, "full", "x")
	}
	ok.Join("g")
	send(t, a, "g", "y")
	assert.Equal(t, uint64(1), n.Dropped.Load())
	assert.Equal(t, 1, ok.Pending())
}

func TestGroupNameConflicts(t *testing.T) {
	n := NewNetwork()
	a := n.Listen("a")
	a.Join("g")
	assert.PanicsWithValue(t, `memconn: address "g" is a group`, func() { n.Listen("g") })
	assert.PanicsWithValue(t, `memconn: group "a" is the address of a conn`, func() { a.Join("a") })
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		a, b := n.Listen("a"), n.Listen("b")
		pending := readAsync(a)
		synctest.Wait()
		require.NoError(t, a.Close())
		require.NoError(t, a.Close(), "Close is idempotent")
		assert.ErrorIs(t, (<-pending).err, net.ErrClosed)
		assert.ErrorIs(t, readOne(a).err, net.ErrClosed)
		_, err := a.WriteTo([]byte("x"), Addr("b"))
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.Zero(t, b.Pending())
		send(t, b, "a", "x")
		assert.Equal(t, uint64(1), n.Dropped.Load(), "a closed Conn has no address")
	})
}

func TestDeadlineExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		a, b := n.Listen("a"), n.Listen("b")
		start := time.Now()
		require.NoError(t, a.SetReadDeadline(start.Add(time.Second)))
		assert.Equal(t, start.Add(time.Second), a.ReadDeadline())
		r := readOne(a)
		require.ErrorIs(t, r.err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, r.err, &ne)
		assert.True(t, ne.Timeout())
		assert.Equal(t, time.Second, time.Since(start))

		// Past the deadline a read fails even with a datagram waiting,
		// as a socket's does, and the datagram stays for later.
		send(t, b, "a", "late")
		assert.ErrorIs(t, readOne(a).err, os.ErrDeadlineExceeded)
		require.NoError(t, a.SetDeadline(time.Time{}))
		assert.True(t, a.ReadDeadline().IsZero())
		assert.Equal(t, read{"late", Addr("b"), nil}, readOne(a))
		require.NoError(t, a.SetWriteDeadline(start), "writes have no deadline")
		send(t, a, "b", "x")
	})
}

func TestDeadlineChangesBlockedRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		a, b := n.Listen("a"), n.Listen("b")
		start := time.Now()

		// Moving the deadline into the past unblocks a read that has
		// none, without the clock moving.
		pending := readAsync(a)
		synctest.Wait()
		require.NoError(t, a.SetReadDeadline(time.Unix(1, 0)))
		assert.ErrorIs(t, (<-pending).err, os.ErrDeadlineExceeded)
		assert.Equal(t, start, time.Now())

		// Extending it keeps a blocked read waiting past the old one,
		// shortening it cuts the wait short.
		require.NoError(t, a.SetReadDeadline(start.Add(time.Second)))
		pending = readAsync(a)
		synctest.Wait()
		require.NoError(t, a.SetReadDeadline(start.Add(time.Hour)))
		time.Sleep(time.Minute) // advances the fake clock past the first deadline
		synctest.Wait()
		assert.Empty(t, pending, "the read ended at the old deadline")
		require.NoError(t, a.SetReadDeadline(start.Add(2*time.Minute)))
		assert.ErrorIs(t, (<-pending).err, os.ErrDeadlineExceeded)
		assert.Equal(t, 2*time.Minute, time.Since(start))

		// Clearing it leaves a blocked read waiting for data.
		require.NoError(t, a.SetReadDeadline(time.Now().Add(time.Second)))
		pending = readAsync(a)
		synctest.Wait()
		require.NoError(t, a.SetReadDeadline(time.Time{}))
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Empty(t, pending, "the read ended with no deadline")
		send(t, b, "a", "data")
		assert.Equal(t, read{"data", Addr("b"), nil}, <-pending)
	})
}
