package client

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var bg = context.Background()

func TestConnectWithoutWill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "sensor-1", KeepAlive: 60 * time.Second, CleanSession: true})
		done := run(func() error { return h.c.Connect(bg) })
		// client --CONNECT--> GW
		h.gw.expect(&mqttsn.Connect{CleanSession: true, Duration: 60, ClientID: "sensor-1"})
		synctest.Wait()
		assert.Equal(t, StateConnecting, h.c.State())
		// client <--CONNACK-- GW
		h.gw.send(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
		require.NoError(t, <-done)
		assert.Equal(t, StateActive, h.c.State())
	})
}

func TestConnectWithWill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{
			ClientID: "sensor-1",
			Will:     &Will{Topic: "sensors/1/status", Payload: []byte("offline"), QoS: mqttsn.QoS1, Retain: true},
		})
		done := run(func() error { return h.c.Connect(bg) })
		h.gw.expect(&mqttsn.Connect{Will: true, ClientID: "sensor-1"}) // client --CONNECT(Will)--> GW
		h.gw.send(&mqttsn.WillTopicReq{})                              // client <--WILLTOPICREQ-- GW
		h.gw.expect(&mqttsn.WillTopic{QoS: mqttsn.QoS1, Retain: true, Topic: "sensors/1/status"})
		h.gw.send(&mqttsn.WillMsgReq{}) // client <--WILLMSGREQ-- GW
		h.gw.expect(&mqttsn.WillMsg{Message: []byte("offline")})
		h.gw.send(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
		require.NoError(t, <-done)
		assert.Equal(t, StateActive, h.c.State())
	})
}

func TestConnectWithEmptyWillTopic(t *testing.T) {
	// A client deletes its stored Will with CleanSession=0, Will=1 and the
	// empty WILLTOPIC (§6.3); the gateway then skips WILLMSGREQ
	// (spec-interpretation #24).
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "sensor-1", Will: &Will{}})
		done := run(func() error { return h.c.Connect(bg) })
		h.gw.expect(&mqttsn.Connect{Will: true, ClientID: "sensor-1"})
		h.gw.send(&mqttsn.WillTopicReq{})
		h.gw.expect(&mqttsn.WillTopic{}) // the 2-octet empty form
		h.gw.send(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
		require.NoError(t, <-done)
	})
}

func TestConnectWillExchangeRetransmitsLastStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", Will: &Will{Topic: "w", Payload: []byte("x")}})
		done := run(func() error { return h.c.Connect(bg) })
		h.gw.recv()
		h.gw.send(&mqttsn.WillTopicReq{})
		start := time.Now()
		h.gw.expect(&mqttsn.WillTopic{Topic: "w"})
		// The gateway stays silent: the WILLTOPIC, not the CONNECT, is
		// sent again after T_retry.
		h.gw.expect(&mqttsn.WillTopic{Topic: "w"})
		assert.Equal(t, DefaultRetryInterval, time.Since(start))
		h.gw.send(&mqttsn.WillMsgReq{})
		h.gw.expect(&mqttsn.WillMsg{Message: []byte("x")})
		h.gw.send(&mqttsn.ConnAck{})
		require.NoError(t, <-done)
	})
}

func TestConnectRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "sensor-1"})
		done := run(func() error { return h.c.Connect(bg) })
		h.gw.recv()
		h.gw.send(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedCongestion})
		err := <-done
		require.ErrorIs(t, err, mqttsn.RejectedCongestion)
		assert.Equal(t, StateDisconnected, h.c.State())
		assert.Empty(t, h.lost, "a failed Connect is not a lost session")
	})
}

func TestConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "sensor-1", RetryInterval: 15 * time.Second, RetryCount: 2})
		start := time.Now()
		done := run(func() error { return h.c.Connect(bg) })
		for i := range 3 { // the first CONNECT and N_retry = 2 retransmissions
			h.gw.expect(&mqttsn.Connect{ClientID: "sensor-1"})
			assert.Equal(t, time.Duration(i)*15*time.Second, time.Since(start))
		}
		err := <-done
		require.ErrorIs(t, err, ErrTimeout)
		assert.Equal(t, 45*time.Second, time.Since(start))
		assert.Equal(t, StateDisconnected, h.c.State())
		h.quiet()
	})
}

func TestConnectNeedsClientID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{})
		require.ErrorIs(t, h.c.Connect(bg), ErrInvalidOptions)
		h.quiet()
	})
}

