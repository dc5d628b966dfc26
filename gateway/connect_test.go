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

func TestConnectRegisterPublishQoS0to2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		obs := h.observe("sensors/#", 2)
		c := h.client("node-1")

		// client --CONNECT--> GW, GW --CONNACK--> client
		c.connect("node-1", 60, true)
		// client --REGISTER--> GW, GW --REGACK--> client
		id := c.register("sensors/temp", 1)

		// QoS 0: no answer.
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS0, TopicID: id, Data: []byte("20.5")})
		d := obs.next()
		assert.Equal(t, "sensors/temp", d.Topic)
		assert.Equal(t, []byte("20.5"), d.Payload)
		assert.Equal(t, byte(0), d.QoS)

		// QoS 1: PUBACK.
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: id, MsgID: 2, Data: []byte("21")})
		c.expect(&mqttsn.PubAck{TopicID: id, MsgID: 2, ReturnCode: mqttsn.Accepted})
		d = obs.next()
		assert.Equal(t, byte(1), d.QoS)
		assert.Equal(t, []byte("21"), d.Payload)

		// QoS 2: PUBREC, PUBREL, PUBCOMP; the duplicate is not published twice.
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: id, MsgID: 3, Data: []byte("22")})
		c.expect(&mqttsn.PubRec{MsgID: 3})
		c.send(&mqttsn.Publish{DUP: true, QoS: mqttsn.QoS2, TopicID: id, MsgID: 3, Data: []byte("22")})
		c.expect(&mqttsn.PubRec{MsgID: 3})
		c.send(&mqttsn.PubRel{MsgID: 3})
		c.expect(&mqttsn.PubComp{MsgID: 3})
		d = obs.next()
		assert.Equal(t, byte(2), d.QoS)
		assert.Equal(t, []byte("22"), d.Payload)
		obs.none()
		c.quiet()
	})
}

// TestLateQoS2DuplicateAfterPubComp: a radio link that duplicates and
// reorders can deliver a copy of a QoS 2 PUBLISH after its PUBCOMP; it must
// not be published a second time. A new message reusing the id (no DUP)
// after the exchange is a new message.
func TestLateQoS2DuplicateAfterPubComp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		obs := h.observe("t", 2)
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		id := c.register("t", 1)
		c.publishQoS2(id, 7, false, "once")
		assert.Equal(t, []byte("once"), obs.next().Payload)

		// The late copy is acknowledged again, and nothing is published.
		c.publishQoS2(id, 7, true, "once")
		obs.none()
		assert.Equal(t, uint64(1), h.gw.Stats().Duplicates)

		// A new message with the same id is published.
		c.publishQoS2(id, 7, false, "new")
		assert.Equal(t, []byte("new"), obs.next().Payload)

		// After the retransmission window a DUP copy can no longer be late.
		time.Sleep(2 * time.Minute) // past T_retry × (N_retry+1), within the keep-alive
		c.publishQoS2(id, 7, true, "later")
		assert.Equal(t, []byte("later"), obs.next().Payload)
	})
}

// TestLateQoS2OriginalWithoutDUP: the copy a lossy link delivers late is
// usually the first transmission, which carries DUP=0; it arrives after
// the retransmission completed the exchange and must not be published
// again — nor when more exchanges completed in between.
func TestLateQoS2OriginalWithoutDUP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		obs := h.observe("t", 2)
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		id := c.register("t", 1)
		for i := range 20 {
			c.publishQoS2(id, uint16(100+i), i == 0, fmt.Sprintf("m%d", i))
			assert.Equal(t, fmt.Sprintf("m%d", i), string(obs.next().Payload))
			time.Sleep(time.Second)
		}
		// client --PUBLISH(DUP=0, MsgId 100)--> GW, 20 s after its PUBCOMP
		c.publishQoS2(id, 100, false, "m0")
		c.publishQoS2(id, 119, false, "m19")
		obs.none()
		assert.Equal(t, uint64(2), h.gw.Stats().Duplicates)
	})
}

func TestUnknownTopicIDGetsInvalidTopicPubAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 77, MsgID: 5, Data: []byte("x")})
		c.expect(&mqttsn.PubAck{TopicID: 77, MsgID: 5, ReturnCode: mqttsn.RejectedInvalidTopicID})
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS0, TopicID: 77, Data: []byte("x")})
		c.expect(&mqttsn.PubAck{TopicID: 77, ReturnCode: mqttsn.RejectedInvalidTopicID})
		assert.Equal(t, uint64(2), h.gw.Stats().UnknownTopic)
	})
}

