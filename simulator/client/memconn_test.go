package client

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// memAddr is the address of one end of a memConn pair.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

type datagram struct {
	b        []byte
	from, to net.Addr
}

// memConn is one end of an in-memory datagram link built on channels, so
// testing/synctest sees goroutines blocked on it as durably blocked and
// can drive timers deterministically. Like UDP it drops datagrams when the
// receiver's queue is full; WriteTo delivers to the peer whatever the
// destination address (which the peer can inspect), as a broadcast would.
type memConn struct {
	addr   net.Addr
	in     chan datagram
	peer   *memConn
	closed chan struct{}
	once   sync.Once
	drops  atomic.Int64

	mu       sync.Mutex
	deadline time.Time
	kick     chan struct{} // wakes a read blocked on an old deadline
}

func newMemConn(addr string) *memConn {
	return &memConn{
		addr:   memAddr(addr),
		in:     make(chan datagram, 256),
		closed: make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
}

// memPipe returns two connected ends.
func memPipe(a, b string) (*memConn, *memConn) {
	ca, cb := newMemConn(a), newMemConn(b)
	ca.peer, cb.peer = cb, ca
	return ca, cb
}

func (c *memConn) recv() (datagram, error) {
	for {
		c.mu.Lock()
		d := c.deadline
		c.mu.Unlock()
		var timeout <-chan time.Time
		var timer *time.Timer
		if !d.IsZero() {
			wait := time.Until(d)
			if wait <= 0 {
				return datagram{}, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(wait)
			timeout = timer.C
		}
		var (
			dg  datagram
			err error
			ok  = true
		)
		select {
		case dg = <-c.in:
		case <-c.closed:
			err = net.ErrClosed
		case <-timeout:
			err = os.ErrDeadlineExceeded
		case <-c.kick:
			ok = false
		}
		if timer != nil {
			timer.Stop()
		}
		if ok {
			return dg, err
		}
	}
}

func (c *memConn) ReadFrom(p []byte) (int, net.Addr, error) {
	dg, err := c.recv()
	if err != nil {
		return 0, nil, err
	}
	return copy(p, dg.b), dg.from, nil
}

func (c *memConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	dg := datagram{b: append([]byte(nil), p...), from: c.addr, to: addr}
	select {
	case c.peer.in <- dg:
	default:
		c.drops.Add(1)
	}
	return len(p), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr { return c.addr }

func (c *memConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// pending reports how many datagrams wait to be read.
func (c *memConn) pending() int { return len(c.in) }
