package gateway

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// TestBurstOfConnectsAllAnswered sends hundreds of CONNECTs back to back
// (a field failure of other gateways is to drop part of such a burst).
func TestBurstOfConnectsAllAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		const n = 500
		clients := make([]*client, n)
		for i := range clients {
			clients[i] = h.client(fmt.Sprintf("node-%d", i))
			clients[i].send(&mqttsn.Connect{ClientID: fmt.Sprintf("node-%d", i), Duration: 60, CleanSession: true})
		}
		for _, c := range clients {
			c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
		}
		assert.Equal(t, int64(n), h.gw.Stats().Sessions)
	})
}

// TestPipelinedConnectKeepsOrder: a client that sends REGISTER right
// behind its CONNECT, without waiting for the CONNACK, must not have the
// REGISTER overtake the CONNECT and be answered as from an unknown sender.
func TestPipelinedConnectKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		for i := range 50 {
			c := h.client(fmt.Sprintf("node-%d", i))
			c.send(&mqttsn.Connect{ClientID: fmt.Sprintf("node-%d", i), Duration: 60, CleanSession: true})
			c.send(&mqttsn.Register{MsgID: 1, TopicName: "a/b"})
			c.send(&mqttsn.PingReq{})
			c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
			require.Equal(t, mqttsn.Accepted, c.next().(*mqttsn.RegAck).ReturnCode)
			c.expect(&mqttsn.PingResp{})
		}
		assert.Zero(t, h.gw.Stats().UnknownSender)
	})
}

// TestSlotsFreedAfterDisconnect: with room for 30 sessions, 100 clients
// connect and disconnect one after another (a field failure is to refuse
// the 31st because slots are never freed).
func TestSlotsFreedAfterDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{MaxSessions: 30})
		for i := range 100 {
			c := h.client(fmt.Sprintf("node-%d", i))
			c.connect(fmt.Sprintf("node-%d", i), 60, true)
			c.send(&mqttsn.Disconnect{})
			c.expect(&mqttsn.Disconnect{})
		}
		synctest.Wait() // the acknowledgement goes out before the session is removed
		assert.Equal(t, int64(0), h.gw.Stats().Sessions)
	})
}

func TestSessionLimitAnswersCongestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{MaxSessions: 2})
		h.client("a").connect("a", 60, true)
		h.client("b").connect("b", 60, true)
		c := h.client("c")
		c.send(&mqttsn.Connect{ClientID: "c", Duration: 60, CleanSession: true})
		c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedCongestion})
	})
}

func TestClientIDRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{MaxClientIDLength: 8})
		c := h.client("x")
		for _, id := range []string{"", "123456789", "bad\x00id", "\xff\xfe"} {
			c.send(&mqttsn.Connect{ClientID: id, Duration: 60})
			c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})
		}
		// Keep-alive 0 is refused unless allowed (spec-interpretation #16).
		c.send(&mqttsn.Connect{ClientID: "ok", Duration: 0})
		c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})
		// A protocol id other than 0x01.
		c.sendRaw([]byte{0x08, 0x04, 0x04, 0x02, 0x00, 0x3c, 'o', 'k'})
		c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})
		c.connect("12345678", 60, true)
	})
}

// TestConnectFromNewAddressMovesSession: NAT rebinding or a node that
// changed address keeps its session.
func TestConnectFromNewAddressMovesSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		obs := h.observe("t", 0)
		old := h.client("addr-1")
		old.connect("node-1", 60, false)
		id := old.register("t", 1)

		moved := h.client("addr-2")
		moved.connect("node-1", 60, false)
		// The registration survives the move.
		moved.send(&mqttsn.Publish{QoS: mqttsn.QoS0, TopicID: id, Data: []byte("here")})
		assert.Equal(t, []byte("here"), obs.next().Payload)
		// The old address no longer belongs to it.
		old.send(&mqttsn.PingReq{})
		old.expect(&mqttsn.Disconnect{})
		assert.Equal(t, int64(1), h.gw.Stats().Sessions)
	})
}

