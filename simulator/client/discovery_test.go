package client

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// broadcast is the in-memory network's broadcast address; the scripted
// gateway, or another client, joins it to hear SEARCHGW.
const broadcast = "broadcast"

func TestSearchGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc, gc := memLink(t, "client", "gateway")
		gc.Join(broadcast)
		gw := &fakeGW{t: t, conn: gc}
		type result struct {
			info GatewayInfo
			err  error
		}
		res := make(chan result, 1)
		go func() {
			info, err := SearchGateway(bg, cc, memconn.Addr(broadcast), 1)
			res <- result{info, err}
		}()
		start := time.Now()
		// client --SEARCHGW(radius 1)--> broadcast; no answer, so it is
		// repeated with growing intervals.
		for _, at := range []time.Duration{0, SearchInterval, 3 * SearchInterval} {
			gw.expect(&mqttsn.SearchGW{Radius: 1})
			assert.Equal(t, at, time.Since(start))
		}
		gw.sendRaw([]byte{0x03, 0x02}) // malformed: ignored
		gw.send(&mqttsn.PingResp{})    // not an answer: ignored
		gw.send(&mqttsn.GWInfo{GatewayID: 7})
		r := <-res
		require.NoError(t, r.err)
		assert.Equal(t, GatewayInfo{GatewayID: 7, Addr: memconn.Addr("gateway")}, r.info)
		// The read deadline is cleared for the Client that comes next.
		assert.True(t, cc.ReadDeadline().IsZero())
	})
}

func TestSearchGatewayAnsweredByClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc, other := memLink(t, "client", "other-client")
		other.Join(broadcast)
		peer := &fakeGW{t: t, conn: other}
		res := make(chan GatewayInfo, 1)
		go func() {
			info, _ := SearchGateway(bg, cc, memconn.Addr(broadcast), 0)
			res <- info
		}()
		peer.recv()
		// Another client answers for a gateway it knows, with its address.
		peer.send(&mqttsn.GWInfo{GatewayID: 2, GatewayAddr: []byte{192, 168, 1, 10, 0x07, 0x5b}})
		assert.Equal(t, GatewayInfo{GatewayID: 2, Addr: memconn.Addr("other-client"), GatewayAddr: []byte{192, 168, 1, 10, 0x07, 0x5b}}, <-res)
	})
}

func TestSearchGatewayCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc, gc := memLink(t, "client", "gateway")
		gc.Join(broadcast)
		ctx, cancel := context.WithTimeout(bg, 12*time.Second)
		defer cancel()
		_, err := SearchGateway(ctx, cc, memconn.Addr(broadcast), 0)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 2, gc.Pending(), "SEARCHGW at 0 s and 5 s; the next is due at 15 s")
		assert.True(t, cc.ReadDeadline().IsZero())
	})
}

func TestListenAdvertise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc, gc := memLink(t, "client", "gateway")
		gc.Join(broadcast)
		gw := &fakeGW{t: t, conn: gc, client: cc.LocalAddr()}
		res := make(chan GatewayInfo, 1)
		go func() {
			info, _ := ListenAdvertise(bg, cc)
			res <- info
		}()
		gw.send(&mqttsn.GWInfo{GatewayID: 3}) // not an ADVERTISE
		gw.send(&mqttsn.Advertise{GatewayID: 1, Duration: 900})
		assert.Equal(t, GatewayInfo{GatewayID: 1, Addr: memconn.Addr("gateway"), Advertised: true, Duration: 15 * time.Minute}, <-res)
		assert.Zero(t, gc.Pending(), "listening sends nothing")

		ctx, cancel := context.WithTimeout(bg, time.Hour)
		defer cancel()
		_, err := ListenAdvertise(ctx, cc)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}
