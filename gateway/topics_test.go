package gateway

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

func TestQoSMinusOneWithoutConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{Predefined: map[uint16]string{7: "sensors/door"}})
		obs := h.observe("#", 0)
		c := h.client("radio-1")
		// No CONNECT: a QoS -1 PUBLISH on a predefined id and on a short name.
		c.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 7, Data: []byte("open")})
		short, err := mqttsn.ShortTopicID("ab")
		require.NoError(t, err)
		c.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort, TopicID: short, Data: []byte("x")})
		// Unknown predefined id, and the long-name form while it is off: dropped.
		c.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 8, Data: []byte("?")})
		c.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: "a/b", Data: []byte("?")})

		d := obs.next()
		assert.Equal(t, "sensors/door", d.Topic)
		assert.Equal(t, []byte("open"), d.Payload)
		d = obs.next()
		assert.Equal(t, "ab", d.Topic)
		obs.none()
		c.quiet() // QoS -1 is never answered
		assert.Equal(t, uint64(2), h.gw.Stats().QoSMinus1Dropped)
	})
}

func TestQoSMinusOneLongTopicNameBehindSetting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{QoSMinusOneTopicNames: true})
		obs := h.observe("#", 0)
		c := h.client("radio-1")
		c.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: "a/b", Data: []byte("long")})
		d := obs.next()
		assert.Equal(t, "a/b", d.Topic)
		assert.Equal(t, []byte("long"), d.Payload)
	})
}

func TestPredefinedAndShortTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{
			Predefined:          map[uint16]string{1: "global/one", 2: "global/two"},
			PredefinedPerClient: map[string]map[uint16]string{"node-1": {2: "node-1/two", 3: "node-1/three"}},
		})
		obs := h.observe("#", 1)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)

		// Publishing on predefined ids: the per-client map overrides id 2.
		for _, tc := range []struct {
			id    uint16
			topic string
		}{{1, "global/one"}, {2, "node-1/two"}, {3, "node-1/three"}} {
			c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, TopicID: tc.id, MsgID: tc.id, Data: []byte("v")})
			c.expect(&mqttsn.PubAck{TopicID: tc.id, MsgID: tc.id, ReturnCode: mqttsn.Accepted})
			assert.Equal(t, tc.topic, obs.next().Topic)
		}
		// An unknown predefined id cannot be fixed by registering: 0x02.
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, TopicID: 9, MsgID: 9})
		c.expect(&mqttsn.PubAck{TopicID: 9, MsgID: 9, ReturnCode: mqttsn.RejectedInvalidTopicID})

		// Subscribing by predefined id and by short name; deliveries come
		// back in the type the client used, with no REGISTER.
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS0, TopicIDType: mqttsn.TopicPredefined, TopicID: 3, MsgID: 10})
		c.expect(&mqttsn.SubAck{TopicID: 3, MsgID: 10, ReturnCode: mqttsn.Accepted})
		short, _ := mqttsn.ShortTopicID("zz")
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS0, TopicIDType: mqttsn.TopicShort, TopicID: short, MsgID: 11})
		c.expect(&mqttsn.SubAck{TopicID: short, MsgID: 11, ReturnCode: mqttsn.Accepted})

		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "node-1/three", Payload: []byte("p")}))
		c.expect(&mqttsn.Publish{QoS: mqttsn.QoS0, TopicIDType: mqttsn.TopicPredefined, TopicID: 3, Data: []byte("p")})
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "zz", Payload: []byte("s")}))
		c.expect(&mqttsn.Publish{QoS: mqttsn.QoS0, TopicIDType: mqttsn.TopicShort, TopicID: short, Data: []byte("s")})
		c.quiet()
	})
}

func TestTwoCharacterNameStaysANormalTopic(t *testing.T) {
	// spec-interpretation #5: only TopicIdType 0b10 makes a name short.
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS0, MsgID: 1, TopicName: "ab"})
		ack := c.next().(*mqttsn.SubAck)
		require.NotZero(t, ack.TopicID)
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "ab", Payload: []byte("n")}))
		c.expect(&mqttsn.Publish{QoS: mqttsn.QoS0, TopicIDType: mqttsn.TopicNormal, TopicID: ack.TopicID, Data: []byte("n")})
	})
}

func TestRejectedRegisterIsNeverPublishedOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd/+"})
		c.next()

		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd/unwanted", Payload: []byte("1"), QoS: 1}))
		reg := c.next().(*mqttsn.Register)
		// client --REGACK(rejected)--> GW: the client does not want this topic.
		c.send(&mqttsn.RegAck{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: mqttsn.RejectedNotSupported})
		c.quiet()

		// Later messages on the refused topic are dropped, not published on
		// the refused id; other topics still flow.
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd/unwanted", Payload: []byte("2"), QoS: 1}))
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd/wanted", Payload: []byte("3"), QoS: 1}))
		reg2 := c.next().(*mqttsn.Register)
		assert.Equal(t, "cmd/wanted", reg2.TopicName)
		c.send(&mqttsn.RegAck{TopicID: reg2.TopicID, MsgID: reg2.MsgID, ReturnCode: mqttsn.Accepted})
		p := c.next().(*mqttsn.Publish)
		assert.Equal(t, reg2.TopicID, p.TopicID)
		assert.Equal(t, []byte("3"), p.Data)
		c.send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
		c.quiet()
		assert.Equal(t, uint64(2), h.gw.Stats().DeliveryDropped)
	})
}

func TestRetainedDeliveredAfterSubAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "state/door", Payload: []byte("closed"), Retain: true, QoS: 1}))
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "state/door"})
		ack := c.next().(*mqttsn.SubAck) // the SUBACK comes first
		p := c.next().(*mqttsn.Publish)
		assert.True(t, p.Retain)
		assert.Equal(t, ack.TopicID, p.TopicID)
		assert.Equal(t, []byte("closed"), p.Data)
	})
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS0, MsgID: 1, TopicName: "a/#"})
		c.next()
		c.send(&mqttsn.Unsubscribe{MsgID: 2, TopicName: "a/#"})
		c.expect(&mqttsn.UnsubAck{MsgID: 2})
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "a/b", Payload: []byte("x")}))
		c.quiet()
	})
}

func TestWillUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		wills := h.observe("w/#", 0)
		c := h.client("node-1")
		c.connect("node-1", 10, true)
		c.send(&mqttsn.WillTopicUpd{Topic: "w/one"})
		c.expect(&mqttsn.WillTopicResp{ReturnCode: mqttsn.Accepted})
		c.send(&mqttsn.WillMsgUpd{Message: []byte("bye")})
		c.expect(&mqttsn.WillMsgResp{ReturnCode: mqttsn.Accepted})
		c.send(&mqttsn.WillTopicUpd{Topic: "w/two"})
		c.expect(&mqttsn.WillTopicResp{ReturnCode: mqttsn.Accepted})
		// Lost by keep-alive: the updated Will is published.
		d := wills.next()
		assert.Equal(t, "w/two", d.Topic)
		assert.Equal(t, []byte("bye"), d.Payload)
	})
}

func TestEmptyWillTopicDeletesWillAndSkipsWillMsgReq(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		wills := h.observe("#", 0)
		c := h.client("node-1")
		c.send(&mqttsn.Connect{ClientID: "node-1", Duration: 10, CleanSession: true, Will: true})
		c.expect(&mqttsn.WillTopicReq{})
		c.send(&mqttsn.WillTopic{}) // the empty 2-octet form
		c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
		c.send(&mqttsn.WillTopicUpd{}) // and the empty update
		c.expect(&mqttsn.WillTopicResp{ReturnCode: mqttsn.Accepted})
		synctest.Wait()
		wills.none()
	})
}

func TestNormalDisconnectSuppressesWill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		wills := h.observe("#", 0)
		c := h.client("node-1")
		c.connect("node-1", 10, true)
		c.send(&mqttsn.WillTopicUpd{Topic: "w"})
		c.expect(&mqttsn.WillTopicResp{ReturnCode: mqttsn.Accepted})
		c.send(&mqttsn.Disconnect{})
		c.expect(&mqttsn.Disconnect{})
		wills.none()
		assert.Equal(t, int64(0), h.gw.Stats().Sessions)
		// After DISCONNECT the address is unknown again.
		c.send(&mqttsn.PingReq{})
		c.expect(&mqttsn.Disconnect{})
	})
}
