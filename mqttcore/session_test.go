package mqttcore

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLifecycle(t *testing.T) {
	b, err := New(nil)
	require.NoError(t, err)
	_, _, err = b.Connect(ConnectOptions{ClientID: "c", Consumer: newConsumer()})
	assert.ErrorIs(t, err, ErrNotStarted)
	require.NoError(t, b.Start(context.Background()))
	require.NoError(t, b.Start(context.Background()), "Start is idempotent")
	_, _, err = b.Connect(ConnectOptions{ClientID: "c"})
	assert.ErrorIs(t, err, ErrInvalidOptions, "a Consumer is required")
	c := newConsumer()
	s, _, err := b.Connect(ConnectOptions{ClientID: "c", Consumer: c})
	require.NoError(t, err)
	require.NoError(t, b.Close(context.Background()))
	require.NoError(t, b.Close(context.Background()), "Close is idempotent")
	assert.Equal(t, ReasonServerShuttingDown, <-c.disc)
	assert.ErrorIs(t, s.Publish(Message{Topic: "a"}), ErrSessionClosed)
	_, _, err = b.Connect(ConnectOptions{ClientID: "c", Consumer: c})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, b.Start(context.Background()), ErrClosed)

	_, err = New(&Options{MaxQueued: -1})
	assert.ErrorIs(t, err, ErrInvalidOptions)
}

// Two in-process sessions exchange messages at each QoS; the subscriber
// acknowledges and the window reopens.
func TestExchangeQoS(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	sub.subscribe(t, Subscription{Filter: "t/#", QoS: 2})

	// pub --PUBLISH QoS 0--> broker --PUBLISH QoS 0--> sub
	pub.publish(t, "t/0", "zero", 0, false)
	require.True(t, sub.c.notified())
	ds := sub.drain()
	require.Len(t, ds, 1)
	assert.Equal(t, "t/0", ds[0].Topic)
	assert.EqualValues(t, 0, ds[0].QoS)
	assert.Zero(t, ds[0].PacketID)

	// QoS 1: PUBLISH, PUBACK.
	pub.publish(t, "t/1", "one", 1, false)
	require.True(t, sub.c.notified())
	ds = sub.drain()
	require.Len(t, ds, 1)
	assert.EqualValues(t, 1, ds[0].QoS)
	assert.NotZero(t, ds[0].PacketID)
	require.NoError(t, sub.Ack(ds[0].PacketID))
	assert.ErrorIs(t, sub.Ack(ds[0].PacketID), ErrPacketIDNotFound, "acknowledged once only")

	// QoS 2: PUBLISH, PUBREC, PUBREL, PUBCOMP.
	require.NoError(t, pub.PublishQoS2(7, Message{Topic: "t/2", Payload: []byte("two"), QoS: 2}))
	require.NoError(t, pub.Release(7))
	ds = sub.drain()
	require.Len(t, ds, 1)
	assert.EqualValues(t, 2, ds[0].QoS)
	id := ds[0].PacketID
	assert.ErrorIs(t, sub.Ack(id), ErrPacketIDNotFound, "PUBACK does not finish QoS 2")
	require.NoError(t, sub.Received(id))
	require.NoError(t, sub.Received(id), "a repeated PUBREC is accepted")
	require.NoError(t, sub.Complete(id))
	assert.ErrorIs(t, sub.Complete(id), ErrPacketIDNotFound)

	// Granted QoS caps the delivery QoS.
	sub.subscribe(t, Subscription{Filter: "t/#", QoS: 1})
	pub.publish(t, "t/x", "capped", 2, false)
	ds = sub.drain()
	require.Len(t, ds, 1)
	assert.EqualValues(t, 1, ds[0].QoS)

	st := b.Stats()
	assert.EqualValues(t, 4, st.MessagesReceived)
	assert.EqualValues(t, 4, st.MessagesSent)
	assert.EqualValues(t, 2, st.ClientsConnected)
}

func TestMessagePropertiesPassThrough(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	sub.subscribe(t, Subscription{Filter: "req", QoS: 1, ID: 42})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	props := MessageProperties{
		PayloadFormat: ptr[byte](1), ContentType: "text/plain", ResponseTopic: "resp",
		CorrelationData: []byte{1, 2}, User: []UserProperty{{"k", "v"}, {"k", "w"}},
	}
	require.NoError(t, pub.Publish(Message{Topic: "req", Payload: []byte("p"), QoS: 1, Properties: props}))
	ds := sub.drain()
	require.Len(t, ds, 1)
	assert.Equal(t, props, ds[0].Properties)
	assert.Equal(t, []uint32{42}, ds[0].SubscriptionIDs)
}

