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

// sleepingSubscriber connects node-1 with a wildcard subscription and puts
// it to sleep for 300 s.
func sleepingSubscriber(t *testing.T, h *harness, qos mqttsn.QoS) *client {
	t.Helper()
	c := h.client("node-1")
	c.connect("node-1", 60, true)
	c.send(&mqttsn.Subscribe{QoS: qos, MsgID: 1, TopicName: "cmd/#"})
	ack := c.next().(*mqttsn.SubAck)
	require.Equal(t, mqttsn.Accepted, ack.ReturnCode)
	require.Zero(t, ack.TopicID, "a wildcard subscription gets topic id 0x0000")
	// client --DISCONNECT(300)--> GW, GW --DISCONNECT--> client
	c.send(&mqttsn.Disconnect{Duration: 300, HasDuration: true})
	c.expect(&mqttsn.Disconnect{})
	return c
}

// TestSleepCyclesDeliverBufferedThenPingResp covers three field bugs at
// once, over many cycles: PINGRESP before the buffered messages, no
// PINGRESP after them, and the same messages sent again on every wake; and
// a waking wildcard subscriber that gets the REGISTER but not the PUBLISH.
func TestSleepCyclesDeliverBufferedThenPingResp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := sleepingSubscriber(t, h, mqttsn.QoS1)
		ids := map[string]uint16{}
		for cycle := range 5 {
			topic := fmt.Sprintf("cmd/%d", cycle%2)
			for i := range 3 {
				payload := fmt.Sprintf("c%d-m%d", cycle, i)
				require.NoError(t, pub.Publish(mqttcore.Message{Topic: topic, Payload: []byte(payload), QoS: 1}))
			}
			c.quiet() // nothing reaches a sleeping client
			time.Sleep(200 * time.Second)

			// client --PINGREQ(ClientId)--> GW
			c.send(&mqttsn.PingReq{ClientID: "node-1"})
			for i := range 3 {
				p := c.next()
				if reg, ok := p.(*mqttsn.Register); ok {
					// The first message on a topic registers it, then publishes.
					assert.Equal(t, topic, reg.TopicName)
					ids[topic] = reg.TopicID
					c.send(&mqttsn.RegAck{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: mqttsn.Accepted})
					p = c.next()
				}
				pp, ok := p.(*mqttsn.Publish)
				require.True(t, ok, "cycle %d message %d: got %T, want PUBLISH", cycle, i, p)
				assert.Equal(t, ids[topic], pp.TopicID)
				assert.Equal(t, fmt.Sprintf("c%d-m%d", cycle, i), string(pp.Data))
				c.send(&mqttsn.PubAck{TopicID: pp.TopicID, MsgID: pp.MsgID, ReturnCode: mqttsn.Accepted})
			}
			c.expect(&mqttsn.PingResp{})
			c.quiet()
		}
		assert.Equal(t, uint64(5), h.gw.Stats().Wakes)
		assert.Equal(t, uint64(0), h.gw.Stats().Lost)
	})
}

func TestWakeWithNothingBufferedAnswersPingRespAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		c := sleepingSubscriber(t, h, mqttsn.QoS0)
		c.send(&mqttsn.PingReq{ClientID: "node-1"})
		c.expect(&mqttsn.PingResp{})
		c.quiet()
	})
}

func TestSleepOverrunIsLostWithWill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		wills := h.observe("wills/#", 0)
		c := h.client("node-1")
		c.connectWithWill("node-1", 30, &mqttsn.WillTopic{Topic: "wills/node-1"}, "overslept")
		c.send(&mqttsn.Disconnect{Duration: 100, HasDuration: true})
		c.expect(&mqttsn.Disconnect{})

		// Supervised by the sleep duration (× 1.5), not the keep-alive.
		time.Sleep(149 * time.Second)
		wills.none()
		time.Sleep(2 * time.Second)
		assert.Equal(t, []byte("overslept"), wills.next().Payload)
	})
}

func TestConnectWhileAsleepFlushesBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS0, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		c.send(&mqttsn.Disconnect{Duration: 300, HasDuration: true})
		c.expect(&mqttsn.Disconnect{})
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("queued")}))
		c.quiet()

		// CONNECT (CleanSession=0) makes it active; the buffered message
		// follows the CONNACK, registered again since the client may have
		// lost its table.
		c.connect("node-1", 60, false)
		reg := c.next().(*mqttsn.Register)
		assert.Equal(t, id, reg.TopicID)
		c.send(&mqttsn.RegAck{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: mqttsn.Accepted})
		p := c.next().(*mqttsn.Publish)
		assert.Equal(t, []byte("queued"), p.Data)
		c.quiet()
	})
}

func TestSleepBufferIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{SleepBuffer: 3})
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS0, MsgID: 1, TopicName: "cmd"})
		c.next()
		c.send(&mqttsn.Disconnect{Duration: 300, HasDuration: true})
		c.expect(&mqttsn.Disconnect{})
		for i := range 10 {
			require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte{byte('0' + i)}}))
		}
		c.send(&mqttsn.PingReq{ClientID: "node-1"})
		var got []string
		for {
			p := c.next()
			if _, ok := p.(*mqttsn.PingResp); ok {
				break
			}
			got = append(got, string(p.(*mqttsn.Publish).Data))
		}
		// drop-oldest keeps the newest three.
		assert.Equal(t, []string{"7", "8", "9"}, got)
	})
}

// TestReconnectWhileAsleepRegistersBeforeRepeating: a client that fell
// asleep with a PUBLISH unacknowledged and comes back with CONNECT
// (CleanSession=0) may have lost its topic table; the gateway registers
// the topic again before it repeats the PUBLISH, with DUP.
func TestReconnectWhileAsleepRegistersBeforeRepeating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, false)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("x"), QoS: 1}))
		first := c.next().(*mqttsn.Publish)
		require.Equal(t, id, first.TopicID)
		// The client sleeps without acknowledging it.
		c.send(&mqttsn.Disconnect{Duration: 300, HasDuration: true})
		c.expect(&mqttsn.Disconnect{})

		c.connect("node-1", 60, false)
		reg := c.next().(*mqttsn.Register)
		assert.Equal(t, mqttsn.Register{TopicID: id, MsgID: reg.MsgID, TopicName: "cmd"}, *reg)
		c.send(&mqttsn.RegAck{TopicID: id, MsgID: reg.MsgID, ReturnCode: mqttsn.Accepted})
		again := c.next().(*mqttsn.Publish)
		assert.True(t, again.DUP)
		assert.Equal(t, first.MsgID, again.MsgID)
		assert.Equal(t, id, again.TopicID)
		c.send(&mqttsn.PubAck{TopicID: id, MsgID: again.MsgID, ReturnCode: mqttsn.Accepted})
		c.quiet()
	})
}

// TestActiveSubscriberGetsEveryQoS1Message: an active client is not held
// to the sleep buffer. A burst of 250 QoS 1 messages to a client that
// takes 20 ms to acknowledge each reaches it whole and in order, as it
// reaches an MQTT subscriber; the sleep buffer's drop-oldest used to keep
// only the last 100 of those still queued.
func TestActiveSubscriberGetsEveryQoS1Message(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		pub := h.publisher("app")
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "burst"})
		id := c.next().(*mqttsn.SubAck).TopicID
		const n = 250
		for i := range n {
			require.NoError(t, pub.Publish(mqttcore.Message{Topic: "burst", Payload: fmt.Appendf(nil, "%d", i), QoS: 1}))
		}
		for i := range n {
			p := c.next().(*mqttsn.Publish)
			require.Equal(t, fmt.Sprint(i), string(p.Data))
			time.Sleep(20 * time.Millisecond) // the sensor's own pace
			c.send(&mqttsn.PubAck{TopicID: id, MsgID: p.MsgID, ReturnCode: mqttsn.Accepted})
		}
		c.quiet()
		assert.Zero(t, h.gw.Stats().DeliveryDropped)
	})
}

// TestSleepBufferAppliesOnlyWhileAsleep: the bound comes back with the
// next sleep, after an awake window that lifted it.
func TestSleepBufferAppliesOnlyWhileAsleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{SleepBuffer: 2})
		pub := h.publisher("app")
		c := sleepingSubscriber(t, h, mqttsn.QoS0)
		for range 2 {
			for i := range 5 {
				require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd", Payload: []byte{byte('0' + i)}}))
			}
			c.send(&mqttsn.PingReq{ClientID: "node-1"})
			var got []string
			for {
				p := c.next()
				if reg, ok := p.(*mqttsn.Register); ok {
					c.send(&mqttsn.RegAck{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: mqttsn.Accepted})
					continue
				}
				if _, ok := p.(*mqttsn.PingResp); ok {
					break
				}
				got = append(got, string(p.(*mqttsn.Publish).Data))
			}
			assert.Equal(t, []string{"3", "4"}, got)
		}
	})
}
