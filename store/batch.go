package store

import (
	"encoding/binary"
	"encoding/json"

	"github.com/snwgw/snwgw/mqttcore"
	bolt "go.etcd.io/bbolt"
)

// batch is the changes waiting for the next commit, coalesced by key: only
// the last change of a key is written, and a message queued and forgotten
// within the batch is not written at all.
type batch struct {
	clients  map[string]*clientChanges
	retained map[string]*mqttcore.StoredMessage // nil: delete
	gateway  map[string][]byte                  // nil: delete
	waiters  []func()
	n        int // changes asked for
	written  int // puts and deletes apply made
}

// clientChanges are the pending changes of one broker session.
type clientChanges struct {
	drop    bool                     // delete what is stored for the client first
	rec     *mqttcore.SessionRecord  // the new record, nil: unchanged
	queued  map[uint64]*queuedChange // by sequence number
	inbound map[uint16]bool          // true: save, false: delete
}

type queuedChange struct {
	msg      *mqttcore.QueuedMessage // to write, nil: not changed
	fresh    bool                    // msg was first saved in this batch: nothing on disk yet
	inflight bool                    // write the in-flight state below
	packetID uint16
	released bool
	del      bool
}

func newBatch() *batch {
	return &batch{clients: map[string]*clientChanges{}, retained: map[string]*mqttcore.StoredMessage{}, gateway: map[string][]byte{}}
}

func (b *batch) client(id string) *clientChanges {
	c := b.clients[id]
	if c == nil {
		c = &clientChanges{}
		b.clients[id] = c
	}
	return c
}

// gone reports that the session was deleted in this batch and not created
// again: later changes for it belong to nothing.
func (c *clientChanges) gone() bool { return c.drop && c.rec == nil }

func (c *clientChanges) queuedChange(seq uint64) *queuedChange {
	if c.queued == nil {
		c.queued = map[uint64]*queuedChange{}
	}
	q := c.queued[seq]
	if q == nil {
		q = &queuedChange{}
		c.queued[seq] = q
	}
	return q
}

func (b *batch) saveSession(rec mqttcore.SessionRecord) {
	c := b.client(rec.ClientID)
	rec.Subscriptions = append([]mqttcore.Subscription(nil), rec.Subscriptions...)
	c.rec = &rec
	b.n++
}

func (b *batch) deleteSession(id string) {
	c := b.client(id)
	*c = clientChanges{drop: true}
	b.n++
}

func (b *batch) saveQueued(id string, m *mqttcore.QueuedMessage) {
	c := b.client(id)
	if c.gone() {
		return
	}
	q := c.queuedChange(m.Seq)
	q.msg, q.fresh = m, true
	b.n++
}

func (b *batch) saveInflight(id string, seq uint64, packetID uint16, released bool) {
	c := b.client(id)
	if c.gone() {
		return
	}
	q := c.queuedChange(seq)
	if q.del {
		return
	}
	q.inflight, q.packetID, q.released = true, packetID, released
	b.n++
}

func (b *batch) deleteQueued(id string, seq uint64) {
	c := b.client(id)
	if c.gone() {
		return
	}
	q := c.queuedChange(seq)
	if q.fresh {
		// Queued and done with before it reached the disk.
		delete(c.queued, seq)
		b.n++
		return
	}
	*q = queuedChange{del: true}
	b.n++
}

func (b *batch) inbound(id string, packetID uint16, keep bool) {
	c := b.client(id)
	if c.gone() {
		return
	}
	if c.inbound == nil {
		c.inbound = map[uint16]bool{}
	}
	c.inbound[packetID] = keep
	b.n++
}

// Keys inside a client's bucket.
func queuedKey(prefix byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, seq)
}

func inboundKey(id uint16) []byte { return binary.BigEndian.AppendUint16([]byte{'i'}, id) }

// apply writes the batch in one transaction.
func (b *batch) apply(tx *bolt.Tx) error {
	b.written = 0
	put := func(bk *bolt.Bucket, k, v []byte) error { b.written++; return bk.Put(k, v) }
	del := func(bk *bolt.Bucket, k []byte) error { b.written++; return bk.Delete(k) }
	clients := tx.Bucket(bucketClients)
	for id, c := range b.clients {
		key := []byte(id)
		if c.drop && clients.Bucket(key) != nil {
			if err := clients.DeleteBucket(key); err != nil {
				return err
			}
		}
		cb := clients.Bucket(key)
		if c.rec != nil {
			var err error
			if cb, err = clients.CreateBucketIfNotExists(key); err != nil {
				return err
			}
			rec, err := json.Marshal(c.rec)
			if err != nil {
				return err
			}
			if err := put(cb, keyRecord, rec); err != nil {
				return err
			}
		}
		if cb == nil {
			continue // the session has ended: its late changes belong to nothing
		}
		// Queue keys only grow at the end (and go from the front): full
		// pages instead of bbolt's half-full splits write a third fewer
		// pages per commit.
		cb.FillPercent = 0.9
		for seq, q := range c.queued {
			if q.del {
				if err := del(cb, queuedKey('q', seq)); err != nil {
					return err
				}
				if err := del(cb, queuedKey('f', seq)); err != nil {
					return err
				}
				continue
			}
			if q.msg != nil {
				// bbolt keeps keys and values until the commit: no buffer reuse.
				if err := put(cb, queuedKey('q', seq), appendQueued(nil, q.msg)); err != nil {
					return err
				}
			}
			if q.inflight {
				v := binary.BigEndian.AppendUint16(nil, q.packetID)
				if q.released {
					v = append(v, 1)
				} else {
					v = append(v, 0)
				}
				if err := put(cb, queuedKey('f', seq), v); err != nil {
					return err
				}
			}
		}
		for pid, keep := range c.inbound {
			var err error
			if keep {
				err = put(cb, inboundKey(pid), nil)
			} else {
				err = del(cb, inboundKey(pid))
			}
			if err != nil {
				return err
			}
		}
	}
	retained := tx.Bucket(bucketRetained)
	for topic, m := range b.retained {
		var err error
		if m == nil {
			err = del(retained, []byte(topic))
		} else {
			err = put(retained, []byte(topic), appendMessage(nil, m))
		}
		if err != nil {
			return err
		}
	}
	gw := tx.Bucket(bucketGateway)
	for id, data := range b.gateway {
		var err error
		if data == nil {
			err = del(gw, []byte(id))
		} else {
			err = put(gw, []byte(id), data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