func TestInflightWindowAndOrder(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", ReceiveMaximum: 2})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	sub.subscribe(t, Subscription{Filter: "q", QoS: 1})
	for _, p := range []string{"1", "2", "3", "4"} {
		pub.publish(t, "q", p, 1, false)
	}
	ds := sub.drain()
	require.Equal(t, []string{"1", "2"}, payloads(ds), "only the window is handed out")
	assert.NotEqual(t, ds[0].PacketID, ds[1].PacketID)
	sub.c.notified()
	pub.publish(t, "q", "5", 1, false)
	assert.False(t, sub.c.notified(), "no wake-up while the window is full")
	require.NoError(t, sub.Ack(ds[1].PacketID))
	assert.True(t, sub.c.notified(), "an ack that opens the window notifies")
	next := sub.drain()
	assert.Equal(t, []string{"3"}, payloads(next), "in order, one slot free")
	require.NoError(t, sub.Ack(ds[0].PacketID))
	require.NoError(t, sub.Ack(next[0].PacketID))
	assert.Equal(t, []string{"4", "5"}, payloads(sub.drain()))
}

func TestPacketIDsNeverReusedInFlight(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	sub.subscribe(t, Subscription{Filter: "q", QoS: 1})
	pub.publish(t, "q", "held", 1, false)
	held := sub.drain()[0].PacketID
	// Wrap the 16-bit id space; the held id must be skipped.
	for range 70000 {
		pub.publish(t, "q", "x", 1, false)
		d, ok := sub.Next()
		require.True(t, ok)
		require.NotEqual(t, held, d.PacketID)
		require.NotZero(t, d.PacketID)
		require.NoError(t, sub.Ack(d.PacketID))
	}
	require.NoError(t, sub.Ack(held))
}

func TestRetained(t *testing.T) {
	b := startBroker(t, nil)
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "r/a", "first", 1, true)
	pub.publish(t, "r/a", "second", 1, true) // replaces
	pub.publish(t, "r/b", "b", 0, true)
	pub.publish(t, "r/c", "c", 1, true)
	pub.publish(t, "r/c", "", 0, true) // deletes
	assert.EqualValues(t, 2, b.Stats().RetainedMessages)

	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	sub.subscribe(t, Subscription{Filter: "r/+", QoS: 1, ID: 5})
	require.True(t, sub.c.notified())
	ds := sub.drain()
	require.Len(t, ds, 2)
	byTopic := map[string]Delivery{}
	for _, d := range ds {
		assert.True(t, d.Retain, "retained messages sent on subscribe keep RETAIN")
		assert.Equal(t, []uint32{5}, d.SubscriptionIDs)
		byTopic[d.Topic] = d
		if d.QoS > 0 {
			require.NoError(t, sub.Ack(d.PacketID))
		}
	}
	assert.Equal(t, "second", string(byTopic["r/a"].Payload))
	assert.EqualValues(t, 1, byTopic["r/a"].QoS)
	assert.EqualValues(t, 0, byTopic["r/b"].QoS, "QoS of the retained message, capped")

	// Retain handling 1: only for a new subscription.
	sub.subscribe(t, Subscription{Filter: "r/+", QoS: 1, RetainHandling: 1})
	assert.Empty(t, sub.drain(), "existing subscription: no retained messages")
	sub.subscribe(t, Subscription{Filter: "r/a", QoS: 1, RetainHandling: 1})
	assert.Len(t, sub.drain(), 1, "new subscription: retained messages")
	// Retain handling 2: never.
	sub.subscribe(t, Subscription{Filter: "r/#", QoS: 1, RetainHandling: 2})
	assert.Empty(t, sub.drain())
	// Retain handling 0: on every subscribe.
	sub.subscribe(t, Subscription{Filter: "r/b", QoS: 0})
	sub.subscribe(t, Subscription{Filter: "r/b", QoS: 0})
	assert.Len(t, sub.drain(), 2)
}

func TestRetainAsPublished(t *testing.T) {
	b := startBroker(t, nil)
	plain, _ := connect(t, b, ConnectOptions{ClientID: "plain"})
	rap, _ := connect(t, b, ConnectOptions{ClientID: "rap"})
	plain.subscribe(t, Subscription{Filter: "x"})
	rap.subscribe(t, Subscription{Filter: "x", RetainAsPublished: true})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "x", "live", 0, true)
	d := plain.drain()
	require.Len(t, d, 1)
	assert.False(t, d[0].Retain, "RETAIN cleared on normal forwarding")
	d = rap.drain()
	require.Len(t, d, 1)
	assert.True(t, d[0].Retain, "Retain As Published keeps it")
}

func TestOverlappingSubscriptions(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	sub.subscribe(t,
		Subscription{Filter: "home/+/temp", QoS: 0, ID: 1},
		Subscription{Filter: "home/#", QoS: 2, ID: 2},
		Subscription{Filter: "home/kitchen/temp", QoS: 1},
		Subscription{Filter: "$share/g/home/kitchen/temp", QoS: 1, ID: 4},
	)
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "home/kitchen/temp", "21", 2, false)
	ds := sub.drain()
	require.Len(t, ds, 1, "one copy for overlapping subscriptions")
	assert.EqualValues(t, 2, ds[0].QoS, "at the highest granted QoS")
	assert.ElementsMatch(t, []uint32{1, 2, 4}, ds[0].SubscriptionIDs, "with every identifier")
}

