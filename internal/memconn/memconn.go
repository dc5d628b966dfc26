// Package memconn is an in-memory datagram network for tests: every Conn
// is a net.PacketConn built on channels, so tests that drive timers with
// testing/synctest can run a gateway and its clients without sockets (the
// fake clock only advances while every goroutine is blocked on channels or
// timers, which socket I/O is not).
//
// Delivery follows UDP: a datagram to an address nobody listens on, or to
// a Conn whose queue is full, is dropped and counted.
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
	mu    sync.Mutex
	conns map[Addr]*Conn
	// Dropped counts datagrams that found no listener or a full queue.
	Dropped atomic.Uint64
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{conns: make(map[Addr]*Conn)} }

// Listen returns a Conn bound to addr; it panics if addr is taken, which is
// a mistake in the test.
func (n *Network) Listen(addr string) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := Addr(addr)
	if _, taken := n.conns[a]; taken {
		panic(fmt.Sprintf("memconn: address %q in use", addr))
	}
	c := &Conn{net: n, addr: a, in: make(chan datagram, QueueLen), closed: make(chan struct{})}
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
}

// ReadFrom returns the next datagram sent to c.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.mu.Lock()
	dl := c.deadline
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case d := <-c.in:
		return copy(p, d.b), d.from, nil
	case <-c.closed:
		return 0, nil, &net.OpError{Op: "read", Net: "mem", Addr: c.addr, Err: net.ErrClosed}
	case <-timeout:
		return 0, nil, &net.OpError{Op: "read", Net: "mem", Addr: c.addr, Err: os.ErrDeadlineExceeded}
	}
}

// WriteTo sends a copy of p to addr.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, &net.OpError{Op: "write", Net: "mem", Addr: c.addr, Err: net.ErrClosed}
	default:
	}
	c.net.mu.Lock()
	dst := c.net.conns[Addr(addr.String())]
	c.net.mu.Unlock()
	if dst == nil {
		c.net.Dropped.Add(1)
		return len(p), nil
	}
	select {
	case dst.in <- datagram{b: append([]byte(nil), p...), from: c.addr}:
	default:
		c.net.Dropped.Add(1)
	}
	return len(p), nil
}

// Close unbinds c and unblocks its readers.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.net.mu.Lock()
		delete(c.net.conns, c.addr)
		c.net.mu.Unlock()
	})
	return nil
}

// LocalAddr returns c's address.
func (c *Conn) LocalAddr() net.Addr { return c.addr }

// SetDeadline sets the read deadline; writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline bounds ReadFrom calls that start after it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// Pending returns the number of datagrams waiting to be read. Under
// testing/synctest, call synctest.Wait first: then nothing is in transit
// and zero means nothing more will arrive.
func (c *Conn) Pending() int { return len(c.in) }
