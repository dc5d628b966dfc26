package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// TestSessionsPerIPAreBounded: one host cannot take every session slot by
// connecting from many source ports. With the defaults, the 1,001st
// session at one IP address is refused with "congestion", another host
// is still admitted, and a session that ends frees its slot.
func TestSessionsPerIPAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
		require.NoError(t, err)
		require.NoError(t, b.Start(context.Background()))
		defer b.Close(context.Background())
		g, err := New(b, &Options{Shards: 2})
		require.NoError(t, err)
		defer g.Close(context.Background())
		conn := newInjectConn()
		conn.replies = make(chan []byte, 16)
		require.NoError(t, g.Serve(Link{Name: "udp", Conn: conn}))
		ask := func(ap netip.AddrPort, p mqttsn.Packet) mqttsn.Packet {
			t.Helper()
			conn.in <- injected{encode(t, p), ap}
			reply, err := mqttsn.Parse(<-conn.replies)
			require.NoError(t, err)
			return reply
		}
		host := netip.MustParseAddr("192.0.2.7")
		connect := func(ip netip.Addr, port uint16, id string) mqttsn.ReturnCode {
			t.Helper()
			ack := ask(netip.AddrPortFrom(ip, port), &mqttsn.Connect{ClientID: id, Duration: 600, CleanSession: true})
			return ack.(*mqttsn.ConnAck).ReturnCode
		}
		for i := range 1000 {
			require.Equal(t, mqttsn.Accepted, connect(host, uint16(10000+i), fmt.Sprintf("c%d", i)))
		}
		assert.Equal(t, mqttsn.RejectedCongestion, connect(host, 20000, "one-too-many"))
		assert.Equal(t, uint64(1), g.Stats().IPLimited)
		assert.Equal(t, mqttsn.Accepted, connect(netip.MustParseAddr("192.0.2.8"), 20000, "elsewhere"))

		// A client that moves within the host keeps its one slot.
		assert.Equal(t, mqttsn.Accepted, connect(host, 30000, "c0"))
		assert.Equal(t, mqttsn.RejectedCongestion, connect(host, 20000, "one-too-many"))

		ask(netip.AddrPortFrom(host, 10001), &mqttsn.Disconnect{})
		// Answered once the slot is given back: the next CONNECT may reach
		// another shard.
		assert.Equal(t, mqttsn.Accepted, connect(host, 20000, "one-too-many"))
		assert.Equal(t, int64(1001), g.Stats().Sessions)
	})
}
