package gateway

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/mqttsn/mqttsntest"
)

// FuzzDatagrams feeds arbitrary datagrams from four senders to a gateway
// with a real broker, then lets every timer run (retransmissions,
// keep-alive, sleep and session expiry). Nothing a sensor sends may panic
// the gateway or leave sessions, goroutines or address bindings behind once
// all of them have expired.
//
// The input is a sequence of records: one octet whose low two bits pick the
// sender and whose upper six bits give the datagram's length, then the
// datagram.
func FuzzDatagrams(f *testing.F) {
	for _, c := range mqttsntest.Cases {
		f.Add(record(0, c.Raw))
	}
	// A whole conversation: connect, register, publish, subscribe, sleep.
	var conv []byte
	for _, p := range []mqttsn.Packet{
		&mqttsn.Connect{ClientID: "a", Duration: 10, CleanSession: true, Will: true},
		&mqttsn.WillTopic{Topic: "w"},
		&mqttsn.WillMsg{Message: []byte("x")},
		&mqttsn.Register{MsgID: 1, TopicName: "t"},
		&mqttsn.Subscribe{QoS: mqttsn.QoS2, MsgID: 2, TopicName: "t"},
		&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: 1, MsgID: 3, Data: []byte("d")},
		&mqttsn.PubRel{MsgID: 3},
		&mqttsn.Disconnect{Duration: 5, HasDuration: true},
		&mqttsn.PingReq{ClientID: "a"},
	} {
		b, err := mqttsn.Append(nil, p)
		require.NoError(f, err)
		conv = append(conv, record(1, b)...)
	}
	f.Add(conv)

	f.Fuzz(func(t *testing.T, in []byte) {
		synctest.Test(t, func(t *testing.T) {
			b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
			require.NoError(t, err)
			require.NoError(t, b.Start(context.Background()))
			defer b.Close(context.Background())
			g, err := New(b, &Options{
				Shards:                2,
				SessionExpiry:         time.Hour,
				Predefined:            map[uint16]string{1: "p"},
				QoSMinusOneTopicNames: true,
			})
			require.NoError(t, err)
			defer g.Close(context.Background())
			network := memconn.NewNetwork()
			require.NoError(t, g.Serve(Link{Name: "fuzz", Conn: network.Listen(gwAddr)}))
			var senders [4]*memconn.Conn
			for i := range senders {
				senders[i] = network.Listen(fmt.Sprintf("s%d", i))
			}
			for len(in) > 0 {
				n := int(in[0] >> 2)
				from := senders[in[0]&3]
				in = in[1:]
				n = min(n, len(in))
				_, err := from.WriteTo(in[:n], memconn.Addr(gwAddr))
				require.NoError(t, err)
				in = in[n:]
			}
			synctest.Wait()
			// Long enough for every session to be lost and expire.
			time.Sleep(48 * time.Hour)
			synctest.Wait()
			require.Zero(t, g.Stats().Sessions, "sessions left after every timer ran")
			g.addrMu.RLock()
			bound := len(g.addrs)
			g.addrMu.RUnlock()
			require.Zero(t, bound, "address bindings left after every session ended")
			require.NoError(t, g.Close(context.Background()))
			require.NoError(t, b.Close(context.Background()))
		})
	})
}

// record frames one datagram for FuzzDatagrams.
func record(sender int, b []byte) []byte {
	if len(b) > 63 {
		b = b[:63]
	}
	return append([]byte{byte(len(b))<<2 | byte(sender&3)}, b...)
}

// FuzzSessionRecord feeds arbitrary bytes to the decoder of stored session
// records, as a corrupt store would: it must not panic, must refuse what it
// cannot vouch for, and what it accepts must encode and decode back to the
// same record.
func FuzzSessionRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"client_id":"node-1","link":"udp 0.0.0.0:1883","addr":"192.0.2.7:5000","keepalive":60,"state":"active","topics":[{"id":1,"name":"t","known":true}],"next_id":1}`))
	f.Add([]byte(`{"v":2,"client_id":"x","state":"active"}`))
	f.Add((&sessionRecord{Version: recordVersion, ClientID: "c", State: recDisconnected,
		Refused: []string{"a/b"}, Shorts: []uint16{0x6162}, Will: &recordWill{Topic: "w", Message: []byte{0, 1}, QoS: 1}}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			require.ErrorIs(t, err, errBadRecord)
			return
		}
		again, err := decodeRecord(r.encode())
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}
