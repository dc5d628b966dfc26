package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/snwgw/snwgw/mqttcore"
)

// consumer is an in-process connection's Consumer; the tests drain by hand.
type consumer struct{}

func (consumer) Notify()                          {}
func (consumer) Disconnected(mqttcore.ReasonCode) {}

func open(t *testing.T, dir string, opts Options) *DB {
	t.Helper()
	d, err := Open(dir, opts)
	require.NoError(t, err)
	return d
}

func startBroker(t *testing.T, d *DB) *mqttcore.Broker {
	t.Helper()
	b, err := mqttcore.New(&mqttcore.Options{Store: d.Broker(), SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	return b
}

func connect(t *testing.T, b *mqttcore.Broker, id string) (*mqttcore.Session, bool) {
	t.Helper()
	s, present, err := b.Connect(mqttcore.ConnectOptions{ClientID: id, SessionExpiry: 3600, Consumer: consumer{}})
	require.NoError(t, err)
	return s, present
}

func drain(s *mqttcore.Session) []mqttcore.Delivery {
	var ds []mqttcore.Delivery
	for {
		d, ok := s.Next()
		if !ok {
			return ds
		}
		ds = append(ds, d)
	}
}

// waitCommitted returns once everything changed so far is on disk.
func waitCommitted(d *DB) {
	done := make(chan struct{})
	d.afterCommit(func() { close(done) })
	<-done
}

// Everything the broker stores comes back from the file after the process
// is gone: sessions with their subscriptions, queued messages, in-flight
// messages under their packet ids (PUBREL only for one whose PUBREC came),
// unreleased inbound QoS 2 ids and retained messages.
func TestRestartFromFile(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval} {
		t.Run(map[SyncMode]string{SyncAlways: "always", SyncInterval: "interval"}[mode], func(t *testing.T) {
			dir := t.TempDir()
			d := open(t, dir, Options{Sync: mode, SyncInterval: time.Hour})
			b := startBroker(t, d)
			sub, _ := connect(t, b, "sub")
			_, err := sub.Subscribe(mqttcore.Subscription{Filter: "d/#", QoS: 2, ID: 5})
			require.NoError(t, err)
			pub, _ := connect(t, b, "pub")
			require.NoError(t, pub.Publish(mqttcore.Message{Topic: "d/1", Payload: []byte("one"), QoS: 1}))
			require.NoError(t, pub.PublishQoS2(9, mqttcore.Message{Topic: "d/2", Payload: []byte("two"), QoS: 2}))
			require.NoError(t, pub.Publish(mqttcore.Message{Topic: "d/3", Payload: []byte("three"), QoS: 1}))
			require.NoError(t, pub.Publish(mqttcore.Message{Topic: "state", Payload: []byte("kept"), Retain: true,
				Properties: mqttcore.MessageProperties{ContentType: "text/plain", User: []mqttcore.UserProperty{{Key: "k", Value: "v"}}}}))
			ds := drain(sub)
			require.Len(t, ds, 3)
			require.NoError(t, sub.Received(ds[1].PacketID))
			require.NoError(t, b.Close(context.Background()))
			require.NoError(t, d.Close())

			d = open(t, dir, Options{Sync: mode, SyncInterval: time.Hour})
			defer d.Close()
			b = startBroker(t, d)
			defer b.Close(context.Background())
			sub, present := connect(t, b, "sub")
			require.True(t, present)
			again := drain(sub)
			require.Len(t, again, 3)
			assert.Equal(t, "one", string(again[0].Payload))
			assert.True(t, again[0].DUP)
			assert.Equal(t, ds[0].PacketID, again[0].PacketID)
			assert.Equal(t, []uint32{5}, again[0].SubscriptionIDs)
			assert.Equal(t, mqttcore.Delivery{PacketID: ds[1].PacketID, Release: true}, again[1])
			assert.Equal(t, "three", string(again[2].Payload))

			pub, _ = connect(t, b, "pub")
			require.NoError(t, pub.PublishQoS2(9, mqttcore.Message{Topic: "d/2", Payload: []byte("two"), QoS: 2}))
			assert.Empty(t, drain(sub), "the repeated QoS 2 PUBLISH is not published again")
			require.NoError(t, pub.Release(9))

			late, _ := connect(t, b, "late")
			_, err = late.Subscribe(mqttcore.Subscription{Filter: "state"})
			require.NoError(t, err)
			r := drain(late)
			require.Len(t, r, 1)
			assert.Equal(t, "kept", string(r[0].Payload))
			assert.Equal(t, "text/plain", r[0].Properties.ContentType)
			assert.Equal(t, []mqttcore.UserProperty{{Key: "k", Value: "v"}}, r[0].Properties.User)
		})
	}
}

// With SyncAlways a commit callback runs only once the changes before it
// are in the file, and callbacks run in the order they were registered.
func TestAfterCommitOrder(t *testing.T) {
	d := open(t, t.TempDir(), Options{})
	defer d.Close()
	s := d.Broker()
	ds, ok := s.(mqttcore.DurableStore)
	require.True(t, ok, "SyncAlways gives a DurableStore")
	var mu sync.Mutex
	var order []int
	var seen []bool
	var wg sync.WaitGroup
	for i := range 50 {
		topic := "t/" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		require.NoError(t, s.SaveRetained(mqttcore.StoredMessage{Message: mqttcore.Message{Topic: topic, Payload: []byte{byte(i)}}}))
		wg.Add(1)
		ds.AfterCommit(func() {
			defer wg.Done()
			var found bool
			_ = d.db.View(func(tx *bolt.Tx) error {
				found = tx.Bucket(bucketRetained).Get([]byte(topic)) != nil
				return nil
			})
			mu.Lock()
			order = append(order, i)
			seen = append(seen, found)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range order {
		assert.Equal(t, i, order[i])
		assert.True(t, seen[i], "change %d committed before its callback", i)
	}
	interval := open(t, t.TempDir(), Options{Sync: SyncInterval})
	defer interval.Close()
	_, isDurable := interval.Broker().(mqttcore.DurableStore)
	assert.False(t, isDurable, "SyncInterval acknowledges at once")
}

// A message queued and acknowledged before its batch is committed never
// reaches the disk; one committed and then acknowledged is deleted.
func TestCoalescing(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Hour})
	s := d.Broker()
	require.NoError(t, s.SaveSession(mqttcore.SessionRecord{ClientID: "c", Expiry: 60}))
	q := func(seq uint64) mqttcore.QueuedMessage {
		return mqttcore.QueuedMessage{Seq: seq, QoS: 1, Message: mqttcore.StoredMessage{Message: mqttcore.Message{Topic: "t", Payload: []byte("x"), QoS: 1}}}
	}
	require.NoError(t, s.SaveQueued("c", q(1)))
	require.NoError(t, s.SaveQueued("c", q(2)))
	require.NoError(t, s.SaveInflight("c", 1, 10, false))
	require.NoError(t, s.DeleteQueued("c", 1))
	d.flush()
	st := d.Stats()
	// Five changes asked for; the record and message 2 written, message 1's
	// save, send and delete never.
	assert.EqualValues(t, 2, st.Changes, "written")
	assert.EqualValues(t, 3, st.Coalesced, "the save, send and delete of message 1 cancelled out")
	require.NoError(t, s.SaveInflight("c", 2, 11, false))
	require.NoError(t, s.DeleteQueued("c", 2))
	require.NoError(t, d.Close())

	d = open(t, dir, Options{})
	defer d.Close()
	var got []mqttcore.StoredSession
	require.NoError(t, d.Broker().Load(func(st mqttcore.StoredSession) error { got = append(got, st); return nil },
		func(mqttcore.StoredMessage) error { return nil }))
	require.Len(t, got, 1)
	assert.Empty(t, got[0].Queued)
	require.NoError(t, d.db.View(func(tx *bolt.Tx) error {
		n := 0
		_ = tx.Bucket(bucketClients).Bucket([]byte("c")).ForEach(func(k, v []byte) error { n++; return nil })
		assert.Equal(t, 1, n, "only the session record is left")
		return nil
	}))
}

// A session deleted in the same batch as its last changes leaves nothing.
func TestDeleteSessionDropsPending(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Hour})
	s := d.Broker()
	require.NoError(t, s.SaveSession(mqttcore.SessionRecord{ClientID: "c", Expiry: 60}))
	d.flush()
	require.NoError(t, s.SaveQueued("c", mqttcore.QueuedMessage{Seq: 1, QoS: 1}))
	require.NoError(t, s.SaveInbound("c", 3))
	require.NoError(t, s.DeleteSession("c"))
	require.NoError(t, s.SaveQueued("c", mqttcore.QueuedMessage{Seq: 2, QoS: 1})) // late: belongs to nothing
	require.NoError(t, d.Close())
	d = open(t, dir, Options{})
	defer d.Close()
	n := 0
	require.NoError(t, d.Broker().Load(func(mqttcore.StoredSession) error { n++; return nil }, func(mqttcore.StoredMessage) error { return nil }))
	assert.Zero(t, n)
}

