package transport

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestUDPBurstHeldByReceiveBuffer sends an unpaced burst while nobody reads:
// with the default 4 MiB buffer the kernel keeps all of it, with the
// system default it drops most.
func TestUDPBurstHeldByReceiveBuffer(t *testing.T) {
	const burst, size = 2000, 64
	count := func(recvBuf int) (int, int) {
		srv := listenUDP(t, UDPOptions{Addr: "127.0.0.1:0", RecvBuffer: recvBuf})
		c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		defer c.Close()
		pkt := make([]byte, size)
		for range burst {
			_, err := c.Write(pkt)
			require.NoError(t, err)
		}
		// A loopback send has queued or dropped its datagram by the time
		// Write returns, so non-blocking reads until EAGAIN count exactly
		// what the kernel kept.
		return drainCount(t, srv), srv.RecvBufferSize()
	}
	big, granted := count(0)
	t.Logf("4 MiB requested, kernel reports %d bytes: %d of %d datagrams kept", granted, big, burst)
	if granted < DefaultRecvBuffer {
		t.Skipf("kernel granted only %d bytes (net.core.rmem_max; not root)", granted)
	}
	assert.Equal(t, burst, big)
	small, smallGranted := count(-1)
	t.Logf("system default %d bytes: %d of %d datagrams kept", smallGranted, small, burst)
	assert.Less(t, small, burst, "the system default should not hold the burst, or this test proves nothing")
}

// TestUDPBroadcastSend sends to the limited broadcast address, which needs
// SO_BROADCAST (Go sets it on every UDP socket; the link sets it too), and hears it on a wildcard socket: Linux loops broadcasts
// back to local listeners.
func TestUDPBroadcastSend(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 0})
	require.NoError(t, err)
	defer rx.Close()
	dst := fmt.Sprintf("255.255.255.255:%d", rx.LocalAddr().(*net.UDPAddr).Port)
	gw := listenUDP(t, UDPOptions{Network: "udp4", Addr: "0.0.0.0:0", BroadcastAddr: dst})
	_, err = gw.WriteTo([]byte{0x03, 0x00, 0x01}, gw.BroadcastAddr())
	if errors.Is(err, syscall.ENETUNREACH) {
		t.Skipf("no route for broadcast on this machine: %v", err)
	}
	require.NoError(t, err, "SO_BROADCAST must be set")
	guard(t, rx)
	buf := make([]byte, 64)
	n, _, err := rx.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x03, 0x00, 0x01}, buf[:n])

	rc, err := gw.SyscallConn()
	require.NoError(t, err)
	on, err := sockoptInt(rc, syscall.SOL_SOCKET, syscall.SO_BROADCAST)
	require.NoError(t, err)
	assert.Equal(t, 1, on)
}

// drainCount reads without blocking until the socket is empty.
func drainCount(t *testing.T, c *UDPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	buf := make([]byte, 1500)
	count := 0
	for {
		var rerr error
		require.NoError(t, rc.Read(func(fd uintptr) bool {
			_, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return true
		}))
		if errors.Is(rerr, unix.EAGAIN) {
			return count
		}
		require.NoError(t, rerr)
		count++
	}
}

func sockoptInt(rc interface {
	Control(func(uintptr)) error
}, level, opt int) (int, error) {
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		return 0, err
	}
	return v, serr
}