func TestNoLocal(t *testing.T) {
	b := startBroker(t, nil)
	a, _ := connect(t, b, ConnectOptions{ClientID: "a"})
	other, _ := connect(t, b, ConnectOptions{ClientID: "other"})
	a.subscribe(t, Subscription{Filter: "chat", NoLocal: true})
	other.subscribe(t, Subscription{Filter: "chat", NoLocal: true})
	a.publish(t, "chat", "from a", 0, false)
	assert.Empty(t, a.drain(), "own message not delivered")
	assert.Equal(t, []string{"from a"}, payloads(other.drain()))
	// Without No Local a client receives its own messages.
	a.subscribe(t, Subscription{Filter: "chat"})
	a.publish(t, "chat", "echo", 0, false)
	assert.Equal(t, []string{"echo"}, payloads(a.drain()))
}

func TestSharedSubscriptions(t *testing.T) {
	b := startBroker(t, nil)
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "jobs/old", "retained", 1, true)
	w1, _ := connect(t, b, ConnectOptions{ClientID: "w1"})
	w2, _ := connect(t, b, ConnectOptions{ClientID: "w2"})
	w1.subscribe(t, Subscription{Filter: "$share/g/jobs/#", QoS: 1})
	w2.subscribe(t, Subscription{Filter: "$share/g/jobs/#", QoS: 1})
	assert.Empty(t, w1.drain(), "no retained messages for shared subscriptions")
	mon, _ := connect(t, b, ConnectOptions{ClientID: "mon"})
	mon.subscribe(t, Subscription{Filter: "jobs/#", RetainHandling: 2})

	for range 10 {
		pub.publish(t, "jobs/new", "job", 1, false)
	}
	n1, n2 := len(w1.drain()), len(w2.drain())
	assert.Equal(t, 10, n1+n2, "each message to one member")
	assert.Equal(t, 5, n1, "round-robin")
	assert.Len(t, mon.drain(), 10, "ordinary subscribers still get every message")

	_, err := w1.Subscribe(Subscription{Filter: "$share/g/x", NoLocal: true})
	assert.ErrorIs(t, err, ErrProtocol, "No Local on a shared subscription")
	codes, err := w1.Unsubscribe("$share/g/jobs/#", "$share/g/jobs/#")
	require.NoError(t, err)
	assert.Equal(t, []ReasonCode{ReasonSuccess, ReasonNoSubscriptionExisted}, codes)
	for range 4 {
		pub.publish(t, "jobs/new", "job", 1, false)
	}
	assert.Len(t, w2.drain(), 4, "the remaining member gets everything")
}

func TestSubscribeCodesAndUnsubscribe(t *testing.T) {
	b := startBroker(t, nil)
	c, _ := connect(t, b, ConnectOptions{ClientID: "c"})
	codes, err := c.Subscribe(
		Subscription{Filter: "ok", QoS: 2},
		Subscription{Filter: "bad#"},
		Subscription{Filter: "$share//x"},
	)
	require.NoError(t, err)
	assert.Equal(t, []ReasonCode{ReasonGrantedQoS2, ReasonTopicFilterInvalid, ReasonTopicFilterInvalid}, codes)
	_, err = c.Subscribe(Subscription{Filter: "x", QoS: 3})
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.Subscribe(Subscription{Filter: "x", RetainHandling: 3})
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.Subscribe(Subscription{Filter: "x", ID: MaxSubscriptionID + 1})
	assert.ErrorIs(t, err, ErrProtocol)
	assert.EqualValues(t, 1, b.Stats().Subscriptions)

	codes, err = c.Unsubscribe("ok", "ok", "a/#/b")
	require.NoError(t, err)
	assert.Equal(t, []ReasonCode{ReasonSuccess, ReasonNoSubscriptionExisted, ReasonTopicFilterInvalid}, codes)
	assert.EqualValues(t, 0, b.Stats().Subscriptions)
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "ok", "gone", 0, false)
	assert.Empty(t, c.drain())
}

func TestPublishErrors(t *testing.T) {
	b := startBroker(t, nil)
	c, _ := connect(t, b, ConnectOptions{ClientID: "c"})
	assert.ErrorIs(t, c.Publish(Message{Topic: "a/+"}), ErrInvalidTopic)
	assert.ErrorIs(t, c.Publish(Message{Topic: "a", QoS: 3}), ErrProtocol)
	assert.ErrorIs(t, c.Publish(Message{Topic: "$SYS/broker/uptime"}), ErrNotAuthorized, "$SYS is the broker's")
	assert.ErrorIs(t, c.PublishQoS2(0, Message{Topic: "a", QoS: 2}), ErrProtocol)
	assert.ErrorIs(t, c.PublishQoS2(1, Message{Topic: "a", QoS: 1}), ErrProtocol)
	assert.ErrorIs(t, c.Release(9), ErrPacketIDNotFound)
}

