package mqttcore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// gateStore is a DurableStore whose commits happen when the test says: its
// AfterCommit callbacks wait until release.
type gateStore struct {
	*mqttcore.MemoryStore
	mu      sync.Mutex
	waiting []func()
	added   chan struct{} // one token per AfterCommit
}

func newGateStore() *gateStore {
	return &gateStore{MemoryStore: mqttcore.NewMemoryStore(), added: make(chan struct{}, 1024)}
}

func (g *gateStore) AfterCommit(fn func()) {
	g.mu.Lock()
	g.waiting = append(g.waiting, fn)
	g.mu.Unlock()
	g.added <- struct{}{}
}

// waitAdded waits for the next AfterCommit; ioTimeout is a deadlock
// guard, not a timing claim.
func (g *gateStore) waitAdded(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.added:
	case <-time.After(ioTimeout):
		t.Fatalf("%s did not wait for a commit", what)
	}
}

// release runs every waiting callback: the commit has happened.
func (g *gateStore) release() {
	g.mu.Lock()
	fns := g.waiting
	g.waiting = nil
	g.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// With a durable store a publisher's PUBACK and PUBREC, the PUBCOMP after
// its PUBREL, a subscriber's QoS 2 PUBLISH and the PUBREL after its PUBREC
// all wait for the commit of what they stand for; other replies do not.
func TestDurableStoreHoldsAcknowledgements(t *testing.T) {
	g := newGateStore()
	srv := serveBroker(t, &mqttcore.Options{Store: g}, mqttcore.ListenerOptions{})
	sub, _ := connectRaw(t, srv.addr, packet.V311, &packet.ConnectPacket{ClientID: "sub"})
	sub.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t", QoS: 2}}})
	sub.expect(packet.Suback)
	pub, _ := connectRaw(t, srv.addr, packet.V311, &packet.ConnectPacket{ClientID: "pub"})

	// Publisher: PUBACK waits for the commit; PINGRESP does not.
	pub.send(&packet.PublishPacket{Topic: "t", QoS: 1, PacketID: 7, Payload: []byte("one")})
	g.waitAdded(t, "PUBACK")
	pub.send(&packet.PingreqPacket{})
	pub.expect(packet.Pingresp)
	// The subscriber's QoS 1 delivery needs no commit first.
	assert.Equal(t, "one", string(sub.expect(packet.Publish).(*packet.PublishPacket).Payload))
	g.release()
	assert.EqualValues(t, 7, pub.expect(packet.Puback).(*packet.AckPacket).PacketID)

	// A QoS 2 publication: PUBREC waits, then the subscriber's PUBLISH
	// waits for its packet id to be committed.
	pub.send(&packet.PublishPacket{Topic: "t", QoS: 2, PacketID: 8, Payload: []byte("two")})
	g.waitAdded(t, "PUBREC")
	g.waitAdded(t, "the subscriber's QoS 2 PUBLISH")
	sub.send(&packet.PingreqPacket{})
	sub.expect(packet.Pingresp)
	pub.send(&packet.PingreqPacket{})
	pub.expect(packet.Pingresp)
	g.release()
	assert.EqualValues(t, 8, pub.expect(packet.Pubrec).(*packet.AckPacket).PacketID)
	p := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "two", string(p.Payload))

	// The subscriber's PUBREC: PUBREL waits for the released state.
	sub.send(&packet.AckPacket{PacketType: packet.Pubrec, PacketID: p.PacketID})
	g.waitAdded(t, "PUBREL")
	sub.send(&packet.PingreqPacket{})
	sub.expect(packet.Pingresp)
	// The publisher's PUBREL: PUBCOMP waits for the release of its id.
	pub.send(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: 8})
	g.waitAdded(t, "PUBCOMP")
	pub.send(&packet.PingreqPacket{})
	pub.expect(packet.Pingresp)
	g.release()
	assert.EqualValues(t, p.PacketID, sub.expect(packet.Pubrel).(*packet.AckPacket).PacketID)
	assert.EqualValues(t, 8, pub.expect(packet.Pubcomp).(*packet.AckPacket).PacketID)
	require.Empty(t, g.added, "nothing else waited for a commit")
}
