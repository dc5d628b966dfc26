package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func listenUDP(t testing.TB, opts UDPOptions) *UDPConn {
	t.Helper()
	c, err := ListenUDP(context.Background(), opts)
	if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Skipf("%s not available on this machine: %v", opts.Addr, err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// guard sets a deadline that only keeps a broken test from hanging.
func guard(t testing.TB, c interface{ SetReadDeadline(time.Time) error }) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
}

func TestUDPRoundTripManyPeers(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		batch int
	}{{"127.0.0.1:0", 0}, {"[::1]:0", 0}, {"127.0.0.1:0", 8}, {"[::1]:0", 8}, {"[::]:0", 4}} {
		t.Run(fmt.Sprintf("%s batch %d", tc.addr, tc.batch), func(t *testing.T) {
			srv := listenUDP(t, UDPOptions{Addr: tc.addr, ReadBatch: tc.batch})
			const peers, each = 32, 8
			clients := make([]*net.UDPConn, peers)
			for i := range clients {
				dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
				if dst.Addr().IsUnspecified() {
					// Dual stack: half the peers over IPv4.
					dst = netip.AddrPortFrom(netip.MustParseAddr([]string{"127.0.0.1", "::1"}[i%2]), dst.Port())
				}
				c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				clients[i] = c
			}
			for k := range each {
				for i, c := range clients {
					_, err := c.Write([]byte(fmt.Sprintf("%d/%d", i, k)))
					require.NoError(t, err)
				}
			}
			// The gateway side echoes every datagram to its sender.
			seen := map[string]int{}
			buf := make([]byte, 1500)
			guard(t, srv)
			for range peers * each {
				n, from, err := srv.ReadFrom(buf)
				require.NoError(t, err)
				seen[from.String()]++
				_, err = srv.WriteTo(buf[:n], from)
				require.NoError(t, err)
			}
			assert.Len(t, seen, peers, "one address per peer")
			for i, c := range clients {
				guard(t, c)
				got := map[string]bool{}
				for range each {
					n, err := c.Read(buf)
					require.NoError(t, err)
					got[string(buf[:n])] = true
				}
				for k := range each {
					assert.True(t, got[fmt.Sprintf("%d/%d", i, k)], "peer %d echo %d", i, k)
				}
			}
		})
	}
}

func TestUDPRecvBufferReported(t *testing.T) {
	c := listenUDP(t, UDPOptions{Addr: "127.0.0.1:0", RecvBuffer: 1 << 20})
	// Linux doubles the request for bookkeeping; other systems report it.
	assert.GreaterOrEqual(t, c.RecvBufferSize(), 1<<20)
	d := listenUDP(t, UDPOptions{Addr: "127.0.0.1:0", RecvBuffer: -1})
	assert.Positive(t, d.RecvBufferSize())
	assert.Less(t, d.RecvBufferSize(), c.RecvBufferSize())
}

func TestUDPCloseUnblocksRead(t *testing.T) {
	for _, tc := range []struct {
		viaCtx bool
		batch  int
	}{{false, 0}, {true, 0}, {false, 8}, {true, 8}} {
		viaCtx := tc.viaCtx
		ctx, cancel := context.WithCancel(context.Background())
		c, err := ListenUDP(ctx, UDPOptions{Addr: "127.0.0.1:0", ReadBatch: tc.batch})
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 64))
			errc <- err
		}()
		if viaCtx {
			cancel()
		} else {
			require.NoError(t, c.Close())
		}
		require.ErrorIs(t, <-errc, net.ErrClosed)
		require.NoError(t, c.Close(), "Close is idempotent")
		cancel()
	}
}