func TestInboundQoS2ExactlyOnce(t *testing.T) {
	b := startBroker(t, &Options{MaxInboundInflight: 2})
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	sub.subscribe(t, Subscription{Filter: "x", QoS: 0})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	m := Message{Topic: "x", Payload: []byte("once"), QoS: 2}
	// pub --PUBLISH id 1--> broker, PUBREC lost, pub --PUBLISH id 1 DUP-->
	require.NoError(t, pub.PublishQoS2(1, m))
	require.NoError(t, pub.PublishQoS2(1, m))
	assert.Len(t, sub.drain(), 1, "a retransmission is not published again")
	require.NoError(t, pub.PublishQoS2(2, m))
	assert.ErrorIs(t, pub.PublishQoS2(3, m), ErrReceiveMaximumExceeded)
	// pub --PUBREL 1--> broker: id 1 may be used for a new message.
	require.NoError(t, pub.Release(1))
	assert.ErrorIs(t, pub.Release(1), ErrPacketIDNotFound)
	require.NoError(t, pub.PublishQoS2(1, m))
	assert.Len(t, sub.drain(), 2)

	// The unreleased ids belong to the session and survive a reconnect.
	pub2, present := connect(t, b, ConnectOptions{ClientID: "pub2", SessionExpiry: 60})
	assert.False(t, present)
	require.NoError(t, pub2.PublishQoS2(5, m))
	require.NoError(t, pub2.Disconnect(DisconnectOptions{}))
	pub2, present = connect(t, b, ConnectOptions{ClientID: "pub2", SessionExpiry: 60})
	assert.True(t, present)
	require.NoError(t, pub2.PublishQoS2(5, m), "duplicate after reconnect")
	assert.Len(t, sub.drain(), 1, "still published once")
	require.NoError(t, pub2.Release(5))
}

func TestDisconnectExpiryRules(t *testing.T) {
	b := startBroker(t, nil)
	c, _ := connect(t, b, ConnectOptions{ClientID: "c"})
	err := c.Disconnect(DisconnectOptions{SessionExpiry: ptr[uint32](60)})
	assert.ErrorIs(t, err, ErrProtocol, "raising an expiry of 0 at disconnect")
	assert.ErrorIs(t, c.Disconnect(DisconnectOptions{}), ErrSessionClosed)
	_, present := connect(t, b, ConnectOptions{ClientID: "c", SessionExpiry: 60})
	assert.False(t, present, "the session ended with expiry 0")

	c2, _ := connect(t, b, ConnectOptions{ClientID: "c2", SessionExpiry: 60})
	require.NoError(t, c2.Disconnect(DisconnectOptions{SessionExpiry: ptr[uint32](0)}))
	_, present = connect(t, b, ConnectOptions{ClientID: "c2"})
	assert.False(t, present, "expiry lowered to 0 at disconnect ends the session")
}

// A persistent session keeps its subscriptions and queues QoS 1 and 2
// while the client is away; unacknowledged messages come back with DUP.
func TestPersistentSessionQueueAndRedelivery(t *testing.T) {
	b := startBroker(t, nil)
	sub, present := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: SessionExpiryNever})
	assert.False(t, present)
	sub.subscribe(t, Subscription{Filter: "s/#", QoS: 2})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})

	pub.publish(t, "s/1", "unacked", 1, false)
	require.NoError(t, pub.PublishQoS2(1, Message{Topic: "s/2", Payload: []byte("pubrec'd"), QoS: 2}))
	ds := sub.drain()
	require.Len(t, ds, 2)
	require.NoError(t, sub.Received(ds[1].PacketID)) // PUBREL sent, PUBCOMP lost
	require.NoError(t, sub.Disconnect(DisconnectOptions{SendWill: true}))
	_, ok := sub.Next()
	assert.False(t, ok, "a closed connection has no deliveries")

	pub.publish(t, "s/3", "qos0 while away", 0, false)
	pub.publish(t, "s/4", "queued", 1, false)
	assert.EqualValues(t, 1, b.Stats().MessagesDropped, "QoS 0 for an absent client is dropped and counted")

	sub2, present := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: SessionExpiryNever})
	assert.True(t, present)
	assert.True(t, sub2.c.notified(), "pending deliveries are announced")
	ds2 := sub2.drain()
	require.Len(t, ds2, 3)
	assert.Equal(t, "unacked", string(ds2[0].Payload))
	assert.True(t, ds2[0].DUP)
	assert.Equal(t, ds[0].PacketID, ds2[0].PacketID, "same packet id")
	assert.True(t, ds2[1].Release, "PUBREL repeated, not the PUBLISH")
	assert.Equal(t, ds[1].PacketID, ds2[1].PacketID)
	assert.Equal(t, "queued", string(ds2[2].Payload))
	assert.False(t, ds2[2].DUP)
	require.NoError(t, sub2.Ack(ds2[0].PacketID))
	require.NoError(t, sub2.Complete(ds2[1].PacketID))
	require.NoError(t, sub2.Ack(ds2[2].PacketID))

	// Subscriptions survived: live traffic still arrives.
	pub.publish(t, "s/5", "live", 0, false)
	assert.Equal(t, []string{"live"}, payloads(sub2.drain()))
}

