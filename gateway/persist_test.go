package gateway

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// memSessionStore is a SessionStore in memory, shared by the gateways of
// one test as a disk is shared by a gateway and its successor.
type memSessionStore struct {
	mu   sync.Mutex
	recs map[string][]byte
}

func newMemSessionStore() *memSessionStore {
	return &memSessionStore{recs: make(map[string][]byte)}
}

func (m *memSessionStore) SaveSession(id string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[id] = data
	return nil
}

func (m *memSessionStore) DeleteSession(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, id)
	return nil
}

func (m *memSessionStore) LoadSessions(fn func(string, []byte) error) error {
	m.mu.Lock()
	recs := maps.Clone(m.recs)
	m.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(recs)) {
		if err := fn(id, recs[id]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSessionStore) record(t *testing.T, id string) *sessionRecord {
	t.Helper()
	m.mu.Lock()
	data, ok := m.recs[id]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	r, err := decodeRecord(data)
	require.NoError(t, err)
	return r
}

// newDurableHarness runs a gateway with a SessionStore and a broker with a
// store, both kept across h.restart.
func newDurableHarness(t *testing.T, opts *Options) (*harness, *memSessionStore) {
	t.Helper()
	st := newMemSessionStore()
	if opts == nil {
		opts = &Options{}
	}
	opts.Store = st
	return newHarnessWith(t, &mqttcore.Options{Store: mqttcore.NewMemoryStore()}, opts), st
}

// TestRestartSleepingClientWakesToItsMessages: a sensor asleep when the
// gateway restarts wakes with PINGREQ(ClientId) — no CONNECT — and gets
// what was buffered for it before and after the restart, on the topic id
// it was given before.
func TestRestartSleepingClientWakesToItsMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, st := newDurableHarness(t, nil)
		c := h.client("node-1")
		c.connect("node-1", 60, true) // clean, and still restored
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		c.send(&mqttsn.Disconnect{Duration: 600, HasDuration: true})
		c.expect(&mqttsn.Disconnect{})
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("before"), QoS: 1}))
		synctest.Wait()
		assert.Equal(t, recAsleep, st.record(t, "node-1").State)

		h.restart()
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("after"), QoS: 1}))
		c.quiet()
		time.Sleep(300 * time.Second)

		// client --PINGREQ(node-1)--> GW --PUBLISH--> client ... --PINGRESP--> client
		c.send(&mqttsn.PingReq{ClientID: "node-1"})
		for _, want := range []string{"before", "after"} {
			p := c.next().(*mqttsn.Publish)
			assert.Equal(t, want, string(p.Data))
			assert.Equal(t, id, p.TopicID)
			c.send(&mqttsn.PubAck{TopicID: id, MsgID: p.MsgID, ReturnCode: mqttsn.Accepted})
		}
		c.expect(&mqttsn.PingResp{})
		c.quiet()
		assert.Equal(t, int64(1), h.gw.Stats().Sessions)
	})
}

// TestRestartActiveClientKeepsPublishing: an active sensor goes on
// publishing on its registered topic id across a restart, and its
// keep-alive runs from the restart.
func TestRestartActiveClientKeepsPublishing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newDurableHarness(t, nil)
		c := h.client("node-1")
		c.connectWithWill("node-1", 60, &mqttsn.WillTopic{Topic: "wills/node-1"}, "gone")
		id := c.register("data/temp", 1)
		time.Sleep(50 * time.Second) // most of a keep-alive used up

		h.restart()
		obs := h.observe("data/#", 1)
		wills := h.observe("wills/#", 0)
		time.Sleep(59 * time.Second) // a whole keep-alive from the restart
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: id, MsgID: 2, Data: []byte("21.5")})
		c.expect(&mqttsn.PubAck{TopicID: id, MsgID: 2, ReturnCode: mqttsn.Accepted})
		d := obs.next()
		assert.Equal(t, "data/temp", d.Topic)
		assert.Equal(t, []byte("21.5"), d.Payload)

		// Silence for 1.5 × the keep-alive: lost, with the Will it had
		// before the restart.
		time.Sleep(91 * time.Second)
		assert.Equal(t, []byte("gone"), wills.next().Payload)
		assert.Equal(t, uint64(1), h.gw.Stats().Lost)
	})
}