func TestPersistentSessionKeepsSubscriptionsAndQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, false)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		c.send(&mqttsn.Disconnect{})
		c.expect(&mqttsn.Disconnect{})

		// While disconnected, QoS 1 messages wait in the broker session.
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("while away"), QoS: 1}))
		c.quiet()

		c.connect("node-1", 60, false)
		reg := c.next().(*mqttsn.Register)
		assert.Equal(t, "cmd", reg.TopicName)
		assert.Equal(t, id, reg.TopicID)
		c.send(&mqttsn.RegAck{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: mqttsn.Accepted})
		p := c.next().(*mqttsn.Publish)
		assert.Equal(t, []byte("while away"), p.Data)
		c.send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
		c.quiet()

		// A clean connect forgets the subscription.
		c.connect("node-1", 60, true)
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("x"), QoS: 1}))
		c.quiet()
	})
}

func TestPersistentSessionExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{SessionExpiry: time.Hour})
		c := h.client("node-1")
		c.connect("node-1", 60, false)
		c.send(&mqttsn.Disconnect{})
		c.expect(&mqttsn.Disconnect{})
		assert.Equal(t, int64(1), h.gw.Stats().Sessions)
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		assert.Equal(t, int64(0), h.gw.Stats().Sessions)
	})
}

func TestForwarderEncapsulation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		obs := h.observe("#", 0)
		fwd := h.client("forwarder")
		wrap := func(node string, p mqttsn.Packet) mqttsn.Packet {
			inner, err := mqttsn.Append(nil, p)
			require.NoError(t, err)
			return &mqttsn.Encapsulated{NodeID: []byte(node), Message: inner}
		}
		unwrap := func(node string) mqttsn.Packet {
			enc := fwd.next().(*mqttsn.Encapsulated)
			require.Equal(t, []byte(node), enc.NodeID)
			p, err := mqttsn.Parse(enc.Message)
			require.NoError(t, err)
			return p
		}
		// Two wireless nodes behind one forwarder are two sessions.
		fwd.send(wrap("\x00\x01", &mqttsn.Connect{ClientID: "n1", Duration: 60, CleanSession: true}))
		assert.Equal(t, &mqttsn.ConnAck{}, unwrap("\x00\x01"))
		fwd.send(wrap("\x00\x02", &mqttsn.Connect{ClientID: "n2", Duration: 60, CleanSession: true}))
		assert.Equal(t, &mqttsn.ConnAck{}, unwrap("\x00\x02"))

		fwd.send(wrap("\x00\x01", &mqttsn.Register{MsgID: 1, TopicName: "n1/t"}))
		ack := unwrap("\x00\x01").(*mqttsn.RegAck)
		fwd.send(wrap("\x00\x01", &mqttsn.Publish{TopicID: ack.TopicID, Data: []byte("from n1")}))
		d := obs.next()
		assert.Equal(t, "n1/t", d.Topic)
		assert.Equal(t, int64(2), h.gw.Stats().Sessions)
		fwd.quiet()
	})
}

func TestSearchGWAnsweredWithGWInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{GatewayID: 42})
		c := h.client("searcher")
		c.send(&mqttsn.SearchGW{Radius: 1})
		c.expect(&mqttsn.GWInfo{GatewayID: 42})
	})
}

func TestAdvertiseOnBroadcastLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{GatewayID: 3, AdvertiseInterval: time.Minute})
		listener := h.net.Listen("broadcast")
		require.NoError(t, h.gw.Serve(Link{Name: "bcast", Conn: h.net.Listen("gw-2"), Broadcast: listener.LocalAddr()}))
		buf := make([]byte, 64)
		for range 3 {
			n, _, err := listener.ReadFrom(buf)
			require.NoError(t, err)
			p, err := mqttsn.Parse(buf[:n])
			require.NoError(t, err)
			assert.Equal(t, &mqttsn.Advertise{GatewayID: 3, Duration: 60}, p)
		}
	})
}