func TestCleanStartDiscardsSession(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 300})
	sub.subscribe(t, Subscription{Filter: "x", QoS: 1})
	require.NoError(t, sub.Disconnect(DisconnectOptions{}))
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "x", "queued", 1, false)
	sub2, present := connect(t, b, ConnectOptions{ClientID: "sub", CleanStart: true, SessionExpiry: 300})
	assert.False(t, present)
	assert.Empty(t, sub2.drain(), "queue discarded")
	pub.publish(t, "x", "after", 1, false)
	assert.Empty(t, sub2.drain(), "subscriptions discarded")
	assert.EqualValues(t, 0, b.Stats().Subscriptions)
}

func TestTakeover(t *testing.T) {
	b := startBroker(t, nil)
	watch, _ := connect(t, b, ConnectOptions{ClientID: "watch"})
	watch.subscribe(t, Subscription{Filter: "will/#"})
	old, _ := connect(t, b, ConnectOptions{
		ClientID: "dev", SessionExpiry: 60,
		Will: &Will{Message: Message{Topic: "will/dev", Payload: []byte("gone")}},
	})
	old.subscribe(t, Subscription{Filter: "cmd", QoS: 1})

	nu, present := connect(t, b, ConnectOptions{ClientID: "dev", SessionExpiry: 60})
	assert.True(t, present, "the session is resumed by the new connection")
	select {
	case r := <-old.c.disc:
		assert.Equal(t, ReasonSessionTakenOver, r)
	default:
		t.Fatal("the old connection was not told it was taken over")
	}
	assert.ErrorIs(t, old.Publish(Message{Topic: "x"}), ErrSessionClosed)
	assert.ErrorIs(t, old.Disconnect(DisconnectOptions{}), ErrSessionClosed)
	assert.Equal(t, []string{"gone"}, payloads(watch.drain()), "the old connection's will (no delay) fires")
	assert.EqualValues(t, 2, b.Stats().ClientsConnected)

	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "cmd", "to new", 1, false)
	assert.Equal(t, []string{"to new"}, payloads(nu.drain()))
	_, ok := old.Next()
	assert.False(t, ok)
}

func TestWill(t *testing.T) {
	b := startBroker(t, nil)
	watch, _ := connect(t, b, ConnectOptions{ClientID: "watch"})
	watch.subscribe(t, Subscription{Filter: "status/+", QoS: 1, RetainAsPublished: true})
	will := &Will{Message: Message{Topic: "status/dev", Payload: []byte("offline"), QoS: 1, Retain: true}}

	dev, _ := connect(t, b, ConnectOptions{ClientID: "dev", Will: will})
	require.NoError(t, dev.Disconnect(DisconnectOptions{}))
	assert.Empty(t, watch.drain(), "normal disconnect suppresses the will")

	dev, _ = connect(t, b, ConnectOptions{ClientID: "dev", Will: will})
	require.NoError(t, dev.Disconnect(DisconnectOptions{SendWill: true}))
	ds := watch.drain()
	require.Len(t, ds, 1, "abnormal end publishes the will")
	assert.Equal(t, "offline", string(ds[0].Payload))
	assert.True(t, ds[0].Retain)
	assert.EqualValues(t, 1, b.Stats().RetainedMessages, "a retained will is retained")

	_, _, err := b.Connect(ConnectOptions{ClientID: "bad", Consumer: newConsumer(), Will: &Will{Message: Message{Topic: "a/#"}}})
	assert.ErrorIs(t, err, ErrInvalidTopic)
}

func TestQueueBound(t *testing.T) {
	b := startBroker(t, &Options{MaxQueued: 3})
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub"})
	sub.subscribe(t, Subscription{Filter: "q", QoS: 1})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	// The subscriber sleeps: nothing is pulled.
	pub.publish(t, "q", "a0", 0, false)
	pub.publish(t, "q", "b1", 1, false)
	pub.publish(t, "q", "c0", 0, false)
	pub.publish(t, "q", "d1", 1, false) // full: drops a0
	pub.publish(t, "q", "e0", 0, false) // full: new QoS 0 dropped
	pub.publish(t, "q", "f1", 1, false) // full: drops c0
	pub.publish(t, "q", "g1", 1, false) // full, no QoS 0 left: dropped
	assert.EqualValues(t, 4, b.Stats().MessagesDropped)
	assert.Equal(t, []string{"b1", "d1", "f1"}, payloads(sub.drain()))
}

func TestQueueBoundPerConnectionDropOldest(t *testing.T) {
	b := startBroker(t, &Options{MaxQueued: 100})
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", MaxQueued: 3, DropOldest: true})
	sub.subscribe(t, Subscription{Filter: "q", QoS: 2})
	other, _ := connect(t, b, ConnectOptions{ClientID: "other"})
	other.subscribe(t, Subscription{Filter: "q", QoS: 2})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	for i, qos := range []byte{1, 0, 2, 1, 0} {
		pub.publish(t, "q", string(rune('a'+i)), qos, false)
	}
	// The connection's own bound applies, and the oldest goes whatever its
	// QoS; the other subscriber keeps the broker-wide bound.
	assert.EqualValues(t, 2, b.Stats().MessagesDropped)
	assert.Equal(t, []string{"c", "d", "e"}, payloads(sub.drain()))
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, payloads(other.drain()))
}

type refuser struct{}

