//go:build linux && !race

package mqttcore_test

import (
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// The memory of idle connections is measured with clients made of bare
// sockets (no Go objects behind them), so the figure is the broker's own:
// Go heap and goroutine stacks per connected, subscribed, idle client.
// The race detector inflates memory, so these are built without it.

// measureIdle connects n clients, each subscribed to its own topic, and
// returns the broker's memory per connection in bytes.
func measureIdle(tb testing.TB, s *server, n int) float64 {
	tb.Helper()
	ap, err := net.ResolveTCPAddr("tcp", s.addr)
	require.NoError(tb, err)
	sa := &syscall.SockaddrInet4{Port: ap.Port, Addr: [4]byte{127, 0, 0, 1}}

	before := heapAndStacks()
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	buf := make([]byte, 64)
	for i := range n {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		require.NoError(tb, err)
		fds = append(fds, fd)
		require.NoError(tb, syscall.Connect(fd, sa))
		id := "idle" + strconv.Itoa(i)
		msg, err := packet.Append(nil, &packet.ConnectPacket{ClientID: id, CleanStart: true}, packet.V311)
		require.NoError(tb, err)
		msg, err = packet.Append(msg, &packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "idle/" + id, QoS: 1}}}, packet.V311)
		require.NoError(tb, err)
		_, err = syscall.Write(fd, msg)
		require.NoError(tb, err)
		// CONNACK (4 bytes) and SUBACK (5 bytes).
		for got := 0; got < 9; {
			k, err := syscall.Read(fd, buf[got:])
			require.NoError(tb, err)
			require.Positive(tb, k, "connection closed")
			got += k
		}
	}
	after := heapAndStacks()
	require.Equal(tb, int64(n), s.b.Stats().ClientsConnected)
	return float64(after-before) / float64(n)
}

// heapAndStacks returns the live heap and the goroutine stacks after two
// collections (the second lets stacks shrink).
func heapAndStacks() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

func TestIdleConnectionMemory(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	per := measureIdle(t, s, 1000)
	t.Logf("%.0f bytes per idle TCP connection", per)
	assert.Less(t, per, float64(20<<10), "an idle connection must cost under 20 KiB")
}

// BenchmarkIdleConnections reports the broker's memory per idle TCP
// connection: go test -run '^$' -bench IdleConnections -benchtime 1x.
func BenchmarkIdleConnections(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s := serveBroker(b, nil, mqttcore.ListenerOptions{})
		b.ReportMetric(measureIdle(b, s, 5000), "B/conn")
	}
}
