package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// UDP defaults.
const (
	// DefaultRecvBuffer is the socket receive buffer requested by default.
	// An unpaced burst from many sensors (or a simulator) arrives faster
	// than one read loop drains it; the kernel's default of about 200 KiB
	// then drops about half of it.
	DefaultRecvBuffer = 4 << 20
	maxRecvBuffer     = 1 << 30
	maxReadBatch      = 256
	batchBufferSize   = 64 << 10 // above the largest UDP payload, 65507
	// DefaultMulticastHops keeps ADVERTISE and GWINFO on the local link.
	DefaultMulticastHops = 1
)

// UDPOptions configures a UDP listener. The zero value of a field selects
// its default.
type UDPOptions struct {
	// Network is "udp" (default: IPv6 and IPv4 when Addr's host is empty
	// or "::"), "udp4" or "udp6".
	Network string
	// Addr is "host:port" with host an IP literal (zone allowed) or empty
	// for every interface. Required: a given address is used exactly or
	// the listener fails; it never falls back to all interfaces.
	Addr string
	// RecvBuffer is the socket receive buffer to request (default 4 MiB;
	// negative keeps the system default). The size the kernel granted is
	// reported by UDPConn.RecvBufferSize.
	RecvBuffer int
	// MulticastGroups are groups to join to hear SEARCHGW, for example
	// "239.255.18.83" or "ff02::1:1883". Failures to join are logged and
	// reported by UDPConn.MulticastJoins; they do not fail ListenUDP.
	MulticastGroups []string
	// MulticastInterfaces names the interfaces to join on and to send
	// multicast from (the first one). Empty means every interface that is
	// up and multicast-capable.
	MulticastInterfaces []string
	// MulticastHops is the TTL / hop limit of multicast sends (default 1).
	MulticastHops int
	// ReadBatch is how many datagrams one system call may take
	// (recvmmsg on Linux). 0 or 1 reads one datagram per call. Batching
	// costs 64 KiB of buffer per datagram, so that no datagram is ever
	// truncated.
	ReadBatch int
	// BroadcastAddr is where UDPConn.BroadcastAddr points, for ADVERTISE
	// and GWINFO: "ip:port". Default: the first multicast group if any,
	// else 255.255.255.255 (or ff02::1 for udp6), on the listening port.
	BroadcastAddr string
	// Logger receives multicast and socket option reports (default: discard).
	Logger *slog.Logger
}

// udpPlan is the checked form of UDPOptions.
type udpPlan struct {
	network   string
	laddr     *net.UDPAddr
	recvBuf   int
	groups    []netip.Addr
	ifnames   []string
	hops      int
	broadcast netip.AddrPort // port 0 means "the listening port"
	batch     int
	log       *slog.Logger
}

// Validate reports the first option that cannot work, wrapping
// ErrInvalidOptions.
func (o UDPOptions) Validate() error {
	_, err := o.plan()
	return err
}