// TestRestartQoS2FromSensorExactlyOnce: a QoS 2 PUBLISH acknowledged with
// PUBREC before the restart and released after it is published once,
// even when the sensor repeats the PUBLISH after the restart.
func TestRestartQoS2FromSensorExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newDurableHarness(t, nil)
		obs := h.observe("t", 2)
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		id := c.register("t", 1)
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: id, MsgID: 7, Data: []byte("once")})
		c.expect(&mqttsn.PubRec{MsgID: 7})
		assert.Equal(t, []byte("once"), obs.next().Payload)

		h.restart()
		obs = h.observe("t", 2)
		// The PUBREL was lost: the sensor repeats the PUBLISH, then releases.
		c.send(&mqttsn.Publish{DUP: true, QoS: mqttsn.QoS2, TopicID: id, MsgID: 7, Data: []byte("once")})
		c.expect(&mqttsn.PubRec{MsgID: 7})
		c.send(&mqttsn.PubRel{MsgID: 7})
		c.expect(&mqttsn.PubComp{MsgID: 7})
		obs.none()
	})
}

// TestRestartRepeatsInFlightDeliveryWithDUP: a QoS 1 message in flight to
// a sensor when the gateway stops is repeated after the restart with DUP
// and the same MsgId, so the sensor can tell it is a repeat.
func TestRestartRepeatsInFlightDeliveryWithDUP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newDurableHarness(t, nil)
		c := h.client("node-1")
		c.connect("node-1", 600, false)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("open"), QoS: 1}))
		first := c.next().(*mqttsn.Publish)
		require.False(t, first.DUP)

		h.restart()
		again := c.next().(*mqttsn.Publish)
		assert.Equal(t, mqttsn.Publish{DUP: true, QoS: mqttsn.QoS1, TopicID: id, MsgID: first.MsgID, Data: []byte("open")}, *again)
		c.send(&mqttsn.PubAck{TopicID: id, MsgID: again.MsgID, ReturnCode: mqttsn.Accepted})
		c.quiet()
	})
}

// TestRestoredSessionOfAGoneLinkIsDropped: a session stored for a link
// that is no longer served is dropped, record and broker session both, if
// it was a CleanSession=1 session; a CleanSession=0 one is kept
// disconnected for its next CONNECT, as after a DISCONNECT.
func TestRestoredSessionOfAGoneLinkIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, st := newDurableHarness(t, nil)
		clean, kept := h.client("node-1"), h.client("node-2")
		clean.connect("node-1", 600, true)
		kept.connect("node-2", 600, false)
		kept.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
		id := kept.next().(*mqttsn.SubAck).TopicID
		synctest.Wait() // the shards have saved what the SUBSCRIBE changed
		for _, c := range []string{"node-1", "node-2"} {
			rec := st.record(t, c)
			rec.Link = "serial /dev/ttyGONE"
			require.NoError(t, st.SaveSession(c, rec.encode()))
		}

		h.restart()
		synctest.Wait() // the shards have taken the restored sessions
		assert.Equal(t, int64(1), h.gw.Stats().Sessions)
		assert.Nil(t, st.record(t, "node-1"))
		assert.Equal(t, recDisconnected, st.record(t, "node-2").State)
		clean.send(&mqttsn.PingReq{})
		clean.expect(&mqttsn.Disconnect{})
		_, present, err := h.broker.Connect(mqttcore.ConnectOptions{ClientID: "node-1", Consumer: discardConsumer{}})
		require.NoError(t, err)
		assert.False(t, present, "the dropped session's broker session is ended too")

		// The kept one resumes with its subscription and topic id.
		kept.connect("node-2", 600, false)
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("x"), QoS: 1}))
		reg := kept.next().(*mqttsn.Register)
		assert.Equal(t, mqttsn.Register{TopicID: id, MsgID: reg.MsgID, TopicName: "cmd"}, *reg)
	})
}

