package simulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
	"github.com/snwgw/snwgw/transport"
)

// Link says how devices reach the gateway: UDP, one socket per device, or a
// serial line they share.
type Link struct {
	// UDP is the gateway's UDP address, host:port.
	UDP string
	// Serial, when its Device is set, is a serial line to the gateway.
	// A raw line joins two peers, so it carries one device. On an XBee
	// line the devices share the local module and address the gateway
	// through forwarder encapsulation (MQTT-SN 1.2 §5.5), each with its
	// name as Wireless Node Id, as nodes behind a radio forwarder would.
	Serial transport.SerialOptions
	// SerialGateway is the gateway's address on an XBee line; nil on a raw
	// line, whose only peer is the gateway.
	SerialGateway net.Addr
}

// ErrInvalidFleet: the Fleet holds a value that cannot run.
var ErrInvalidFleet = errors.New("simulator: invalid fleet")

// Validate reports a link that names no gateway, or two.
func (l Link) Validate() error {
	switch {
	case l.UDP == "" && l.Serial.Device == "":
		return fmt.Errorf("%w: no gateway: give a UDP address or a serial device", ErrInvalidFleet)
	case l.UDP != "" && l.Serial.Device != "":
		return fmt.Errorf("%w: both a UDP address and a serial device given", ErrInvalidFleet)
	}
	return nil
}

// rawSerial reports a raw serial line, which carries a single device.
func (l Link) rawSerial() bool {
	return l.Serial.Device != "" && l.Serial.Framer == nil && (l.Serial.Framing == "" || l.Serial.Framing == transport.FramingRaw)
}

// endpoint is what a device needs to dial its gateway.
type endpoint struct {
	conn      net.PacketConn
	gw        net.Addr
	forwarder *client.Forwarder
	impaired  *ImpairedConn // nil when not impaired
}

// linker opens the devices' endpoints on a Link.
type linker interface {
	// open returns a new endpoint for the device called name, impaired
	// with opts unless they change nothing.
	open(name string, impair *ImpairOptions) (endpoint, error)
	// close releases what the linker shares between devices.
	close() error
	// stats returns the impairment counters of shared links.
	stats() (up, down ImpairStats)
}

func newLinker(ctx context.Context, l Link, impair *ImpairOptions) (linker, error) {
	if l.UDP != "" {
		gw, err := net.ResolveUDPAddr("udp", l.UDP)
		if err != nil {
			return nil, fmt.Errorf("simulator: gateway address: %w", err)
		}
		return &udpLinker{gw: gw}, nil
	}
	return openSerialMux(ctx, l, impair)
}

// udpLinker gives every device a socket of its own, as separate radios.
type udpLinker struct{ gw *net.UDPAddr }

func (u *udpLinker) open(_ string, impair *ImpairOptions) (endpoint, error) {
	local := &net.UDPAddr{}
	if u.gw.IP.IsLoopback() {
		local.IP = u.gw.IP
	}
	network := "udp4"
	if u.gw.IP.To4() == nil {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, local)
	if err != nil {
		return endpoint{}, fmt.Errorf("simulator: device socket: %w", err)
	}
	ep := endpoint{conn: conn, gw: u.gw}
	if impair != nil {
		ic, err := Impair(conn, *impair)
		if err != nil {
			conn.Close()
			return endpoint{}, err
		}
		ep.conn, ep.impaired = ic, ic
	}
	return ep, nil
}

func (u *udpLinker) close() error                  { return nil }
func (u *udpLinker) stats() (up, down ImpairStats) { return }

// nodeQueue bounds the datagrams waiting for one device of a serial line.
const nodeQueue = 64

// serialMux shares one serial line between the devices on it. Its read loop
// alone reads the line and routes each encapsulated message to the device
// whose node id it carries.
type serialMux struct {
	line     net.PacketConn
	impaired *ImpairedConn
	gw       net.Addr
	raw      bool // one device, unencapsulated
	wg       sync.WaitGroup
	once     sync.Once

	mu    sync.Mutex
	nodes map[string]*muxConn // only with mu

	unrouted atomic.Uint64 // datagrams for no known node
}

func openSerialMux(ctx context.Context, l Link, impair *ImpairOptions) (*serialMux, error) {
	line, err := transport.OpenSerial(ctx, l.Serial)
	if err != nil {
		return nil, fmt.Errorf("simulator: serial link: %w", err)
	}
	m := &serialMux{line: line, gw: l.SerialGateway, raw: l.rawSerial(), nodes: make(map[string]*muxConn)}
	if m.gw == nil {
		m.gw = line.LocalAddr() // the raw line's single peer
	}
	if impair != nil {
		ic, err := Impair(line, *impair)
		if err != nil {
			line.Close()
			return nil, err
		}
		m.line, m.impaired = ic, ic
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.readLoop()
	}()
	return m, nil
}