func (o UDPOptions) plan() (*udpPlan, error) {
	bad := func(format string, args ...any) (*udpPlan, error) {
		return nil, fmt.Errorf("%w: udp %s: %s", ErrInvalidOptions, o.Addr, fmt.Sprintf(format, args...))
	}
	p := &udpPlan{network: o.Network, recvBuf: o.RecvBuffer, ifnames: o.MulticastInterfaces, hops: o.MulticastHops, log: o.Logger}
	if p.network == "" {
		p.network = "udp"
	}
	if p.network != "udp" && p.network != "udp4" && p.network != "udp6" {
		return bad("network %q is not udp, udp4 or udp6", o.Network)
	}
	if o.Addr == "" {
		return bad("listen address is required (use \":1883\" for every interface)")
	}
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return bad("%v", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return bad("port %q is not a number in 0..65535", portStr)
	}
	p.laddr = &net.UDPAddr{Port: int(port)}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return bad("host %q is not an IP address (names could resolve to a different interface than meant)", host)
		}
		if err := familyFits(p.network, ip); err != nil {
			return bad("%v", err)
		}
		p.laddr.IP = ip.AsSlice()
		p.laddr.Zone = ip.Zone()
	}
	if p.recvBuf == 0 {
		p.recvBuf = DefaultRecvBuffer
	}
	if p.recvBuf > maxRecvBuffer {
		return bad("receive buffer %d above %d", p.recvBuf, maxRecvBuffer)
	}
	p.batch = o.ReadBatch
	if p.batch < 0 || p.batch > maxReadBatch {
		return bad("read batch %d outside 0..%d", p.batch, maxReadBatch)
	}
	if p.hops == 0 {
		p.hops = DefaultMulticastHops
	}
	if p.hops < 0 || p.hops > 255 {
		return bad("multicast hops %d outside 1..255", p.hops)
	}
	for _, g := range o.MulticastGroups {
		ip, err := netip.ParseAddr(g)
		if err != nil || !ip.IsMulticast() {
			return bad("multicast group %q is not a multicast IP address", g)
		}
		if err := familyFits(p.network, ip); err != nil {
			return bad("multicast group: %v", err)
		}
		p.groups = append(p.groups, ip.Unmap())
	}
	if o.BroadcastAddr != "" {
		ap, err := netip.ParseAddrPort(o.BroadcastAddr)
		if err != nil {
			return bad("broadcast address %q: %v", o.BroadcastAddr, err)
		}
		if err := familyFits(p.network, ap.Addr()); err != nil {
			return bad("broadcast address: %v", err)
		}
		p.broadcast = ap
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

func familyFits(network string, ip netip.Addr) error {
	switch {
	case network == "udp4" && !ip.Unmap().Is4():
		return fmt.Errorf("%s is not an IPv4 address", ip)
	case network == "udp6" && !ip.Is6():
		return fmt.Errorf("%s is not an IPv6 address", ip)
	}
	return nil
}

// MulticastJoin reports one attempt to join a multicast group.
type MulticastJoin struct {
	Group     netip.Addr
	Interface string // empty when no interface could be tried
	Err       error  // nil when joined
}

// UDPConn is a UDP socket ready for the gateway: a *net.UDPConn (so a
// net.PacketConn) with its receive buffer enlarged, broadcast sends
// allowed, and the configured multicast groups joined.
type UDPConn struct {
	*net.UDPConn
	recvBuf   int
	batch     *batchReader // nil: one datagram per read
	broadcast *net.UDPAddr
	joins     []MulticastJoin
	closeOnce sync.Once
	closeErr  error
	stopCtx   func() bool // set before the UDPConn is returned
}

// ListenUDP validates opts and opens the socket. Cancelling ctx closes it.
func ListenUDP(ctx context.Context, opts UDPOptions) (*UDPConn, error) {
	p, err := opts.plan()
	if err != nil {
		return nil, err
	}
	uc, err := net.ListenUDP(p.network, p.laddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen udp %s: %w", opts.Addr, err)
	}
	c := &UDPConn{UDPConn: uc}
	if err := c.setup(p); err != nil {
		_ = uc.Close()
		return nil, fmt.Errorf("transport: udp %s: %w", uc.LocalAddr(), err)
	}
	c.stopCtx = context.AfterFunc(ctx, func() { _ = c.closeSocket() })
	return c, nil
}

func (c *UDPConn) setup(p *udpPlan) error {
	local := c.LocalAddr().(*net.UDPAddr)
	v4 := local.IP.To4() != nil
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if p.recvBuf > 0 {
		granted, err := setRecvBuffer(c.UDPConn, rc, p.recvBuf)
		if err != nil {
			return fmt.Errorf("receive buffer: %w", err)
		}
		c.recvBuf = granted
		if granted < p.recvBuf {
			p.log.Warn("udp receive buffer smaller than requested; raise net.core.rmem_max or run with CAP_NET_ADMIN",
				"addr", local, "requested", p.recvBuf, "granted", granted)
		}
	} else if c.recvBuf, err = recvBufferSize(rc); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	if v4 || p.network == "udp" {
		if err := setBroadcast(rc); err != nil {
			return fmt.Errorf("enable broadcast: %w", err)
		}
	}

	ifaces, ifErr := multicastInterfaces(p.ifnames)
	if ifErr != nil && len(p.groups) == 0 && len(p.ifnames) > 0 {
		p.log.Warn("multicast interface unavailable; multicast sends use the system default", "addr", local, "err", ifErr)
	}
	if len(p.groups) > 0 {
		c.joins = joinGroups(c.UDPConn, p.groups, ifaces, ifErr)
		for _, j := range c.joins {
			if j.Err != nil {
				p.log.Warn("cannot join multicast group; SEARCHGW sent there will not be heard on this interface",
					"addr", local, "group", j.Group, "interface", j.Interface, "err", j.Err)
			} else {
				p.log.Info("joined multicast group", "addr", local, "group", j.Group, "interface", j.Interface)
			}
		}
	}
	c.configureMulticastSend(p, ifaces)

	dst := p.broadcast
	switch {
	case dst.IsValid():
	case len(p.groups) > 0:
		dst = netip.AddrPortFrom(p.groups[0], 0)
	case v4 || p.network != "udp6":
		dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 0)
	default:
		dst = netip.AddrPortFrom(netip.MustParseAddr("ff02::1"), 0)
	}
	port := dst.Port()
	if port == 0 {
		port = uint16(local.Port)
	}
	ba := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.Addr(), port))
	if ba.IP.IsLinkLocalMulticast() && ba.IP.To4() == nil && ba.Zone == "" && len(ifaces) == 1 {
		ba.Zone = ifaces[0].Name
	}
	c.broadcast = ba
	if p.batch > 1 {
		c.batch = newBatchReader(c.UDPConn, p.batch, v4)
	}
	return nil
}