func TestRegister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		res := make(chan uint16, 1)
		done := run(func() error {
			id, err := h.c.Register(bg, "sensors/1/temp")
			res <- id
			return err
		})
		// client --REGISTER(0, MsgId, name)--> GW
		reg := h.gw.recv().(*mqttsn.Register)
		assert.Equal(t, &mqttsn.Register{MsgID: reg.MsgID, TopicName: "sensors/1/temp"}, reg)
		assert.NotZero(t, reg.MsgID)
		// client <--REGACK(5, MsgId, accepted)-- GW, and at once a PUBLISH
		// with the new id (the client is subscribed to a filter it matches)
		h.gw.send(&mqttsn.RegAck{TopicID: 5, MsgID: reg.MsgID})
		h.gw.send(&mqttsn.Publish{TopicID: 5, Data: []byte("echo")})
		require.NoError(t, <-done)
		assert.Equal(t, Message{Topic: Topic{Name: "sensors/1/temp", ID: 5}, Payload: []byte("echo")}, <-h.msgs)
		assert.Equal(t, uint16(5), <-res)
		id, ok := h.c.LookupTopic("sensors/1/temp")
		assert.True(t, ok)
		assert.Equal(t, uint16(5), id)

		done = run(func() error { _, err := h.c.Register(bg, "sensors/2/temp"); return err })
		reg = h.gw.recv().(*mqttsn.Register)
		h.gw.send(&mqttsn.RegAck{MsgID: reg.MsgID, ReturnCode: mqttsn.RejectedNotSupported})
		require.ErrorIs(t, <-done, mqttsn.RejectedNotSupported)

		done = run(func() error { _, err := h.c.Register(bg, "sensors/3/temp"); return err })
		reg = h.gw.recv().(*mqttsn.Register)
		h.gw.send(&mqttsn.RegAck{TopicID: 0xFFFF, MsgID: reg.MsgID})
		require.ErrorIs(t, <-done, ErrProtocol)

		_, err := h.c.Register(bg, "sensors/+/temp")
		require.ErrorIs(t, err, ErrInvalidTopic)
		h.quiet()
	})
}

func TestCallsNeedASession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		_, err := h.c.Register(bg, "a")
		require.ErrorIs(t, err, ErrNotConnected)
		require.ErrorIs(t, h.c.Publish(bg, Message{Topic: Predefined(1)}), ErrNotConnected)
		_, _, err = h.c.Subscribe(bg, TopicName("a"), mqttsn.QoS0)
		require.ErrorIs(t, err, ErrNotConnected)
		require.ErrorIs(t, h.c.Ping(bg), ErrNotConnected)
		require.ErrorIs(t, h.c.Wake(bg), ErrNotConnected)
		require.ErrorIs(t, h.c.Sleep(bg, time.Minute), ErrNotConnected)
		h.quiet()
	})
}

func TestPublishQoS0RegistersOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		done := run(func() error {
			return h.c.Publish(bg, Message{Topic: TopicName("a/b"), Payload: []byte("21.5")})
		})
		reg := h.gw.recv().(*mqttsn.Register) // client --REGISTER--> GW
		h.gw.send(&mqttsn.RegAck{TopicID: 9, MsgID: reg.MsgID})
		// client --PUBLISH(QoS 0, id 9)--> GW
		h.gw.expect(&mqttsn.Publish{TopicID: 9, Data: []byte("21.5")})
		require.NoError(t, <-done)

		// The id is cached: no second REGISTER.
		require.NoError(t, h.c.Publish(bg, Message{Topic: TopicName("a/b"), Payload: []byte("22"), Retain: true}))
		h.gw.expect(&mqttsn.Publish{Retain: true, TopicID: 9, Data: []byte("22")})
		// A registered id may be used directly.
		require.NoError(t, h.c.Publish(bg, Message{Topic: Topic{ID: 9}, Payload: []byte("23")}))
		h.gw.expect(&mqttsn.Publish{TopicID: 9, Data: []byte("23")})
		h.quiet()
	})
}

func TestPublishQoS1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		done := run(func() error {
			return h.c.Publish(bg, Message{Topic: Predefined(7), QoS: mqttsn.QoS1, Payload: []byte("on")})
		})
		pub := h.gw.recv().(*mqttsn.Publish) // client --PUBLISH(QoS 1)--> GW
		assert.Equal(t, &mqttsn.Publish{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, TopicID: 7, MsgID: pub.MsgID, Data: []byte("on")}, pub)
		assert.NotZero(t, pub.MsgID)
		// A PUBACK for another message id does not complete it.
		h.gw.send(&mqttsn.PubAck{TopicID: 7, MsgID: pub.MsgID + 1})
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Publish returned %v on a PUBACK for another message", err)
		default:
		}
		h.gw.send(&mqttsn.PubAck{TopicID: 7, MsgID: pub.MsgID}) // client <--PUBACK-- GW
		require.NoError(t, <-done)
		h.quiet()
	})
}

func TestPublishQoS2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		done := run(func() error {
			return h.c.Publish(bg, Message{Topic: Short("ab"), QoS: mqttsn.QoS2, Payload: []byte("x")})
		})
		pub := h.gw.recv().(*mqttsn.Publish) // client --PUBLISH(QoS 2)--> GW
		assert.Equal(t, &mqttsn.Publish{QoS: mqttsn.QoS2, TopicIDType: mqttsn.TopicShort, TopicID: 0x6162, MsgID: pub.MsgID, Data: []byte("x")}, pub)
		h.gw.send(&mqttsn.PubRec{MsgID: pub.MsgID})   // client <--PUBREC-- GW
		h.gw.expect(&mqttsn.PubRel{MsgID: pub.MsgID}) // client --PUBREL--> GW
		h.gw.expect(&mqttsn.PubRel{MsgID: pub.MsgID}) // retransmitted after T_retry, without DUP
		h.gw.send(&mqttsn.PubComp{MsgID: pub.MsgID})  // client <--PUBCOMP-- GW
		require.NoError(t, <-done)

		// A QoS 2 rejection comes as PUBACK (§5.4.13).
		done = run(func() error {
			return h.c.Publish(bg, Message{Topic: Short("ab"), QoS: mqttsn.QoS2})
		})
		pub = h.gw.recv().(*mqttsn.Publish)
		h.gw.send(&mqttsn.PubAck{TopicID: pub.TopicID, MsgID: pub.MsgID, ReturnCode: mqttsn.RejectedCongestion})
		require.ErrorIs(t, <-done, mqttsn.RejectedCongestion)
		h.quiet()
	})
}

func TestPublishRetransmitsWithDUPThenTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		start := time.Now()
		done := run(func() error {
			return h.c.Publish(bg, Message{Topic: Predefined(1), QoS: mqttsn.QoS1, Payload: []byte("v")})
		})
		first := h.gw.recv().(*mqttsn.Publish)
		assert.False(t, first.DUP)
		for i := 1; i <= DefaultRetryCount; i++ {
			again := h.gw.recv().(*mqttsn.Publish)
			assert.Equal(t, time.Duration(i)*DefaultRetryInterval, time.Since(start), "retransmission %d", i)
			want := *first
			want.DUP = true
			assert.Equal(t, &want, again, "retransmission %d", i)
		}
		err := <-done
		require.ErrorIs(t, err, ErrTimeout)
		assert.Equal(t, time.Duration(DefaultRetryCount+1)*DefaultRetryInterval, time.Since(start))
		// After N_retry the client assumes the gateway is gone (§6.13).
		assert.Equal(t, StateLost, h.c.State())
		require.ErrorIs(t, <-h.lost, ErrTimeout)
		assert.Equal(t, uint64(DefaultRetryCount), h.c.Stats().Retransmitted)
		h.quiet()
	})
}

func TestPublishQoSMinus1WithoutConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{})
		require.NoError(t, h.c.Publish(bg, Message{Topic: Predefined(3), QoS: mqttsn.QoSMinus1, Payload: []byte("1")}))
		h.gw.expect(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 3, Data: []byte("1")})
		require.NoError(t, h.c.Publish(bg, Message{Topic: Short("t1"), QoS: mqttsn.QoSMinus1, Payload: []byte("2")}))
		h.gw.expect(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort, TopicID: 0x7431, Data: []byte("2")})
		// A topic name goes in the long-topic-name form.
		require.NoError(t, h.c.Publish(bg, Message{Topic: TopicName("plant/7"), QoS: mqttsn.QoSMinus1, Payload: []byte("3")}))
		h.gw.expect(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: "plant/7", Data: []byte("3")})

		require.ErrorIs(t, h.c.Publish(bg, Message{Topic: Short("abc"), QoS: mqttsn.QoSMinus1}), ErrInvalidTopic)
		require.ErrorIs(t, h.c.Publish(bg, Message{Topic: TopicName("a/#"), QoS: mqttsn.QoSMinus1}), ErrInvalidTopic)
		require.ErrorIs(t, h.c.Publish(bg, Message{Topic: Topic{}, QoS: mqttsn.QoSMinus1}), ErrInvalidTopic)
		require.ErrorIs(t, h.c.Publish(bg, Message{Topic: Predefined(1), QoS: 3}), ErrInvalidOptions)
		assert.Equal(t, StateDisconnected, h.c.State())
		h.quiet()
	})
}

func TestPublishInvalidTopicIDRegistersAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		pubAt := func(qos mqttsn.QoS) <-chan error {
			return run(func() error { return h.c.Publish(bg, Message{Topic: TopicName("a"), QoS: qos}) })
		}
		done := pubAt(mqttsn.QoS1)
		reg := h.gw.recv().(*mqttsn.Register)
		h.gw.send(&mqttsn.RegAck{TopicID: 4, MsgID: reg.MsgID})
		pub := h.gw.recv().(*mqttsn.Publish)
		// client <--PUBACK(invalid topic id)-- GW
		h.gw.send(&mqttsn.PubAck{TopicID: 4, MsgID: pub.MsgID, ReturnCode: mqttsn.RejectedInvalidTopicID})
		require.ErrorIs(t, <-done, mqttsn.RejectedInvalidTopicID)

		// The next PUBLISH registers the name again.
		done = pubAt(mqttsn.QoS0)
		reg = h.gw.recv().(*mqttsn.Register)
		assert.Equal(t, "a", reg.TopicName)
		h.gw.send(&mqttsn.RegAck{TopicID: 6, MsgID: reg.MsgID})
		h.gw.expect(&mqttsn.Publish{TopicID: 6})
		require.NoError(t, <-done)

		// A QoS 0 rejection (PUBACK with MsgId 0) also forgets the id.
		h.gw.send(&mqttsn.PubAck{TopicID: 6, ReturnCode: mqttsn.RejectedInvalidTopicID})
		synctest.Wait()
		_, ok := h.c.LookupTopic("a")
		assert.False(t, ok)
		h.quiet()
	})
}