// TestEndedSessionLeavesNothingStored: a clean client's DISCONNECT ends its
// session in both stores; a persistent one stays, disconnected.
func TestEndedSessionLeavesNothingStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, st := newDurableHarness(t, nil)
		clean, kept := h.client("node-1"), h.client("node-2")
		clean.connect("node-1", 600, true)
		kept.connect("node-2", 600, false)
		for _, c := range []*client{clean, kept} {
			c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: "cmd"})
			c.next()
			c.send(&mqttsn.Disconnect{})
			c.expect(&mqttsn.Disconnect{})
		}
		synctest.Wait()
		assert.Nil(t, st.record(t, "node-1"))
		assert.Equal(t, recDisconnected, st.record(t, "node-2").State)

		h.restart()
		assert.Equal(t, int64(1), h.gw.Stats().Sessions)
		// The clean client's broker session is gone: a new connection to
		// it finds nothing.
		_, present, err := h.broker.Connect(mqttcore.ConnectOptions{ClientID: "node-1", Consumer: discardConsumer{}})
		require.NoError(t, err)
		assert.False(t, present)
		// The persistent one resumes its subscription.
		kept.connect("node-2", 600, false)
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("x"), QoS: 1}))
		reg := kept.next().(*mqttsn.Register)
		assert.Equal(t, "cmd", reg.TopicName)
	})
}

// heldStore is a DurableStore whose commits happen when the test says.
type heldStore struct {
	*mqttcore.MemoryStore
	mu   sync.Mutex
	held []func()
}

func (s *heldStore) AfterCommit(fn func()) {
	s.mu.Lock()
	s.held = append(s.held, fn)
	s.mu.Unlock()
}

// commit runs the callbacks registered so far, as a group commit would.
func (s *heldStore) commit() int {
	s.mu.Lock()
	fns := s.held
	s.held = nil
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return len(fns)
}

// TestAckWaitsForCommit: with a durable broker store, PUBACK, PUBREC and
// PUBCOMP reach the sensor only once the store has committed what they
// acknowledge, in order.
func TestAckWaitsForCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &heldStore{MemoryStore: mqttcore.NewMemoryStore()}
		h := newHarnessWith(t, &mqttcore.Options{Store: store}, &Options{Store: newMemSessionStore()})
		require.True(t, h.broker.Durable())
		obs := h.observe("t", 2)
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		id := c.register("t", 1)

		c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: id, MsgID: 2, Data: []byte("a")})
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: id, MsgID: 3, Data: []byte("b")})
		c.quiet() // nothing acknowledged before the commit
		assert.Equal(t, []byte("a"), obs.next().Payload)
		require.Equal(t, 2, store.commit())
		c.expect(&mqttsn.PubAck{TopicID: id, MsgID: 2, ReturnCode: mqttsn.Accepted})
		c.expect(&mqttsn.PubRec{MsgID: 3})

		c.send(&mqttsn.PubRel{MsgID: 3})
		c.quiet()
		require.Equal(t, 1, store.commit())
		c.expect(&mqttsn.PubComp{MsgID: 3})
		assert.Equal(t, []byte("b"), obs.next().Payload)
	})
}

// TestResolveUDPAddress: a stored UDP address is keyed as the read loop
// keys a datagram from it, IPv4-mapped or not.
func TestResolveUDPAddress(t *testing.T) {
	l := &link{Link: Link{Name: "udp"}, udp: newInjectConn()}
	key, addr, err := l.resolve("[::ffff:192.0.2.7]:5000", []byte{1, 2})
	require.NoError(t, err)
	assert.Equal(t, addrKey{link: l, ap: netip.MustParseAddrPort("192.0.2.7:5000"), node: "\x01\x02"}, key)
	assert.Equal(t, "192.0.2.7:5000", addr.String())
	_, _, err = l.resolve("not an address", nil)
	assert.Error(t, err)
	_, _, err = (&link{Link: Link{Name: "serial"}}).resolve("/dev/ttyUSB0", nil)
	assert.Error(t, err, "a link that cannot parse addresses cannot bind its sessions")
}