// configureMulticastSend sets the hop limit of multicast sends and, when
// interfaces were named, the one they leave from.
func (c *UDPConn) configureMulticastSend(p *udpPlan, ifaces []net.Interface) {
	var out *net.Interface
	if len(p.ifnames) > 0 && len(ifaces) > 0 {
		out = &ifaces[0]
	}
	local := c.LocalAddr().(*net.UDPAddr)
	var errs []error
	if local.IP.To4() != nil || p.network != "udp6" {
		pc := ipv4.NewPacketConn(c.UDPConn)
		errs = append(errs, pc.SetMulticastTTL(p.hops))
		if out != nil {
			errs = append(errs, pc.SetMulticastInterface(out))
		}
	}
	if local.IP.To4() == nil && p.network != "udp4" {
		pc := ipv6.NewPacketConn(c.UDPConn)
		errs = append(errs, pc.SetMulticastHopLimit(p.hops))
		if out != nil {
			errs = append(errs, pc.SetMulticastInterface(out))
		}
	}
	if err := errors.Join(errs...); err != nil {
		// A dual-stack socket may refuse the options of one family; sends
		// of that family then use the system defaults.
		p.log.Debug("multicast send options not fully applied", "addr", local, "err", err)
	}
}

// multicastInterfaces returns the named interfaces, or every interface that
// is up and multicast-capable.
func multicastInterfaces(names []string) ([]net.Interface, error) {
	if len(names) > 0 {
		var out []net.Interface
		var errs []error
		for _, n := range names {
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("interface %q: %w", n, err))
				continue
			}
			out = append(out, *ifi)
		}
		return out, errors.Join(errs...)
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
			out = append(out, ifi)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no interface is up and multicast-capable")
	}
	return out, nil
}

// joinGroups joins every group on every interface and reports each
// attempt; interface lookup failures are reported against each group.
func joinGroups(uc *net.UDPConn, groups []netip.Addr, ifaces []net.Interface, ifErr error) []MulticastJoin {
	var joins []MulticastJoin
	p4 := ipv4.NewPacketConn(uc)
	p6 := ipv6.NewPacketConn(uc)
	for _, g := range groups {
		if ifErr != nil {
			joins = append(joins, MulticastJoin{Group: g, Err: ifErr})
		}
		ga := &net.UDPAddr{IP: g.AsSlice()}
		for i := range ifaces {
			ifi := &ifaces[i]
			var err error
			if g.Is4() {
				err = p4.JoinGroup(ifi, ga)
			} else {
				err = p6.JoinGroup(ifi, ga)
			}
			joins = append(joins, MulticastJoin{Group: g, Interface: ifi.Name, Err: err})
		}
	}
	return joins
}

// ReadFrom implements net.PacketConn. With UDPOptions.ReadBatch above 1 it
// takes several queued datagrams per system call and returns them one at a
// time; ReadFromUDP and the other *net.UDPConn read methods bypass the
// batch and must not be mixed with it.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.batch == nil {
		return c.UDPConn.ReadFrom(b)
	}
	return c.batch.readFrom(b)
}

// batchReader serves ReadFrom from datagrams read in batches.
type batchReader struct {
	mu      sync.Mutex
	read    func([]ipv4.Message, int) (int, error)
	msgs    []ipv4.Message
	next, n int // msgs[next:n] are read but not yet returned
}

func newBatchReader(uc *net.UDPConn, size int, v4 bool) *batchReader {
	r := &batchReader{msgs: make([]ipv4.Message, size)}
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{make([]byte, batchBufferSize)}
	}
	// ipv4.Message and ipv6.Message are the same type; the socket family
	// decides which package parses the source addresses.
	if v4 {
		r.read = ipv4.NewPacketConn(uc).ReadBatch
	} else {
		r.read = ipv6.NewPacketConn(uc).ReadBatch
	}
	return r
}

func (r *batchReader) readFrom(b []byte) (int, net.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == r.n {
		n, err := r.read(r.msgs, 0)
		if err != nil {
			return 0, nil, err
		}
		r.next, r.n = 0, n
	}
	m := &r.msgs[r.next]
	r.next++
	return copy(b, m.Buffers[0][:m.N]), m.Addr, nil
}

// RecvBufferSize returns the receive buffer size the kernel reports for the
// socket. Linux reports twice the usable size, to account for its own
// bookkeeping, and caps requests at net.core.rmem_max unless the process
// may override it.
func (c *UDPConn) RecvBufferSize() int { return c.recvBuf }

// BroadcastAddr returns where ADVERTISE and GWINFO go: the configured
// broadcast address, else the first multicast group, else the IPv4
// limited broadcast (or ff02::1 for IPv6), on the listening port.
func (c *UDPConn) BroadcastAddr() net.Addr { return c.broadcast }

// MulticastJoins reports every attempt to join a multicast group.
func (c *UDPConn) MulticastJoins() []MulticastJoin { return c.joins }

// Close closes the socket; blocked reads return an error matching
// net.ErrClosed. It is safe to call more than once.
func (c *UDPConn) Close() error {
	c.stopCtx()
	return c.closeSocket()
}

// closeSocket closes the socket once; it runs from Close and when the
// listener's context ends.
func (c *UDPConn) closeSocket() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.UDPConn.Close()
	})
	return c.closeErr
}

var _ net.PacketConn = (*UDPConn)(nil)