func TestGatewayRecords(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	g := d.Gateway()
	require.NoError(t, g.SaveSession("a", []byte("one")))
	require.NoError(t, g.SaveSession("b", []byte("two")))
	require.NoError(t, g.SaveSession("a", []byte("three")))
	require.NoError(t, g.DeleteSession("b"))
	require.NoError(t, g.SaveSession("c", nil))
	require.NoError(t, d.Close())
	d = open(t, dir, Options{})
	defer d.Close()
	got := map[string]string{}
	require.NoError(t, d.Gateway().LoadSessions(func(id string, data []byte) error { got[id] = string(data); return nil }))
	assert.Equal(t, map[string]string{"a": "three", "c": ""}, got)
}

// A file that is not ours, is damaged, comes from another version or is in
// use is refused with an error that names it and says what to do; it is
// never reset.
func TestOpenRefuses(t *testing.T) {
	write := func(t *testing.T, data []byte) string {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), data, 0o600))
		return dir
	}
	t.Run("garbage", func(t *testing.T) {
		dir := write(t, []byte(strings.Repeat("not a database ", 1000)))
		_, err := Open(dir, Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), filepath.Join(dir, FileName))
		assert.Contains(t, err.Error(), "move it aside")
		data, _ := os.ReadFile(filepath.Join(dir, FileName))
		assert.Equal(t, strings.Repeat("not a database ", 1000), string(data), "left as it was")
	})
	t.Run("foreign bbolt", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("theirs")); return err }))
		require.NoError(t, db.Close())
		_, err = Open(dir, Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "another program")
	})
	t.Run("other version", func(t *testing.T) {
		dir := t.TempDir()
		d := open(t, dir, Options{})
		require.NoError(t, d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("snwgw-store 99")) }))
		require.NoError(t, d.Close())
		_, err := Open(dir, Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "another version")
	})
	t.Run("damaged value", func(t *testing.T) {
		dir := t.TempDir()
		d := open(t, dir, Options{})
		require.NoError(t, d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRetained).Put([]byte("t"), []byte{1, 9}) }))
		require.NoError(t, d.Close())
		d = open(t, dir, Options{})
		defer d.Close()
		b, err := mqttcore.New(&mqttcore.Options{Store: d.Broker(), SysInterval: -1})
		require.NoError(t, err)
		err = b.Start(context.Background())
		require.Error(t, err)
		assert.Contains(t, err.Error(), filepath.Join(dir, FileName))
		assert.Contains(t, err.Error(), `retained message "t"`)
	})
	t.Run("in use", func(t *testing.T) {
		dir := t.TempDir()
		d := open(t, dir, Options{})
		defer d.Close()
		_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "another snwgw")
	})
}