// TestRestartResumesOutboundQoS2AtPubRel: a QoS 2 delivery whose PUBREC
// arrived before the restart is not sent again after it: only its PUBREL
// is repeated, so the sensor sees the message once.
func TestRestartResumesOutboundQoS2AtPubRel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newDurableHarness(t, nil)
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS2, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("once"), QoS: 2}))
		p := c.next().(*mqttsn.Publish)
		require.Equal(t, id, p.TopicID)
		c.send(&mqttsn.PubRec{MsgID: p.MsgID})
		c.expect(&mqttsn.PubRel{MsgID: p.MsgID})

		h.restart()
		c.expect(&mqttsn.PubRel{MsgID: p.MsgID})
		c.send(&mqttsn.PubComp{MsgID: p.MsgID})
		c.quiet()
	})
}

// TestRestoreBeforeServeIsRefused: restoring with no link served would
// drop every session for want of its link; it is an error instead, and the
// store is left alone.
func TestRestoreBeforeServeIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newMemSessionStore()
		require.NoError(t, st.SaveSession("node-1", (&sessionRecord{Version: recordVersion, ClientID: "node-1", Link: "mem", Addr: "node-1", State: recAsleep, Sleep: 60}).encode()))
		b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
		require.NoError(t, err)
		require.NoError(t, b.Start(t.Context()))
		defer b.Close(context.Background())
		g, err := New(b, &Options{Store: st, Shards: 1})
		require.NoError(t, err)
		defer g.Close(context.Background())
		require.ErrorIs(t, g.Restore(), ErrInvalidOptions)
		assert.NotNil(t, st.record(t, "node-1"))
	})
}

// TestQoS2DeliveryWaitsForCommit: with a durable store, a QoS 2 PUBLISH to
// a sensor goes out only once its MsgId (the broker's packet id) is
// committed, and its PUBREL only once the PUBREC is: a restart in between
// would otherwise send the message again under a new MsgId, or its PUBLISH
// after its PUBREL.
func TestQoS2DeliveryWaitsForCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &heldStore{MemoryStore: mqttcore.NewMemoryStore()}
		h := newHarnessWith(t, &mqttcore.Options{Store: store}, &Options{Store: newMemSessionStore()})
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		c.send(&mqttsn.Subscribe{QoS: mqttsn.QoS2, MsgID: 1, TopicName: "cmd"})
		id := c.next().(*mqttsn.SubAck).TopicID
		require.NoError(t, h.publisher("app").Publish(mqttcore.Message{Topic: "cmd", Payload: []byte("once"), QoS: 2}))
		c.quiet() // not before the commit
		require.Equal(t, 1, store.commit())
		p := c.next().(*mqttsn.Publish)
		assert.Equal(t, id, p.TopicID)
		assert.Equal(t, []byte("once"), p.Data)

		c.send(&mqttsn.PubRec{MsgID: p.MsgID})
		c.quiet()
		require.Equal(t, 1, store.commit())
		c.expect(&mqttsn.PubRel{MsgID: p.MsgID})
		c.send(&mqttsn.PubComp{MsgID: p.MsgID})
		c.quiet()
	})
}

// TestUnreadableRecordStopsRestore: a record the gateway cannot read (a
// damaged one, or one a newer version wrote) stops the restore with an
// error naming its client, and nothing is dropped: the record and the
// messages the broker keeps for the sensor wait for a snwgw that can read
// them.
func TestUnreadableRecordStopsRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, st := newDurableHarness(t, nil)
		c := h.client("node-1")
		c.connect("node-1", 600, false)
		h.stop()
		require.NoError(t, st.SaveSession("garbage", []byte("{")))

		b, err := mqttcore.New(&h.bopts)
		require.NoError(t, err)
		require.NoError(t, b.Start(context.Background()))
		defer b.Close(context.Background())
		opts := h.opts
		g, err := New(b, &opts)
		require.NoError(t, err)
		defer g.Close(context.Background())
		require.NoError(t, g.Serve(h.memLink()))
		err = g.Restore()
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"garbage"`)
		assert.Contains(t, err.Error(), "nothing was changed")
		assert.NotNil(t, st.record(t, "node-1"))
		st.mu.Lock()
		assert.Equal(t, []byte("{"), st.recs["garbage"])
		st.mu.Unlock()
	})
}