func TestUDPOptionErrors(t *testing.T) {
	for name, o := range map[string]UDPOptions{
		"no address":       {},
		"host name":        {Addr: "localhost:1883"},
		"bad port":         {Addr: "127.0.0.1:99999"},
		"no port":          {Addr: "127.0.0.1"},
		"network":          {Network: "tcp", Addr: ":1883"},
		"v6 on udp4":       {Network: "udp4", Addr: "[::1]:1883"},
		"v4 on udp6":       {Network: "udp6", Addr: "127.0.0.1:1883"},
		"not multicast":    {Addr: ":1883", MulticastGroups: []string{"10.0.0.1"}},
		"group family":     {Network: "udp4", Addr: ":1883", MulticastGroups: []string{"ff02::1"}},
		"hops":             {Addr: ":1883", MulticastHops: 256},
		"buffer":           {Addr: ":1883", RecvBuffer: 2 << 30},
		"batch":            {Addr: ":1883", ReadBatch: 1000},
		"broadcast syntax": {Addr: ":1883", BroadcastAddr: "255.255.255.255"},
	} {
		assert.ErrorIs(t, o.Validate(), ErrInvalidOptions, name)
		_, err := ListenUDP(context.Background(), o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
	// An address that is not on this machine fails; it does not fall back
	// to every interface.
	_, err := ListenUDP(context.Background(), UDPOptions{Addr: "203.0.113.77:0"})
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalidOptions)
}

func TestUDPBroadcastAddr(t *testing.T) {
	c := listenUDP(t, UDPOptions{Addr: "127.0.0.1:0"})
	port := c.LocalAddr().(*net.UDPAddr).Port
	assert.Equal(t, fmt.Sprintf("255.255.255.255:%d", port), c.BroadcastAddr().String())
	c6 := listenUDP(t, UDPOptions{Network: "udp6", Addr: "[::1]:0"})
	b6 := c6.BroadcastAddr().(*net.UDPAddr)
	assert.Equal(t, "ff02::1", b6.IP.String())
	assert.Equal(t, c6.LocalAddr().(*net.UDPAddr).Port, b6.Port)
	// With a single multicast-capable interface, the link-local group is
	// scoped to it; otherwise the system picks the interface.
	if ifs, err := multicastInterfaces(nil); err == nil && len(ifs) == 1 {
		assert.Equal(t, ifs[0].Name, b6.Zone)
	}
	cg := listenUDP(t, UDPOptions{Addr: "0.0.0.0:0", MulticastGroups: []string{"239.255.18.83"}})
	assert.Equal(t, fmt.Sprintf("239.255.18.83:%d", cg.LocalAddr().(*net.UDPAddr).Port), cg.BroadcastAddr().String())
	cb := listenUDP(t, UDPOptions{Addr: "127.0.0.1:0", BroadcastAddr: "192.0.2.255:1883"})
	assert.Equal(t, "192.0.2.255:1883", cb.BroadcastAddr().String())
}

func TestUDPMulticastSearchGW(t *testing.T) {
	cases := []struct {
		network, addr, group string
	}{
		{"udp4", "0.0.0.0:0", "239.255.18.83"},
		{"udp6", "[::]:0", "ff02::1883"},
	}
	for _, tc := range cases {
		t.Run(tc.network, func(t *testing.T) {
			gw := listenUDP(t, UDPOptions{Network: tc.network, Addr: tc.addr, MulticastGroups: []string{tc.group}})
			var joined *net.Interface
			var reasons []string
			for _, j := range gw.MulticastJoins() {
				if j.Err != nil {
					reasons = append(reasons, fmt.Sprintf("%s: %v", j.Interface, j.Err))
					continue
				}
				if joined == nil {
					ifi, err := net.InterfaceByName(j.Interface)
					require.NoError(t, err)
					joined = ifi
				}
			}
			if joined == nil {
				t.Skipf("could not join %s on any interface: %v", tc.group, reasons)
			}
			// A sensor's SEARCHGW to the group, looped back on the joined
			// interface.
			cl, err := net.ListenUDP(tc.network, nil)
			require.NoError(t, err)
			defer cl.Close()
			if tc.network == "udp4" {
				p := ipv4.NewPacketConn(cl)
				require.NoError(t, p.SetMulticastInterface(joined))
				require.NoError(t, p.SetMulticastLoopback(true))
			} else {
				p := ipv6.NewPacketConn(cl)
				require.NoError(t, p.SetMulticastInterface(joined))
				require.NoError(t, p.SetMulticastLoopback(true))
			}
			port := gw.LocalAddr().(*net.UDPAddr).Port
			dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tc.group).WithZone(zoneFor(tc.network, joined)), uint16(port)))
			_, err = cl.WriteTo([]byte{0x03, 0x01, 0x00}, dst)
			if errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Skipf("no multicast route on %s: %v", joined.Name, err)
			}
			require.NoError(t, err)
			guard(t, gw)
			buf := make([]byte, 64)
			n, from, err := gw.ReadFrom(buf)
			require.NoError(t, err)
			assert.Equal(t, []byte{0x03, 0x01, 0x00}, buf[:n])
			assert.Equal(t, cl.LocalAddr().(*net.UDPAddr).Port, from.(*net.UDPAddr).Port)
		})
	}
}

