package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/snwgw/snwgw/mqttcore"
	bolt "go.etcd.io/bbolt"
)

// Broker returns the broker core's view of the store. With SyncAlways it is
// a mqttcore.DurableStore, so the broker holds acknowledgements until their
// changes are committed.
func (d *DB) Broker() mqttcore.Store {
	if d.opts.Sync == SyncAlways {
		return durableBrokerStore{brokerStore{d}}
	}
	return brokerStore{d}
}

type brokerStore struct{ d *DB }

type durableBrokerStore struct{ brokerStore }

// Atomically implements mqttcore.AtomicStore.
func (s brokerStore) Atomically(fn func()) { s.d.atomically(fn) }

// AfterCommit implements mqttcore.DurableStore.
func (s durableBrokerStore) AfterCommit(fn func()) { s.d.afterCommit(fn) }

func (s brokerStore) SaveSession(rec mqttcore.SessionRecord) error {
	return s.d.change(func(b *batch) { b.saveSession(rec) })
}

func (s brokerStore) DeleteSession(clientID string) error {
	return s.d.change(func(b *batch) { b.deleteSession(clientID) })
}

func (s brokerStore) SaveQueued(clientID string, m mqttcore.QueuedMessage) error {
	return s.d.change(func(b *batch) { b.saveQueued(clientID, &m) })
}

func (s brokerStore) SaveInflight(clientID string, seq uint64, packetID uint16, released bool) error {
	return s.d.change(func(b *batch) { b.saveInflight(clientID, seq, packetID, released) })
}

func (s brokerStore) DeleteQueued(clientID string, seq uint64) error {
	return s.d.change(func(b *batch) { b.deleteQueued(clientID, seq) })
}

func (s brokerStore) SaveInbound(clientID string, packetID uint16) error {
	return s.d.change(func(b *batch) { b.inbound(clientID, packetID, true) })
}

func (s brokerStore) DeleteInbound(clientID string, packetID uint16) error {
	return s.d.change(func(b *batch) { b.inbound(clientID, packetID, false) })
}

func (s brokerStore) SaveRetained(m mqttcore.StoredMessage) error {
	return s.d.change(func(b *batch) { b.retained[m.Topic] = &m; b.n++ })
}

func (s brokerStore) DeleteRetained(topic string) error {
	return s.d.change(func(b *batch) { b.retained[topic] = nil; b.n++ })
}

// Load implements mqttcore.Store. It reads in one transaction; a value that
// cannot be decoded is an error naming the file, the client and the key.
func (s brokerStore) Load(session func(mqttcore.StoredSession) error, retained func(mqttcore.StoredMessage) error) error {
	var sessions []mqttcore.StoredSession
	var msgs []mqttcore.StoredMessage
	err := s.d.view(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketClients).ForEachBucket(func(k []byte) error {
			st, err := loadSession(tx.Bucket(bucketClients).Bucket(k))
			if err != nil {
				return fmt.Errorf("session %q: %w", k, err)
			}
			if st.Record.ClientID != "" {
				sessions = append(sessions, st)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRetained).ForEach(func(k, v []byte) error {
			m, err := decodeMessage(v)
			if err != nil {
				return fmt.Errorf("retained message %q: %w", k, err)
			}
			msgs = append(msgs, m)
			return nil
		})
	})
	if err != nil {
		return err
	}
	// The callbacks run outside the transaction: they may write.
	for _, st := range sessions {
		if err := session(st); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if err := retained(m); err != nil {
			return err
		}
	}
	return nil
}

// loadSession reads one client's bucket. Keys are sorted, so the queued
// messages come in sequence order. A bucket without a record (the session
// was deleted while a late change for it was in the same batch) is skipped.
func loadSession(cb *bolt.Bucket) (mqttcore.StoredSession, error) {
	var st mqttcore.StoredSession
	rec := cb.Get(keyRecord)
	if rec == nil {
		return st, nil
	}
	if err := json.Unmarshal(rec, &st.Record); err != nil {
		return st, fmt.Errorf("%w: record: %v", errCorrupt, err)
	}
	inflight := map[uint64][]byte{}
	c := cb.Cursor()
	for k, v := c.Seek([]byte{'f'}); k != nil && k[0] == 'f'; k, v = c.Next() {
		if len(k) != 9 || len(v) != 3 || v[2] > 1 {
			return st, fmt.Errorf("%w: in-flight state %x", errCorrupt, k)
		}
		inflight[binary.BigEndian.Uint64(k[1:])] = bytes.Clone(v)
	}
	for k, _ := c.Seek([]byte{'i'}); k != nil && k[0] == 'i'; k, _ = c.Next() {
		if len(k) != 3 {
			return st, fmt.Errorf("%w: inbound id %x", errCorrupt, k)
		}
		st.Inbound = append(st.Inbound, binary.BigEndian.Uint16(k[1:]))
	}
	for k, v := c.Seek([]byte{'q'}); k != nil && k[0] == 'q'; k, v = c.Next() {
		if len(k) != 9 {
			return st, fmt.Errorf("%w: queued key %x", errCorrupt, k)
		}
		seq := binary.BigEndian.Uint64(k[1:])
		q, err := decodeQueued(seq, v)
		if err != nil {
			return st, fmt.Errorf("queued message %d: %w", seq, err)
		}
		if f, ok := inflight[seq]; ok {
			q.PacketID, q.Released = binary.BigEndian.Uint16(f), f[2] == 1
		}
		st.Queued = append(st.Queued, q)
	}
	return st, nil
}

// Gateway returns the gateway's view of the store: opaque session records
// by client id.
func (d *DB) Gateway() *GatewayStore { return &GatewayStore{d} }

// GatewayStore keeps the gateway's MQTT-SN session records.
type GatewayStore struct{ d *DB }

// SaveSession creates or replaces the record of clientID. The store keeps
// data: the caller must not modify it afterwards.
func (s *GatewayStore) SaveSession(clientID string, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	return s.d.change(func(b *batch) { b.gateway[clientID] = data; b.n++ })
}

// DeleteSession removes the record of clientID.
func (s *GatewayStore) DeleteSession(clientID string) error {
	return s.d.change(func(b *batch) { b.gateway[clientID] = nil; b.n++ })
}

// LoadSessions calls fn with every stored record, outside the read
// transaction, so fn may write.
func (s *GatewayStore) LoadSessions(fn func(clientID string, data []byte) error) error {
	type rec struct {
		id   string
		data []byte
	}
	var recs []rec
	err := s.d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGateway).ForEach(func(k, v []byte) error {
			recs = append(recs, rec{string(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := fn(r.id, r.data); err != nil {
			return err
		}
	}
	return nil
}
