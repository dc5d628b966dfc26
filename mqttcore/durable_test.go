package mqttcore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restart closes b and starts a new broker on the same store, as a process
// restart would.
func restart(t *testing.T, b *Broker, store Store) *Broker {
	t.Helper()
	require.NoError(t, b.Close(context.Background()))
	return startBroker(t, &Options{Store: store})
}

// A message in flight when the broker stops is repeated after the restart
// with DUP and the same packet id, so a subscriber that had it already can
// tell; one whose PUBREC had arrived gets only its PUBREL. Either way the
// subscriber sees each QoS 2 message once.
func TestStoreRestoresInflight(t *testing.T) {
	store := NewMemoryStore()
	b := startBroker(t, &Options{Store: store})
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	sub.subscribe(t, Subscription{Filter: "d/#", QoS: 2})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	pub.publish(t, "d/1", "one", 1, false)
	pub.publish(t, "d/2", "two", 2, false)
	pub.publish(t, "d/3", "three", 2, false)
	pub.publish(t, "d/4", "four", 1, false)
	ds := sub.drain()
	require.Equal(t, []string{"one", "two", "three", "four"}, payloads(ds))
	require.NoError(t, sub.Received(ds[1].PacketID)) // "two": PUBREC arrived, PUBREL due
	require.NoError(t, sub.Ack(ds[3].PacketID))      // "four": done

	b = restart(t, b, store)
	sub2, present := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	require.True(t, present)
	again := sub2.drain()
	require.Len(t, again, 3)
	assert.Equal(t, Delivery{PacketID: ds[1].PacketID, Release: true}, again[1], "only PUBREL for the received one")
	for _, i := range []int{0, 2} {
		d := again[i]
		assert.True(t, d.DUP)
		assert.Equal(t, ds[i].PacketID, d.PacketID, "same packet id after the restart")
	}
	assert.Equal(t, "one", string(again[0].Payload))
	assert.Equal(t, "three", string(again[2].Payload))
	require.NoError(t, sub2.Ack(again[0].PacketID))
	require.NoError(t, sub2.Complete(again[1].PacketID))
	require.NoError(t, sub2.Received(again[2].PacketID))
	require.NoError(t, sub2.Complete(again[2].PacketID))

	b = restart(t, b, store)
	sub3, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	assert.Empty(t, sub3.drain(), "everything acknowledged stays acknowledged")
}

// An inbound QoS 2 id published before a restart and not yet released is
// still known after it: the publisher's retransmission is acknowledged but
// not published again (exactly once), and its PUBREL completes.
func TestStoreRestoresInboundQoS2(t *testing.T) {
	store := NewMemoryStore()
	b := startBroker(t, &Options{Store: store})
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	sub.subscribe(t, Subscription{Filter: "q2", QoS: 2})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub", SessionExpiry: 3600})
	require.NoError(t, pub.PublishQoS2(7, Message{Topic: "q2", Payload: []byte("once"), QoS: 2}))

	b = restart(t, b, store)
	sub2, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
	pub2, present := connect(t, b, ConnectOptions{ClientID: "pub", SessionExpiry: 3600})
	require.True(t, present)
	require.NoError(t, pub2.PublishQoS2(7, Message{Topic: "q2", Payload: []byte("once"), QoS: 2}), "the DUP copy")
	require.NoError(t, pub2.Release(7))
	assert.Equal(t, []string{"once"}, payloads(sub2.drain()))

	b = restart(t, b, store)
	pub3, _ := connect(t, b, ConnectOptions{ClientID: "pub", SessionExpiry: 3600})
	assert.ErrorIs(t, pub3.Release(7), ErrPacketIDNotFound, "the release is stored too")
}

// SetQueue replaces the queue bound and policy of a connected session.
func TestSetQueue(t *testing.T) {
	b := startBroker(t, nil)
	sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 60, MaxQueued: 2, DropOldest: true, ReceiveMaximum: 1})
	sub.subscribe(t, Subscription{Filter: "t", QoS: 1})
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
	for _, p := range []string{"1", "2", "3"} {
		pub.publish(t, "t", p, 1, false)
	}
	sub.SetQueue(0, false) // the broker's default bound: nothing more is dropped
	for _, p := range []string{"4", "5", "6"} {
		pub.publish(t, "t", p, 1, false)
	}
	var got []string
	for {
		ds := sub.drain()
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			got = append(got, string(d.Payload))
			require.NoError(t, sub.Ack(d.PacketID))
		}
	}
	assert.Equal(t, []string{"2", "3", "4", "5", "6"}, got, "only the drop-oldest bound of 2 lost a message")
}

// groupStore records which changes were made inside Atomically.
type groupStore struct {
	*MemoryStore
	in      bool
	grouped []string // "inbound", "queued" made inside a group
	alone   []string // the same, made outside
}

func (g *groupStore) Atomically(fn func()) { g.in = true; fn(); g.in = false }

func (g *groupStore) note(what string) {
	if g.in {
		g.grouped = append(g.grouped, what)
	} else {
		g.alone = append(g.alone, what)
	}
}

func (g *groupStore) SaveInbound(id string, p uint16) error {
	g.note("inbound")
	return g.MemoryStore.SaveInbound(id, p)
}

func (g *groupStore) SaveQueued(id string, q QueuedMessage) error {
	g.note("queued")
	return g.MemoryStore.SaveQueued(id, q)
}

// A QoS 2 id and the copies of its message reach the store in one group:
// stored apart, a crash between them would turn the publisher's repeat into
// a duplicate to ignore (the message lost) or a new message (delivered
// twice).
func TestQoS2IDAndCopiesStoredTogether(t *testing.T) {
	g := &groupStore{MemoryStore: NewMemoryStore()}
	b := startBroker(t, &Options{Store: g})
	for _, id := range []string{"a", "b"} {
		sub, _ := connect(t, b, ConnectOptions{ClientID: id, SessionExpiry: 60})
		sub.subscribe(t, Subscription{Filter: "t", QoS: 2})
	}
	pub, _ := connect(t, b, ConnectOptions{ClientID: "pub", SessionExpiry: 60})
	require.NoError(t, pub.PublishQoS2(1, Message{Topic: "t", Payload: []byte("x"), QoS: 2}))
	assert.Equal(t, []string{"inbound", "queued", "queued"}, g.grouped)
	assert.Empty(t, g.alone)
}