func zoneFor(network string, ifi *net.Interface) string {
	if network == "udp6" {
		return ifi.Name
	}
	return ""
}

func TestUDPMulticastJoinFailureReported(t *testing.T) {
	gw := listenUDP(t, UDPOptions{Addr: "0.0.0.0:0", MulticastGroups: []string{"239.255.18.83"}, MulticastInterfaces: []string{"no-such-if0"}})
	joins := gw.MulticastJoins()
	require.NotEmpty(t, joins)
	assert.Error(t, joins[0].Err)
	assert.Contains(t, joins[0].Err.Error(), "no-such-if0")
	// The socket still works.
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: gw.LocalAddr().(*net.UDPAddr).Port})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte{0x02, 0x16})
	require.NoError(t, err)
	guard(t, gw)
	n, _, err := gw.ReadFrom(make([]byte, 8))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestUDPDualStack(t *testing.T) {
	srv := listenUDP(t, UDPOptions{Addr: "[::]:0"})
	port := srv.LocalAddr().(*net.UDPAddr).Port
	for _, dst := range []string{"127.0.0.1", "::1"} {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dst), uint16(port))))
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte{0x02, 0x16})
		require.NoError(t, err)
		guard(t, srv)
		buf := make([]byte, 8)
		n, from, err := srv.ReadFrom(buf)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x02, 0x16}, buf[:n])
		assert.Equal(t, netip.MustParseAddr(dst), from.(*net.UDPAddr).AddrPort().Addr().Unmap())
		_, err = srv.WriteTo([]byte{0x02, 0x17}, from)
		require.NoError(t, err)
		guard(t, c)
		n, err = c.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x02, 0x17}, buf[:n])
	}
}

func TestUDPContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := ListenUDP(ctx, UDPOptions{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	_, _, err = c.ReadFrom(make([]byte, 8))
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, c.Close())
}

func TestUDPBatchReadDeadlineAndTruncation(t *testing.T) {
	srv := listenUDP(t, UDPOptions{Addr: "127.0.0.1:0", ReadBatch: 4})
	require.NoError(t, srv.SetReadDeadline(time.Now()))
	_, _, err := srv.ReadFrom(make([]byte, 8))
	require.True(t, isTimeout(err), "deadline applies to batch reads: %v", err)
	require.NoError(t, srv.SetReadDeadline(time.Time{}))

	c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	defer c.Close()
	big := make([]byte, 9000)
	for i := range big {
		big[i] = byte(i)
	}
	for _, p := range [][]byte{{0x02, 0x16}, big, {0x03, 0x01, 0x00}} {
		_, err := c.Write(p)
		require.NoError(t, err)
	}
	guard(t, srv)
	buf := make([]byte, 10000)
	for _, want := range [][]byte{{0x02, 0x16}, big, {0x03, 0x01, 0x00}} {
		n, from, err := srv.ReadFrom(buf)
		require.NoError(t, err)
		assert.Equal(t, want, buf[:n])
		assert.Equal(t, c.LocalAddr().String(), from.String())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