func TestOnlyOneOutstandingPerClass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		p1 := run(func() error { return h.c.Publish(bg, Message{Topic: Predefined(1), QoS: mqttsn.QoS1}) })
		p2 := run(func() error { return h.c.Publish(bg, Message{Topic: Predefined(2), QoS: mqttsn.QoS2}) })
		s1 := run(func() error { _, _, err := h.c.Subscribe(bg, Predefined(1), mqttsn.QoS1); return err })
		s2 := run(func() error { return h.c.Unsubscribe(bg, Predefined(2)) })
		// One PUBLISH and one SUBSCRIBE/UNSUBSCRIBE go out; the others
		// wait for their acknowledgement.
		var pub *mqttsn.Publish
		var sub mqttsn.Packet
		for range 2 {
			switch p := h.gw.recv().(type) {
			case *mqttsn.Publish:
				pub = p
			default:
				sub = p
			}
		}
		require.NotNil(t, pub)
		require.NotNil(t, sub)
		synctest.Wait()
		assert.Zero(t, h.gwc.Pending(), "a second message of a class went out before the first was acknowledged")

		// The gateway answers everything; the waiting calls then go out,
		// in any order: PUBREL, the second PUBLISH, the second of
		// SUBSCRIBE/UNSUBSCRIBE.
		answer := func(p mqttsn.Packet) {
			switch p := p.(type) {
			case *mqttsn.Publish:
				if p.QoS == mqttsn.QoS1 {
					h.gw.send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
				} else {
					h.gw.send(&mqttsn.PubRec{MsgID: p.MsgID})
				}
			case *mqttsn.PubRel:
				h.gw.send(&mqttsn.PubComp{MsgID: p.MsgID})
			case *mqttsn.Subscribe:
				h.gw.send(&mqttsn.SubAck{QoS: p.QoS, TopicID: p.TopicID, MsgID: p.MsgID})
			case *mqttsn.Unsubscribe:
				h.gw.send(&mqttsn.UnsubAck{MsgID: p.MsgID})
			default:
				t.Errorf("unexpected %v", p.Type())
			}
		}
		answer(pub)
		answer(sub)
		for range 3 {
			answer(h.gw.recv())
		}
		for _, ch := range []<-chan error{p1, p2, s1, s2} {
			require.NoError(t, <-ch)
		}
		h.quiet()
	})
}

func TestSubscribeWildcardWithGatewayRegister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		type result struct {
			qos mqttsn.QoS
			id  uint16
		}
		res := make(chan result, 1)
		done := run(func() error {
			q, id, err := h.c.Subscribe(bg, TopicName("sensors/#"), mqttsn.QoS2)
			res <- result{q, id}
			return err
		})
		// client --SUBSCRIBE(QoS 2, name "sensors/#")--> GW
		sub := h.gw.recv().(*mqttsn.Subscribe)
		assert.Equal(t, &mqttsn.Subscribe{QoS: mqttsn.QoS2, MsgID: sub.MsgID, TopicName: "sensors/#"}, sub)
		// client <--SUBACK(QoS 1, TopicId 0, accepted)-- GW
		h.gw.send(&mqttsn.SubAck{QoS: mqttsn.QoS1, MsgID: sub.MsgID})
		require.NoError(t, <-done)
		assert.Equal(t, result{mqttsn.QoS1, 0}, <-res)

		// client <--REGISTER(7, 1, "sensors/t1")-- GW
		h.gw.send(&mqttsn.Register{TopicID: 7, MsgID: 1, TopicName: "sensors/t1"})
		h.gw.expect(&mqttsn.RegAck{TopicID: 7, MsgID: 1, ReturnCode: mqttsn.Accepted})
		// client <--PUBLISH(QoS 1, id 7)-- GW
		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 7, MsgID: 2, Data: []byte("19.0")})
		h.gw.expect(&mqttsn.PubAck{TopicID: 7, MsgID: 2, ReturnCode: mqttsn.Accepted})
		assert.Equal(t, Message{
			Topic:   Topic{Kind: mqttsn.TopicNormal, Name: "sensors/t1", ID: 7},
			Payload: []byte("19.0"),
			QoS:     mqttsn.QoS1,
		}, <-h.msgs)

		// Reserved ids and wildcards in a gateway REGISTER are refused.
		h.gw.send(&mqttsn.Register{TopicID: 0, MsgID: 3, TopicName: "sensors/t2"})
		h.gw.expect(&mqttsn.RegAck{MsgID: 3, ReturnCode: mqttsn.RejectedInvalidTopicID})
		h.gw.send(&mqttsn.Register{TopicID: 8, MsgID: 4, TopicName: "sensors/+"})
		h.gw.expect(&mqttsn.RegAck{TopicID: 8, MsgID: 4, ReturnCode: mqttsn.RejectedNotSupported})
		h.quiet()
	})
}

func TestSubscribeTopicKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()

		// A plain name: the SUBACK's id is recorded for later PUBLISHes.
		done := run(func() error { _, _, err := h.c.Subscribe(bg, TopicName("room/1"), mqttsn.QoS0); return err })
		sub := h.gw.recv().(*mqttsn.Subscribe)
		// A retained message may follow the SUBACK at once, before
		// Subscribe has returned.
		h.gw.send(&mqttsn.SubAck{TopicID: 12, MsgID: sub.MsgID})
		h.gw.send(&mqttsn.Publish{TopicID: 12, Data: []byte("a")})
		require.NoError(t, <-done)
		assert.Equal(t, Message{Topic: Topic{Name: "room/1", ID: 12}, Payload: []byte("a")}, <-h.msgs)

		done = run(func() error { _, _, err := h.c.Subscribe(bg, Predefined(3), mqttsn.QoS1); return err })
		h.gw.expect(&mqttsn.Subscribe{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, MsgID: sub.MsgID + 1, TopicID: 3})
		h.gw.send(&mqttsn.SubAck{QoS: mqttsn.QoS1, TopicID: 3, MsgID: sub.MsgID + 1})
		require.NoError(t, <-done)
		h.gw.send(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 3, Data: []byte("b")})
		assert.Equal(t, Message{Topic: Predefined(3), Payload: []byte("b")}, <-h.msgs)

		done = run(func() error { _, _, err := h.c.Subscribe(bg, Short("ab"), mqttsn.QoS0); return err })
		h.gw.expect(&mqttsn.Subscribe{TopicIDType: mqttsn.TopicShort, MsgID: sub.MsgID + 2, TopicID: 0x6162})
		h.gw.send(&mqttsn.SubAck{TopicID: 0x6162, MsgID: sub.MsgID + 2, ReturnCode: mqttsn.RejectedInvalidTopicID})
		require.ErrorIs(t, <-done, mqttsn.RejectedInvalidTopicID)
		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort, TopicID: 0x6162, Data: []byte("c")})
		assert.Equal(t, Message{Topic: Short("ab"), Payload: []byte("c"), QoS: mqttsn.QoSMinus1}, <-h.msgs)

		done = run(func() error { return h.c.Unsubscribe(bg, TopicName("room/1")) })
		h.gw.expect(&mqttsn.Unsubscribe{MsgID: sub.MsgID + 3, TopicName: "room/1"})
		h.gw.send(&mqttsn.UnsubAck{MsgID: sub.MsgID + 3})
		require.NoError(t, <-done)

		_, _, err := h.c.Subscribe(bg, Short("a"), mqttsn.QoS0)
		require.ErrorIs(t, err, ErrInvalidTopic)
		_, _, err = h.c.Subscribe(bg, TopicName("x"), mqttsn.QoSMinus1)
		require.ErrorIs(t, err, ErrInvalidOptions)
		h.quiet()
	})
}

func TestSubscribeRetransmitsWithDUP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		done := run(func() error { _, _, err := h.c.Subscribe(bg, TopicName("x"), mqttsn.QoS1); return err })
		sub := h.gw.recv().(*mqttsn.Subscribe)
		assert.False(t, sub.DUP)
		again := h.gw.recv().(*mqttsn.Subscribe)
		want := *sub
		want.DUP = true
		assert.Equal(t, &want, again)
		h.gw.send(&mqttsn.SubAck{QoS: mqttsn.QoS1, TopicID: 1, MsgID: sub.MsgID})
		require.NoError(t, <-done)
		h.quiet()
	})
}

func TestPublishForUnknownTopicIDRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		// client <--PUBLISH(id 99)-- GW, client --PUBACK(99, invalid topic id)--> GW
		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 99, MsgID: 5, Data: []byte("x")})
		h.gw.expect(&mqttsn.PubAck{TopicID: 99, MsgID: 5, ReturnCode: mqttsn.RejectedInvalidTopicID})
		h.gw.send(&mqttsn.Publish{TopicID: 98, Data: []byte("y")})
		h.gw.expect(&mqttsn.PubAck{TopicID: 98, ReturnCode: mqttsn.RejectedInvalidTopicID})
		h.quiet()
		assert.Equal(t, uint64(2), h.c.Stats().InvalidTopic)
		assert.Zero(t, h.c.Stats().Delivered)
	})
}

func TestIncomingQoS2ExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		pub := &mqttsn.Publish{QoS: mqttsn.QoS2, TopicIDType: mqttsn.TopicPredefined, TopicID: 1, MsgID: 3, Data: []byte("once")}
		h.gw.send(pub)                        // client <--PUBLISH(QoS 2, 3)-- GW
		h.gw.expect(&mqttsn.PubRec{MsgID: 3}) // client --PUBREC(3)--> GW
		dup := *pub
		dup.DUP = true
		h.gw.send(&dup)                        // the PUBREC was lost: a duplicate
		h.gw.expect(&mqttsn.PubRec{MsgID: 3})  // acknowledged again ...
		h.gw.send(&mqttsn.PubRel{MsgID: 3})    // client <--PUBREL(3)-- GW
		h.gw.expect(&mqttsn.PubComp{MsgID: 3}) // client --PUBCOMP(3)--> GW
		h.gw.send(&mqttsn.PubRel{MsgID: 3})    // a retransmitted PUBREL
		h.gw.expect(&mqttsn.PubComp{MsgID: 3})
		m := <-h.msgs
		assert.Equal(t, []byte("once"), m.Payload)
		h.quiet() // ... but delivered once

		// After PUBREL the id is free for a new message.
		pub.Data = []byte("twice")
		h.gw.send(pub)
		h.gw.expect(&mqttsn.PubRec{MsgID: 3})
		assert.Equal(t, []byte("twice"), (<-h.msgs).Payload)
		h.quiet()
	})
}

func TestGatewayPingReqAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		// Not connected: ignored (§6.11).
		h.gw.send(&mqttsn.PingReq{})
		h.quiet()
		h.connect()
		h.gw.send(&mqttsn.PingReq{}) // client <--PINGREQ-- GW
		h.gw.expect(&mqttsn.PingResp{})
		h.quiet()
	})
}

func TestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", KeepAlive: time.Minute})
		h.connect()
		start := time.Now()
		h.gw.expect(&mqttsn.PingReq{}) // nothing sent for a keep-alive period
		assert.Equal(t, time.Minute, time.Since(start))
		h.gw.send(&mqttsn.PingResp{})

		// Traffic postpones the next PINGREQ.
		time.Sleep(30 * time.Second) // advances the bubble's fake clock
		require.NoError(t, h.c.Publish(bg, Message{Topic: Predefined(1), Payload: []byte("x")}))
		h.gw.recv()
		sent := time.Now()
		h.gw.expect(&mqttsn.PingReq{})
		assert.Equal(t, time.Minute, time.Since(sent))

		// Unanswered, the PINGREQ is retransmitted, then the session is lost.
		for range DefaultRetryCount {
			h.gw.expect(&mqttsn.PingReq{})
		}
		require.ErrorIs(t, <-h.lost, ErrTimeout)
		assert.Equal(t, StateLost, h.c.State())
		h.quiet()
	})
}

func TestUnsolicitedDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", KeepAlive: time.Minute})
		h.connect()
		done := run(func() error { return h.c.Publish(bg, Message{Topic: Predefined(1), QoS: mqttsn.QoS1}) })
		h.gw.recv()
		h.gw.send(&mqttsn.Disconnect{}) // client <--DISCONNECT-- GW
		require.ErrorIs(t, <-done, ErrDisconnected)
		require.ErrorIs(t, <-h.lost, ErrDisconnected)
		assert.Equal(t, StateDisconnected, h.c.State())
		// No keep-alive without a session.
		time.Sleep(3 * time.Minute) // advances the bubble's fake clock
		h.quiet()
		// The client may connect again.
		h.connect()
	})
}

func TestWillUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", Will: &Will{Topic: "old", Payload: []byte("bye")}})
		done := run(func() error { return h.c.Connect(bg) })
		h.gw.recv()
		h.gw.send(&mqttsn.ConnAck{})
		require.NoError(t, <-done)

		done = run(func() error { return h.c.UpdateWillTopic(bg, "new/will", mqttsn.QoS2, true) })
		// client --WILLTOPICUPD--> GW, client <--WILLTOPICRESP-- GW
		h.gw.expect(&mqttsn.WillTopicUpd{QoS: mqttsn.QoS2, Retain: true, Topic: "new/will"})
		h.gw.send(&mqttsn.WillTopicResp{ReturnCode: mqttsn.Accepted})
		require.NoError(t, <-done)

		done = run(func() error { return h.c.UpdateWillMessage(bg, []byte("gone")) })
		// client --WILLMSGUPD--> GW, client <--WILLMSGRESP-- GW
		h.gw.expect(&mqttsn.WillMsgUpd{Message: []byte("gone")})
		h.gw.send(&mqttsn.WillMsgResp{ReturnCode: mqttsn.Accepted})
		require.NoError(t, <-done)

		// A later Connect sends the updated Will.
		done = run(func() error { return h.c.Connect(bg) })
		h.gw.expect(&mqttsn.Connect{Will: true, ClientID: "c"})
		h.gw.send(&mqttsn.WillTopicReq{})
		h.gw.expect(&mqttsn.WillTopic{QoS: mqttsn.QoS2, Retain: true, Topic: "new/will"})
		h.gw.send(&mqttsn.WillMsgReq{})
		h.gw.expect(&mqttsn.WillMsg{Message: []byte("gone")})
		h.gw.send(&mqttsn.ConnAck{})
		require.NoError(t, <-done)

		// The empty WILLTOPICUPD deletes the Will; a rejection is an error.
		done = run(func() error { return h.c.UpdateWillTopic(bg, "", 0, false) })
		h.gw.expect(&mqttsn.WillTopicUpd{})
		h.gw.send(&mqttsn.WillTopicResp{ReturnCode: mqttsn.RejectedNotSupported})
		require.ErrorIs(t, <-done, mqttsn.RejectedNotSupported)
		done = run(func() error { return h.c.UpdateWillMessage(bg, nil) })
		h.gw.expect(&mqttsn.WillMsgUpd{})
		h.gw.send(&mqttsn.WillMsgResp{ReturnCode: mqttsn.RejectedCongestion})
		require.ErrorIs(t, <-done, mqttsn.RejectedCongestion)
		h.quiet()
	})
}

func TestSleepAndWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "sleepy", KeepAlive: time.Minute})
		h.connect()
		// A registered topic for the buffered messages.
		h.gw.send(&mqttsn.Register{TopicID: 4, MsgID: 1, TopicName: "cmd/led"})
		h.gw.expect(&mqttsn.RegAck{TopicID: 4, MsgID: 1})

		done := run(func() error { return h.c.Sleep(bg, 299500*time.Millisecond) })
		// client --DISCONNECT(300)--> GW, client <--DISCONNECT-- GW
		h.gw.expect(&mqttsn.Disconnect{Duration: 300, HasDuration: true})
		h.gw.send(&mqttsn.Disconnect{})
		require.NoError(t, <-done)
		assert.Equal(t, StateAsleep, h.c.State())
		time.Sleep(5 * time.Minute) // advances the fake clock: no keep-alive while asleep
		h.quiet()

		done = run(func() error { return h.c.Wake(bg) })
		h.gw.expect(&mqttsn.PingReq{ClientID: "sleepy"}) // client --PINGREQ(ClientId)--> GW
		synctest.Wait()
		assert.Equal(t, StateAwake, h.c.State())
		// client <--PUBLISH-- GW (buffered), each with its QoS exchange
		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 4, MsgID: 10, Data: []byte("on")})
		h.gw.expect(&mqttsn.PubAck{TopicID: 4, MsgID: 10})
		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: 4, MsgID: 11, Data: []byte("off")})
		h.gw.expect(&mqttsn.PubRec{MsgID: 11})
		h.gw.send(&mqttsn.PubRel{MsgID: 11})
		h.gw.expect(&mqttsn.PubComp{MsgID: 11})
		h.gw.send(&mqttsn.Publish{TopicID: 4, Data: []byte("blink")})
		h.gw.send(&mqttsn.PingResp{}) // client <--PINGRESP-- GW: nothing more buffered
		require.NoError(t, <-done)
		// Wake returns after the handler saw every buffered message.
		require.Len(t, h.msgs, 3)
		for _, want := range []string{"on", "off", "blink"} {
			assert.Equal(t, want, string((<-h.msgs).Payload))
		}
		assert.Equal(t, StateAsleep, h.c.State())

		// Back to active with CONNECT.
		h.connect()
		h.gw.expect(&mqttsn.PingReq{})
	})
}

func TestWakeRetriesAndRestartsTimerOnTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "s"})
		h.connect()
		done := run(func() error { return h.c.Sleep(bg, time.Minute) })
		h.gw.recv()
		h.gw.send(&mqttsn.Disconnect{})
		require.NoError(t, <-done)

		start := time.Now()
		done = run(func() error { return h.c.Wake(bg) })
		h.gw.expect(&mqttsn.PingReq{ClientID: "s"})
		time.Sleep(DefaultRetryInterval - time.Second) // fake clock: just before T_retry
		h.gw.send(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 1})
		// The PUBLISH restarted T_retry: the PINGREQ is repeated T_retry
		// after it, not after the first PINGREQ.
		h.gw.expect(&mqttsn.PingReq{ClientID: "s"})
		assert.Equal(t, 2*DefaultRetryInterval-time.Second, time.Since(start))
		for range DefaultRetryCount - 1 {
			h.gw.expect(&mqttsn.PingReq{ClientID: "s"})
		}
		require.ErrorIs(t, <-done, ErrTimeout)
		// The client goes back to sleep; the session is not lost.
		assert.Equal(t, StateAsleep, h.c.State())
		assert.Empty(t, h.lost)
		<-h.msgs
		h.quiet()
	})
}

func TestDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", KeepAlive: time.Minute})
		h.connect()
		done := run(func() error { return h.c.Disconnect(bg) })
		h.gw.expect(&mqttsn.Disconnect{}) // client --DISCONNECT--> GW
		h.gw.send(&mqttsn.Disconnect{})   // client <--DISCONNECT-- GW
		require.NoError(t, <-done)
		assert.Equal(t, StateDisconnected, h.c.State())
		assert.Empty(t, h.lost)
		require.NoError(t, h.c.Disconnect(bg), "disconnecting twice is a no-op")
		time.Sleep(2 * time.Minute) // fake clock: no keep-alive after DISCONNECT
		h.quiet()
	})
}

func TestEncapsulation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := []byte{0x00, 0x13, 0xa2, 0x00, 0x40, 0xa1, 0xb2, 0xc3}
		h := newHarness(t, Options{ClientID: "xbee-1", Forwarder: &Forwarder{NodeID: node, Radius: 1}})
		done := run(func() error { return h.c.Connect(bg) })
		// fwd --ENCAPSULATED(node, CONNECT)--> GW (checked by the fake gateway)
		h.gw.expect(&mqttsn.Connect{ClientID: "xbee-1"})
		// A plain CONNACK, or one for another node, is not for this client.
		b, err := mqttsn.Append(nil, &mqttsn.ConnAck{})
		require.NoError(t, err)
		h.gw.sendRaw(b)
		other, err := (&mqttsn.Encapsulated{NodeID: []byte{1}, Message: b}).AppendTo(nil)
		require.NoError(t, err)
		h.gw.sendRaw(other)
		synctest.Wait()
		assert.Equal(t, StateConnecting, h.c.State())
		assert.Equal(t, uint64(2), h.c.Stats().Ignored)
		// fwd <--ENCAPSULATED(node, CONNACK)-- GW
		h.gw.send(&mqttsn.ConnAck{})
		require.NoError(t, <-done)

		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicShort, TopicID: 0x6869, MsgID: 1, Data: []byte("x")})
		h.gw.expect(&mqttsn.PubAck{TopicID: 0x6869, MsgID: 1})
		assert.Equal(t, Short("hi"), (<-h.msgs).Topic)
		h.quiet()
	})
}

func TestQueueFullLeavesQoS1Unacknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		cc, gc := memLink(t, "client", "gateway")
		gw := &fakeGW{t: t, conn: gc, client: cc.LocalAddr()}
		c, err := Dial(cc, gc.LocalAddr(), Options{ClientID: "c", QueueSize: 1, Handler: func(Message) { <-block }})
		require.NoError(t, err)
		defer c.Close()
		defer close(block)
		done := run(func() error { return c.Connect(bg) })
		gw.recv()
		gw.send(&mqttsn.ConnAck{})
		require.NoError(t, <-done)

		pub := func(id uint16) *mqttsn.Publish {
			return &mqttsn.Publish{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, TopicID: 1, MsgID: id}
		}
		gw.send(pub(1)) // taken by the handler, which blocks
		gw.expect(&mqttsn.PubAck{TopicID: 1, MsgID: 1})
		synctest.Wait()
		gw.send(pub(2)) // queued
		gw.expect(&mqttsn.PubAck{TopicID: 1, MsgID: 2})
		gw.send(pub(3))                                                           // queue full: not acknowledged, so the gateway retransmits it
		gw.send(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 1}) // QoS 0: dropped
		synctest.Wait()
		assert.Zero(t, gc.Pending())
		assert.Equal(t, uint64(2), c.Stats().Dropped)
	})
}

func TestCloseEndsCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", KeepAlive: time.Minute})
		h.connect()
		done := run(func() error { return h.c.Publish(bg, Message{Topic: Predefined(1), QoS: mqttsn.QoS1}) })
		h.gw.recv()
		require.NoError(t, h.c.Close())
		require.ErrorIs(t, <-done, ErrClosed)
		require.NoError(t, h.c.Close(), "Close is idempotent")
		require.ErrorIs(t, h.c.Publish(bg, Message{Topic: Predefined(1), QoS: mqttsn.QoSMinus1}), net.ErrClosed)
	})
}

func TestContextCancelsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		err := h.c.Publish(ctx, Message{Topic: Predefined(1), QoS: mqttsn.QoS1})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		h.gw.recv()
		// The session survives a cancelled call.
		assert.Equal(t, StateActive, h.c.State())
	})
}

func TestOptionsValidation(t *testing.T) {
	cc, gc := memLink(t, "client", "gateway")
	for name, o := range map[string]Options{
		"keep-alive fraction": {KeepAlive: 1500 * time.Millisecond},
		"keep-alive too long": {KeepAlive: 65536 * time.Second},
		"will QoS -1":         {Will: &Will{Topic: "w", QoS: mqttsn.QoSMinus1}},
		"empty node id":       {Forwarder: &Forwarder{}},
		"radius":              {Forwarder: &Forwarder{NodeID: []byte{1}, Radius: 4}},
		"negative queue":      {QueueSize: -1},
		"tiny read buffer":    {MaxPacketSize: 1},
	} {
		_, err := Dial(cc, gc.LocalAddr(), o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
	_, err := Dial(nil, gc.LocalAddr(), Options{})
	assert.ErrorIs(t, err, ErrInvalidOptions)
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "asleep", StateAsleep.String())
	assert.Equal(t, "state(9)", State(9).String())
	assert.Equal(t, "predefined:3", Predefined(3).String())
	assert.Equal(t, "id:4", Topic{ID: 4}.String())
	assert.Equal(t, "a/b", TopicName("a/b").String())
}

func TestIncomingLongTopicName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c"})
		h.connect()
		h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: "plant/7/alarm", Data: []byte("!")})
		assert.Equal(t, Message{Topic: TopicName("plant/7/alarm"), Payload: []byte("!"), QoS: mqttsn.QoSMinus1}, <-h.msgs)
		h.quiet()
	})
}

func TestLinkFailureLosesSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", KeepAlive: time.Minute})
		h.connect()
		done := run(func() error { return h.c.Publish(bg, Message{Topic: Predefined(1), QoS: mqttsn.QoS1}) })
		h.gw.recv()
		require.NoError(t, h.c.conn.Close()) // the link goes away under the client
		require.ErrorIs(t, <-done, net.ErrClosed)
		require.ErrorIs(t, <-h.lost, net.ErrClosed)
		assert.Equal(t, StateLost, h.c.State())
		require.ErrorIs(t, h.c.Ping(bg), ErrNotConnected)
	})
}

func TestDisconnectAfterLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", KeepAlive: time.Minute, RetryCount: -1})
		h.connect()
		h.gw.expect(&mqttsn.PingReq{})
		require.ErrorIs(t, <-h.lost, ErrTimeout) // no retransmission with RetryCount -1
		assert.Equal(t, StateLost, h.c.State())
		// The gateway may still hold the session: DISCONNECT is still sent.
		done := run(func() error { return h.c.Disconnect(bg) })
		h.gw.expect(&mqttsn.Disconnect{})
		h.gw.send(&mqttsn.Disconnect{})
		require.NoError(t, <-done)
		assert.Equal(t, StateDisconnected, h.c.State())
		h.quiet()
	})
}

func TestMaxPacketSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "c", MaxPacketSize: 16})
		h.connect()
		h.gw.send(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 1, Data: []byte("123456789")}) // 16 octets
		assert.Equal(t, "123456789", string((<-h.msgs).Payload))
		h.gw.send(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 1, Data: []byte("1234567890")}) // 17 octets
		h.quiet()
		assert.Equal(t, uint64(1), h.c.Stats().Malformed)
	})
}

func TestWakeAnsweredWithDisconnect(t *testing.T) {
	// A gateway that lost the sleeping session answers the wake-up
	// PINGREQ with DISCONNECT, as gateways do after a restart.
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{ClientID: "s"})
		h.connect()
		done := run(func() error { return h.c.Sleep(bg, time.Minute) })
		h.gw.recv()
		h.gw.send(&mqttsn.Disconnect{})
		require.NoError(t, <-done)
		done = run(func() error { return h.c.Wake(bg) })
		h.gw.expect(&mqttsn.PingReq{ClientID: "s"})
		h.gw.send(&mqttsn.Disconnect{})
		require.ErrorIs(t, <-done, ErrDisconnected)
		require.ErrorIs(t, <-h.lost, ErrDisconnected)
		assert.Equal(t, StateDisconnected, h.c.State())
		h.quiet()
	})
}
