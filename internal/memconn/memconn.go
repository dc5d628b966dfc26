package memconn

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// QueueLen is the number of datagrams a Conn holds before it drops.
const QueueLen = 4096

// Addr is an address on a Network.
type Addr string

// Network implements net.Addr.
func (Addr) Network() string  { return "mem" }
func (a Addr) String() string { return string(a) }

// Network connects Conns by address.
type Network struct {
	mu     sync.Mutex
	conns  map[Addr]*Conn
	groups map[Addr]map[*Conn]struct{} // group → members; never empty
	// Dropped counts datagrams that found no listener or a full queue; a
	// datagram to a group counts once for every member that dropped it.
	Dropped atomic.Uint64
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{conns: make(map[Addr]*Conn), groups: make(map[Addr]map[*Conn]struct{})}
}

// Listen returns a Conn bound to addr; it panics if addr is taken, by a
// Conn or a group, which is a mistake in the test.
func (n *Network) Listen(addr string) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := Addr(addr)
	if _, taken := n.conns[a]; taken {
		panic(fmt.Sprintf("memconn: address %q in use", addr))
	}
	if _, group := n.groups[a]; group {
		panic(fmt.Sprintf("memconn: address %q is a group", addr))
	}
	c := &Conn{
		net:         n,
		addr:        a,
		in:          make(chan datagram, QueueLen),
		closed:      make(chan struct{}),
		deadlineSet: make(chan struct{}),
	}
	n.conns[a] = c
	return c
}

type datagram struct {
	b    []byte
	from Addr
}

// Conn is one endpoint; it implements net.PacketConn.
type Conn struct {
	net    *Network
	addr   Addr
	in     chan datagram
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	// deadlineSet is closed, and replaced, whenever the read deadline
	// changes, so that a ReadFrom blocked under the old deadline starts
	// over with the new one.
	deadlineSet chan struct{}
}

// Join makes c receive, besides what is sent to its own address, every
// datagram sent to group, as a socket does that listens for broadcasts or
// has joined a multicast group. That includes datagrams c sends to group
// itself, as with multicast loopback. Joining again does nothing; Close
// leaves every group. Join panics if group is the address of a Conn,
// which is a mistake in the test.
func (c *Conn) Join(group string) {
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	g := Addr(group)
	if _, taken := n.conns[g]; taken {
		panic(fmt.Sprintf("memconn: group %q is the address of a conn", group))
	}
	if n.conns[c.addr] != c {
		return // closed
	}
	members := n.groups[g]
	if members == nil {
		members = make(map[*Conn]struct{})
		n.groups[g] = members
	}
	members[c] = struct{}{}
}

// ReadFrom returns the next datagram sent to c. Like a socket's, it fails
// with os.ErrDeadlineExceeded once the read deadline has passed, even if
// datagrams are waiting.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, changed := c.deadline, c.deadlineSet
		c.mu.Unlock()
		var (
			timer   *time.Timer
			timeout <-chan time.Time
		)
		if !dl.IsZero() {
			wait := time.Until(dl)
			if wait <= 0 {
				return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
			}
			timer = time.NewTimer(wait)
			timeout = timer.C
		}
		select {
		case d := <-c.in:
			stop(timer)
			return copy(p, d.b), d.from, nil
		case <-c.closed:
			stop(timer)
			return 0, nil, c.opError("read", net.ErrClosed)
		case <-timeout:
			// Checked again above: the deadline may have moved meanwhile.
		case <-changed:
			stop(timer)
		}
	}
}

func stop(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "mem", Addr: c.addr, Err: err}
}

// WriteTo sends a copy of p to addr: to the Conn bound to it, or to every
// member if addr is a group.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opError("write", net.ErrClosed)
	default:
	}
	n := c.net
	to := Addr(addr.String())
	n.mu.Lock()
	var dst []*Conn
	if conn := n.conns[to]; conn != nil {
		dst = append(dst, conn)
	}
	for m := range n.groups[to] {
		dst = append(dst, m)
	}
	n.mu.Unlock()
	if len(dst) == 0 {
		n.Dropped.Add(1)
		return len(p), nil
	}
	for _, d := range dst {
		select {
		case d.in <- datagram{b: append([]byte(nil), p...), from: c.addr}:
		default:
			n.Dropped.Add(1)
		}
	}
	return len(p), nil
}

// Close unbinds c, leaves its groups and unblocks its readers.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		n := c.net
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.conns, c.addr)
		for g, members := range n.groups {
			delete(members, c)
			if len(members) == 0 {
				delete(n.groups, g)
			}
		}
	})
	return nil
}

// LocalAddr returns c's address.
func (c *Conn) LocalAddr() net.Addr { return c.addr }

// SetDeadline sets the read deadline; writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline bounds ReadFrom calls, those already blocked included;
// a zero t means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.deadlineSet)
	c.deadlineSet = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// ReadDeadline returns the read deadline last set, so a test can check
// that code which borrows a Conn hands it back without one.
func (c *Conn) ReadDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline
}

// SetWriteDeadline does nothing: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// Pending returns the number of datagrams waiting to be read. Under
// testing/synctest, call synctest.Wait first: then nothing is in transit
// and zero means nothing more will arrive.
func (c *Conn) Pending() int { return len(c.in) }