func (refuser) AllowConnect(c ClientInfo, password []byte) bool { return string(password) == "secret" }
func (refuser) AllowPublish(c ClientInfo, topic string) bool    { return topic != "forbidden" }
func (refuser) AllowSubscribe(c ClientInfo, filter string) bool {
	return c.Username == "admin" || filter != "#"
}
func (refuser) AllowRead(c ClientInfo, topic string) bool {
	return c.Username == "admin" || topic != "secret"
}

func TestAuthorizer(t *testing.T) {
	b := startBroker(t, &Options{Authorizer: refuser{}})
	_, _, err := b.Connect(ConnectOptions{ClientID: "x", Password: []byte("wrong"), Consumer: newConsumer()})
	assert.ErrorIs(t, err, ErrNotAuthorized)
	assert.Equal(t, ReasonNotAuthorized, ReasonFor(err))

	c, _ := connect(t, b, ConnectOptions{ClientID: "c", Username: "user", Password: []byte("secret")})
	codes, err := c.Subscribe(Subscription{Filter: "#"}, Subscription{Filter: "forbidden", QoS: 1})
	require.NoError(t, err)
	assert.Equal(t, []ReasonCode{ReasonNotAuthorized, ReasonGrantedQoS1}, codes)

	err = c.Publish(Message{Topic: "forbidden", Payload: []byte("x"), QoS: 1})
	assert.ErrorIs(t, err, ErrNotAuthorized)
	assert.ErrorIs(t, c.PublishQoS2(1, Message{Topic: "forbidden", QoS: 2}), ErrNotAuthorized)
	assert.ErrorIs(t, c.Release(1), ErrPacketIDNotFound, "a refused QoS 2 publish keeps no id")
	assert.Empty(t, c.drain(), "refused publishes are dropped")
	assert.EqualValues(t, 4, b.Stats().Refused)

	admin, _ := connect(t, b, ConnectOptions{ClientID: "admin", Username: "admin", Password: []byte("secret")})
	admin.subscribe(t, Subscription{Filter: "#"})
}

func TestAssignedClientID(t *testing.T) {
	b := startBroker(t, nil)
	a, present := connect(t, b, ConnectOptions{})
	assert.False(t, present)
	c, _ := connect(t, b, ConnectOptions{})
	assert.NotEmpty(t, a.ClientID())
	assert.NotEqual(t, a.ClientID(), c.ClientID())
	_, _, err := b.Connect(ConnectOptions{ClientID: "a\x00", Consumer: newConsumer()})
	assert.ErrorIs(t, err, ErrInvalidClientID)
}

func TestSessionExpiryCap(t *testing.T) {
	b := startBroker(t, &Options{MaxSessionExpiry: 100})
	c, _ := connect(t, b, ConnectOptions{ClientID: "c", SessionExpiry: SessionExpiryNever})
	assert.EqualValues(t, 100, c.SessionExpiry())
}