// nodeOf returns the Wireless Node Id of an encapsulated message.
func nodeOf(b []byte) (string, bool) {
	if len(b) < 2 || b[0] < 3 || b[1] != byte(mqttsn.TypeEncapsulated) {
		return "", false
	}
	p, err := mqttsn.Parse(b)
	if err != nil {
		return "", false
	}
	e, ok := p.(*mqttsn.Encapsulated)
	if !ok {
		return "", false
	}
	return string(e.NodeID), true
}

func (m *serialMux) readLoop() {
	buf := make([]byte, 65535)
	for {
		n, _, err := m.line.ReadFrom(buf)
		if err != nil {
			m.mu.Lock()
			for _, c := range m.nodes {
				c.fail(err)
			}
			m.mu.Unlock()
			return
		}
		node, ok := "", true
		if !m.raw {
			node, ok = nodeOf(buf[:n])
		}
		m.mu.Lock()
		c := m.nodes[node]
		m.mu.Unlock()
		if !ok || c == nil {
			m.unrouted.Add(1)
			continue
		}
		c.push(append([]byte(nil), buf[:n]...))
	}
}

func (m *serialMux) open(name string, _ *ImpairOptions) (endpoint, error) {
	if len(name) == 0 || len(name) > 252 {
		return endpoint{}, fmt.Errorf("%w: device name %q cannot be a Wireless Node Id (1 to 252 octets)", ErrInvalidFleet, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw {
		if len(m.nodes) > 0 {
			return endpoint{}, fmt.Errorf("%w: a raw serial line carries one device; %q has no room", ErrInvalidFleet, name)
		}
		c := &muxConn{mux: m, node: "", in: make(chan []byte, nodeQueue), done: make(chan struct{}), failed: make(chan struct{})}
		m.nodes[""] = c
		return endpoint{conn: c, gw: m.gw}, nil
	}
	if m.nodes[name] != nil {
		return endpoint{}, fmt.Errorf("%w: two devices called %q on one serial line", ErrInvalidFleet, name)
	}
	c := &muxConn{mux: m, node: name, in: make(chan []byte, nodeQueue), done: make(chan struct{}), failed: make(chan struct{})}
	m.nodes[name] = c
	return endpoint{conn: c, gw: m.gw, forwarder: &client.Forwarder{NodeID: []byte(name)}}, nil
}

func (m *serialMux) close() error {
	var err error
	m.once.Do(func() {
		err = m.line.Close()
		m.wg.Wait()
	})
	return err
}

func (m *serialMux) stats() (up, down ImpairStats) {
	if m.impaired == nil {
		return
	}
	return m.impaired.Stats()
}

// muxConn is one device's view of a shared serial line.
type muxConn struct {
	mux     *serialMux
	node    string
	in      chan []byte
	done    chan struct{}
	once    sync.Once
	errOnce sync.Once
	err     error         // set before failed is closed
	failed  chan struct{} // closed when the line fails
	dropped atomic.Uint64
}

func (c *muxConn) push(b []byte) {
	select {
	case c.in <- b:
	default:
		c.dropped.Add(1)
	}
}

// fail ends reads with the line's error; called by the read loop with
// mux.mu held.
func (c *muxConn) fail(err error) {
	c.errOnce.Do(func() {
		c.err = err
		close(c.failed)
	})
}

func (c *muxConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.in:
		return copy(p, b), c.mux.gw, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	case <-c.failed:
		return 0, nil, c.err
	}
}

func (c *muxConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.mux.line.WriteTo(p, c.mux.gw)
}

// Close detaches the device from the line; the line stays open for the
// others.
func (c *muxConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.mux.mu.Lock()
		delete(c.mux.nodes, c.node)
		c.mux.mu.Unlock()
	})
	return nil
}

func (c *muxConn) LocalAddr() net.Addr { return c.mux.line.LocalAddr() }

// Deadlines are not supported on a shared line: the client never sets them
// once dialled.
func (c *muxConn) SetDeadline(time.Time) error      { return nil }
func (c *muxConn) SetReadDeadline(time.Time) error  { return nil }
func (c *muxConn) SetWriteDeadline(time.Time) error { return nil }