func TestSubscribeAndReceiveAllQoS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)

		// client --SUBSCRIBE(name)--> GW, GW --SUBACK(id)--> client
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS2, MsgID: 1, TopicName: "cmd/led"})
		ack := c.next().(*mqttsn.SubAck)
		require.Equal(t, mqttsn.Accepted, ack.ReturnCode)
		require.Equal(t, mqttsn.QoS2, ack.QoS)
		id := ack.TopicID
		require.NotZero(t, id)

		for q := byte(0); q <= 2; q++ {
			require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd/led", Payload: []byte{'0' + q}, QoS: q}))
		}
		p := c.next().(*mqttsn.Publish)
		assert.Equal(t, mqttsn.QoS0, p.QoS)
		assert.Equal(t, id, p.TopicID)
		assert.Equal(t, []byte("0"), p.Data)

		p = c.next().(*mqttsn.Publish)
		assert.Equal(t, mqttsn.QoS1, p.QoS)
		assert.Equal(t, []byte("1"), p.Data)
		// Only one message is in flight: nothing more until the PUBACK.
		c.quiet()
		c.send(&mqttsn.PubAck{TopicID: id, MsgID: p.MsgID, ReturnCode: mqttsn.Accepted})

		p = c.next().(*mqttsn.Publish)
		assert.Equal(t, mqttsn.QoS2, p.QoS)
		assert.Equal(t, []byte("2"), p.Data)
		c.send(&mqttsn.PubRec{MsgID: p.MsgID})
		c.expect(&mqttsn.PubRel{MsgID: p.MsgID})
		c.send(&mqttsn.PubComp{MsgID: p.MsgID})
		c.quiet()
	})
}

func TestRetransmissionThenLostPublishesWill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{RetryInterval: 10 * time.Second, RetryCount: 2})
		wills := h.observe("wills/#", 1)
		pub := h.publisher("app")
		c := h.client("node-1")

		// Connect with a Will: WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG.
		c.connectWithWill("node-1", 600, &mqttsn.WillTopic{QoS: mqttsn.QoS1, Topic: "wills/node-1"}, "gone")

		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("on"), QoS: 1}))
		first := c.next().(*mqttsn.Publish)
		assert.False(t, first.DUP)
		assert.Equal(t, id, first.TopicID)

		// The client never answers: two retransmissions with DUP, then lost.
		for range 2 {
			time.Sleep(10 * time.Second)
			p := c.next().(*mqttsn.Publish)
			assert.True(t, p.DUP)
			assert.Equal(t, first.MsgID, p.MsgID)
		}
		time.Sleep(10 * time.Second)
		d := wills.next()
		assert.Equal(t, "wills/node-1", d.Topic)
		assert.Equal(t, []byte("gone"), d.Payload)
		c.quiet()
		assert.Equal(t, uint64(1), h.gw.Stats().Lost)
		assert.Equal(t, int64(0), h.gw.Stats().Sessions)
	})
}

func TestKeepAliveLostAfterOneAndAHalfTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		wills := h.observe("wills/#", 0)
		c := h.client("node-1")
		c.connectWithWill("node-1", 60, &mqttsn.WillTopic{Topic: "wills/node-1"}, "lost")

		// A PINGREQ within the period keeps it alive.
		time.Sleep(80 * time.Second)
		c.send(&mqttsn.PingReq{})
		c.expect(&mqttsn.PingResp{})
		time.Sleep(89 * time.Second)
		wills.none()
		time.Sleep(time.Second + time.Millisecond)
		assert.Equal(t, []byte("lost"), wills.next().Payload)
	})
}

// The keep-alive deadline moves on with every datagram while its timer
// entry stays where it was: the stale entry must not lose the client, and
// the deadline of the last datagram must.
func TestKeepAliveFollowsEveryDatagram(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		wills := h.observe("wills/#", 0)
		c := h.client("node-1")
		c.connectWithWill("node-1", 60, &mqttsn.WillTopic{Topic: "wills/node-1"}, "lost")
		topic := c.register("data/node-1", 1)
		for range 5 {
			time.Sleep(50 * time.Second)
			c.send(&mqttsn.Publish{TopicID: topic, Data: []byte("21.5")})
		}
		// 250 s since CONNECT, long past its own deadline (90 s) and those
		// of the earlier datagrams; 90 s after the last one it is lost.
		time.Sleep(89 * time.Second)
		wills.none()
		assert.Zero(t, h.gw.Stats().Lost)
		time.Sleep(time.Second + time.Millisecond)
		assert.Equal(t, []byte("lost"), wills.next().Payload)
		assert.Equal(t, uint64(1), h.gw.Stats().Lost)
	})
}

func TestUnknownSenderGetsDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.client("stranger")
		c.send(&mqttsn.Register{MsgID: 1, TopicName: "a/b"})
		c.expect(&mqttsn.Disconnect{})
		c.send(&mqttsn.PingReq{})
		c.expect(&mqttsn.Disconnect{})
		// Garbage is dropped and counted, not answered.
		c.sendRaw([]byte{0x01, 0x00})
		c.sendRaw([]byte{0x05, 0x0c, 0x00})
		c.quiet()
		assert.Equal(t, uint64(2), h.gw.Stats().Malformed)
	})
}