// A broker restarted on the same store finds its persistent sessions,
// their subscriptions and queued messages, and the retained messages.
func TestStoreRestore(t *testing.T) {
	store := NewMemoryStore()
	b1, err := New(&Options{Store: store})
	require.NoError(t, err)
	require.NoError(t, b1.Start(context.Background()))
	sub, _ := connect(t, b1, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	sub.subscribe(t, Subscription{Filter: "d/#", QoS: 1, ID: 9})
	require.NoError(t, sub.Disconnect(DisconnectOptions{}))
	pub, _ := connect(t, b1, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "d/1", "queued", 1, false)
	pub.publish(t, "d/keep", "retained", 0, true)
	pub.publish(t, "d/2", "acked later", 1, false)
	tmp, _ := connect(t, b1, ConnectOptions{ClientID: "tmp"}) // expiry 0: never stored
	tmp.subscribe(t, Subscription{Filter: "#"})
	require.NoError(t, b1.Close(context.Background()))

	b2 := startBroker(t, &Options{Store: store})
	assert.EqualValues(t, 1, b2.Stats().Sessions, "only the persistent session is stored")
	assert.EqualValues(t, 1, b2.Stats().Subscriptions)
	sub2, present := connect(t, b2, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	assert.True(t, present)
	ds := sub2.drain()
	require.Equal(t, []string{"queued", "acked later"}, payloads(ds))
	assert.Equal(t, []uint32{9}, ds[0].SubscriptionIDs)
	require.NoError(t, sub2.Ack(ds[0].PacketID))
	pub2, _ := connect(t, b2, ConnectOptions{ClientID: "pub"})
	pub2.publish(t, "d/3", "live", 1, false)
	assert.Equal(t, []string{"live"}, payloads(sub2.drain()), "subscription restored")

	late, _ := connect(t, b2, ConnectOptions{ClientID: "late"})
	late.subscribe(t, Subscription{Filter: "d/keep"})
	assert.Equal(t, []string{"retained"}, payloads(late.drain()))

	// The store follows acknowledgements: only the unacknowledged messages remain.
	var queued []string
	require.NoError(t, store.Load(func(st StoredSession) error {
		for _, m := range st.Queued {
			queued = append(queued, string(m.Message.Payload))
		}
		return nil
	}, func(StoredMessage) error { return nil }))
	assert.Equal(t, []string{"acked later", "live"}, queued)
}

// reentrant pulls and acknowledges from inside Notify, which is only safe
// because the engine holds no lock while calling it.
type reentrant struct {
	s    *Session
	got  []string
	kick chan ReasonCode
}

func (r *reentrant) Notify() {
	if r.s == nil {
		return // called before Connect returned; the test drains afterwards
	}
	for {
		d, ok := r.s.Next()
		if !ok {
			return
		}
		r.got = append(r.got, string(d.Payload))
		if d.QoS == 1 {
			_ = r.s.Ack(d.PacketID)
		}
	}
}

func (r *reentrant) Disconnected(reason ReasonCode) { r.kick <- reason }

func TestCallbacksHoldNoLocks(t *testing.T) {
	b := startBroker(t, nil)
	r := &reentrant{kick: make(chan ReasonCode, 1)}
	s, _, err := b.Connect(ConnectOptions{ClientID: "r", SessionExpiry: 60, ReceiveMaximum: 1, Consumer: r})
	require.NoError(t, err)
	r.s = s
	_, err = s.Subscribe(Subscription{Filter: "x", QoS: 1})
	require.NoError(t, err)
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	for _, p := range []string{"1", "2", "3"} {
		pub.publish(t, "x", p, 1, false)
	}
	assert.Equal(t, []string{"1", "2", "3"}, r.got)
	_, _ = connect(t, b, ConnectOptions{ClientID: "r"})
	assert.Equal(t, ReasonSessionTakenOver, <-r.kick)
}

// linkReader lets only clients of the link "udp" read anything.
type linkReader struct{ AllowAll }

func (linkReader) AllowRead(c ClientInfo, _ string) bool { return c.Link == "udp" }

// A session restored from the store, and not yet resumed, is judged by
// the rights of its latest connection: the store keeps its link and
// identity for that.
func TestReadRightsOfRestoredSession(t *testing.T) {
	store := NewMemoryStore()
	b1 := startBroker(t, &Options{Store: store, Authorizer: linkReader{}})
	sub, _ := connect(t, b1, ConnectOptions{ClientID: "sensor", Link: "udp", Identity: "psk-1", SessionExpiry: 3600})
	sub.subscribe(t, Subscription{Filter: "cmd", QoS: 1})
	require.NoError(t, sub.Disconnect(DisconnectOptions{}))
	require.NoError(t, b1.Close(context.Background()))

	b2 := startBroker(t, &Options{Store: store, Authorizer: linkReader{}})
	pub, _ := connect(t, b2, ConnectOptions{ClientID: "pub", Link: "tcp"})
	pub.publish(t, "cmd", "on", 1, false)
	sub2, present := connect(t, b2, ConnectOptions{ClientID: "sensor", Link: "udp", Identity: "psk-1", SessionExpiry: 3600})
	require.True(t, present)
	assert.Equal(t, []string{"on"}, payloads(sub2.drain()))
	assert.Zero(t, b2.Stats().Refused)
}

// The per-delivery check of a restrictive Authorizer holds back what a
// subscriber may not read, live or retained, and lets the rest through.
func TestAllowReadAtDelivery(t *testing.T) {
	b := startBroker(t, &Options{Authorizer: refuser{}})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub", Password: []byte("secret")})
	pub.publish(t, "secret", "r", 0, true)
	user, _ := connect(t, b, ConnectOptions{ClientID: "u", Username: "user", Password: []byte("secret")})
	user.subscribe(t, Subscription{Filter: "+", QoS: 1})
	admin, _ := connect(t, b, ConnectOptions{ClientID: "a", Username: "admin", Password: []byte("secret")})
	admin.subscribe(t, Subscription{Filter: "+", QoS: 1})
	pub.publish(t, "secret", "s", 1, false)
	pub.publish(t, "open", "o", 1, false)
	assert.Equal(t, []string{"o"}, payloads(user.drain()))
	assert.Equal(t, []string{"r", "s", "o"}, payloads(admin.drain()))
	assert.EqualValues(t, 2, b.Stats().Refused, "the retained and the live message held back from user")
}

// A client id is no credential: only the user (and identity, where the
// session's connection proved one) that owns a session resumes it; anyone
// else starts afresh and never sees what was queued for the owner.
func TestResumeNeedsOwner(t *testing.T) {
	for _, tc := range []struct {
		name            string
		owner, resuming ConnectOptions
		present         bool
	}{
		{"same user", ConnectOptions{Username: "alice"}, ConnectOptions{Username: "alice"}, true},
		{"other user", ConnectOptions{Username: "alice"}, ConnectOptions{Username: "mallory"}, false},
		{"anonymous", ConnectOptions{Username: "alice"}, ConnectOptions{}, false},
		{"same identity", ConnectOptions{Identity: "psk-1"}, ConnectOptions{Identity: "psk-1"}, true},
		{"other identity", ConnectOptions{Identity: "psk-1"}, ConnectOptions{Identity: "psk-2"}, false},
		{"identity dropped", ConnectOptions{Identity: "psk-1"}, ConnectOptions{}, false},
		{"identity added", ConnectOptions{}, ConnectOptions{Identity: "psk-1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemoryStore()
			b := startBroker(t, &Options{Store: store})
			owner := tc.owner
			owner.ClientID, owner.SessionExpiry = "dash", 3600
			sub, _ := connect(t, b, owner)
			sub.subscribe(t, Subscription{Filter: "private/#", QoS: 1})
			require.NoError(t, sub.Disconnect(DisconnectOptions{}))
			pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
			pub.publish(t, "private/x", "for the owner", 1, false)

			resuming := tc.resuming
			resuming.ClientID, resuming.SessionExpiry = "dash", 3600
			again, present := connect(t, b, resuming)
			assert.Equal(t, tc.present, present)
			pub.publish(t, "private/y", "later", 1, false)
			if tc.present {
				assert.Equal(t, []string{"for the owner", "later"}, payloads(again.drain()))
				return
			}
			assert.Empty(t, again.drain(), "neither the queue nor the subscriptions are handed over")
			// Nor does the store keep them: a restarted broker restores the
			// new owner's session empty.
			again.subscribe(t, Subscription{Filter: "mine", QoS: 1})
			require.NoError(t, again.Disconnect(DisconnectOptions{}))
			require.NoError(t, b.Close(context.Background()))
			b2 := startBroker(t, &Options{Store: store})
			restored, present := connect(t, b2, resuming)
			require.True(t, present)
			assert.Empty(t, restored.drain())
		})
	}
}

// Taking over a live connection by another user ends the owner's
// connection, as any takeover does, but hands nothing over.
func TestTakeoverByOtherUser(t *testing.T) {
	b := startBroker(t, nil)
	owner, _ := connect(t, b, ConnectOptions{ClientID: "dash", Username: "alice", SessionExpiry: 3600})
	owner.subscribe(t, Subscription{Filter: "private/#", QoS: 1})
	other, present := connect(t, b, ConnectOptions{ClientID: "dash", Username: "mallory", SessionExpiry: 3600})
	assert.False(t, present)
	assert.Equal(t, ReasonSessionTakenOver, <-owner.c.disc)
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "private/x", "for alice", 1, false)
	assert.Empty(t, other.drain())
}

// linkDenier keeps cmd/ from clients of the link "tcp".
type linkDenier struct{ AllowAll }

func (linkDenier) AllowRead(c ClientInfo, topic string) bool {
	return c.Link != "tcp" || !strings.HasPrefix(topic, "cmd/")
}

// What was queued for a connection through one link is judged again when
// the session is resumed through another, whose rights may be narrower.
func TestResumeThroughOtherLinkRejudges(t *testing.T) {
	b := startBroker(t, &Options{Authorizer: linkDenier{}})
	sensor, _ := connect(t, b, ConnectOptions{ClientID: "kitchen", Link: "udp", SessionExpiry: 3600, ReceiveMaximum: 1})
	sensor.subscribe(t, Subscription{Filter: "#", QoS: 1})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub", Link: "udp"})
	pub.publish(t, "cmd/a", "in flight", 1, false)
	ds := sensor.drain()
	require.Equal(t, []string{"in flight"}, payloads(ds), "the window of one holds the rest back")
	pub.publish(t, "cmd/b", "queued", 1, false)
	pub.publish(t, "news", "queued too", 1, false)
	require.NoError(t, sensor.Disconnect(DisconnectOptions{}))

	viaTCP, present := connect(t, b, ConnectOptions{ClientID: "kitchen", Link: "tcp", SessionExpiry: 3600})
	require.True(t, present, "same user and identity: the session is resumed")
	assert.Equal(t, []string{"queued too"}, payloads(viaTCP.drain()))
	assert.EqualValues(t, 2, b.Stats().Refused)
}

// The client id of an Internal session is refused to other connections,
// and the Internal connection carries on; an Internal connection takes
// its id over from anyone.
func TestInternalClientIDReserved(t *testing.T) {
	b := startBroker(t, nil)
	svc, _ := connect(t, b, ConnectOptions{ClientID: "svc", Internal: true})
	svc.subscribe(t, Subscription{Filter: "svc/in"})
	for _, clean := range []bool{false, true} {
		_, _, err := b.Connect(ConnectOptions{ClientID: "svc", CleanStart: clean, Consumer: newConsumer()})
		require.ErrorIs(t, err, ErrInvalidClientID)
		assert.Equal(t, ReasonClientIDNotValid, ReasonFor(err))
	}
	select {
	case r := <-svc.c.disc:
		t.Fatalf("the internal session was ended: %v", r)
	default:
	}
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "svc/in", "still here", 0, false)
	assert.Equal(t, []string{"still here"}, payloads(svc.drain()))

	squatter, _ := connect(t, b, ConnectOptions{ClientID: "svc2"})
	_, _ = connect(t, b, ConnectOptions{ClientID: "svc2", Internal: true})
	assert.Equal(t, ReasonSessionTakenOver, <-squatter.c.disc)
}