// A file grown by a burst and then emptied is rewritten at the next open,
// so its size follows the data, not the peak.
func TestCompactAtOpen(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	s := d.Broker()
	require.NoError(t, s.SaveSession(mqttcore.SessionRecord{ClientID: "c", Expiry: 60}))
	payload := make([]byte, 4096)
	for seq := range uint64(4000) {
		require.NoError(t, s.SaveQueued("c", mqttcore.QueuedMessage{Seq: seq + 1, QoS: 1,
			Message: mqttcore.StoredMessage{Message: mqttcore.Message{Topic: "t", Payload: payload, QoS: 1}}}))
		if seq%500 == 499 {
			waitCommitted(d)
		}
	}
	waitCommitted(d)
	for seq := range uint64(4000) {
		require.NoError(t, s.DeleteQueued("c", seq+1))
	}
	require.NoError(t, d.Close())
	before, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Greater(t, before.Size(), int64(compactMinSize))

	d = open(t, dir, Options{})
	defer d.Close()
	after, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.Less(t, after.Size(), before.Size()/4, "compacted")
	var sessions int
	require.NoError(t, d.Broker().Load(func(mqttcore.StoredSession) error { sessions++; return nil }, func(mqttcore.StoredMessage) error { return nil }))
	assert.Equal(t, 1, sessions, "the data survives compaction")
}

// Under steady traffic — messages queued, committed, then acknowledged —
// the file stays near the size of what is waiting, not of what has passed:
// bbolt reuses the pages that acknowledged messages free.
func TestSteadyTrafficBoundedFile(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	defer d.Close()
	s := d.Broker()
	require.NoError(t, s.SaveSession(mqttcore.SessionRecord{ClientID: "c", Expiry: 60}))
	payload := make([]byte, 1024)
	seq := uint64(0)
	for range 300 {
		first := seq + 1
		for range 100 {
			seq++
			require.NoError(t, s.SaveQueued("c", mqttcore.QueuedMessage{Seq: seq, QoS: 1,
				Message: mqttcore.StoredMessage{Message: mqttcore.Message{Topic: "t", Payload: payload, QoS: 1}}}))
		}
		waitCommitted(d)
		for q := first; q <= seq; q++ {
			require.NoError(t, s.DeleteQueued("c", q))
		}
		waitCommitted(d)
	}
	info, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	t.Logf("file size %d bytes, %d commits", info.Size(), d.Stats().Commits)
	// 30 MB passed through; at most 100 KB waited at a time.
	assert.Less(t, info.Size(), int64(4<<20), "file size after 30,000 messages")
	assert.EqualValues(t, info.Size(), d.Stats().FileSize)
}
