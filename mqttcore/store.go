package mqttcore

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"
)

// Store keeps the state that outlives a connection: persistent sessions with
// their subscriptions, the messages queued for them with the state of those
// in flight, the QoS 2 packet identifiers they published and have not yet
// released, and retained messages.
//
// The engine keeps its working set in memory and writes every change of that
// state through to the Store as it happens; Broker.Start loads it back. A
// durable implementation therefore only has to record and replay — it never
// sits on the delivery path's reads. Sessions with a session expiry of 0 end
// with their connection and are never stored.
//
// What is not stored: wills (they belong to a connection) and the time a
// session has already spent waiting (its expiry interval starts again at
// Start). In-flight messages keep their packet identifiers, so after a
// restart a QoS 1 or 2 message is repeated with DUP under the same id, and
// one whose PUBREC had arrived gets only its PUBREL: a subscriber sees it
// exactly once.
//
// Methods may be called concurrently, with engine locks held: they must not
// block for long and must not call back into the Broker. An error is logged
// and counted (Stats.StoreErrors); the in-memory state stays authoritative
// until the next restart.
type Store interface {
	// SaveSession creates or replaces the record of a persistent session.
	SaveSession(rec SessionRecord) error
	// DeleteSession removes a session and everything stored for it.
	DeleteSession(clientID string) error
	// SaveQueued records a QoS 1 or 2 message queued for a session, keyed by
	// its sequence number within the session. It is called once per
	// message, when it is queued.
	SaveQueued(clientID string, m QueuedMessage) error
	// SaveInflight records that queued message seq was sent with packetID,
	// or, with released, that its PUBREC arrived and only PUBREL remains.
	SaveInflight(clientID string, seq uint64, packetID uint16, released bool) error
	// DeleteQueued forgets a queued message once it is acknowledged,
	// expired or dropped.
	DeleteQueued(clientID string, seq uint64) error
	// SaveInbound records an inbound QoS 2 packet id that was published and
	// not yet released; DeleteInbound forgets it at PUBREL.
	SaveInbound(clientID string, packetID uint16) error
	DeleteInbound(clientID string, packetID uint16) error
	// SaveRetained creates or replaces the retained message of m.Topic.
	SaveRetained(m StoredMessage) error
	// DeleteRetained removes the retained message of topic.
	DeleteRetained(topic string) error
	// Load replays the stored state: every session with its queued messages
	// in sequence order, then every retained message.
	Load(session func(StoredSession) error, retained func(StoredMessage) error) error
}

// DurableStore is a Store whose writes reach the disk after the call
// returns, in group commits. The engine holds back an acknowledgement
// (PUBACK, PUBREC, PUBCOMP) until AfterCommit reports that every change made
// before it was registered is committed, so nothing acknowledged is lost to
// a crash.
type DurableStore interface {
	Store
	// AfterCommit calls fn, from the store's own goroutine and in the order
	// of registration, once every change made so far is committed (or has
	// failed, which the store reports itself). fn must not block.
	AfterCommit(fn func())
}

// AtomicStore is a Store whose changes can be grouped: every change made
// by fn reaches the disk in the same commit. The engine uses it where a
// change alone would be wrong after a crash (a QoS 2 id without the copies
// of its message). fn must not call Atomically again.
type AtomicStore interface {
	Store
	Atomically(fn func())
}

// SessionRecord is the stored form of a persistent session.
type SessionRecord struct {
	ClientID string
	Username string
	// Identity and Link are those of the session's latest connection: only
	// a connection with the same user name and identity resumes the
	// session, and until one does, messages for it are judged by the
	// read rights they give.
	Identity      string
	Link          string
	Expiry        uint32 // session expiry interval in seconds
	Subscriptions []Subscription
}

// StoredSession is a session as Load replays it.
type StoredSession struct {
	Record SessionRecord
	// Queued holds the session's messages in sequence order; those with a
	// PacketID were in flight.
	Queued []QueuedMessage
	// Inbound holds the QoS 2 packet ids published and not yet released.
	Inbound []uint16
}

// StoredMessage is a message at rest: Message.Properties.MessageExpiry is
// nil and Expires holds the absolute end of its lifetime (zero: none).
type StoredMessage struct {
	Message
	Expires time.Time
}

// QueuedMessage is a message waiting for (or in flight to) one session.
type QueuedMessage struct {
	Seq             uint64
	Message         StoredMessage
	QoS             byte // the granted QoS of this delivery
	Retain          bool // the RETAIN flag as it is to be delivered
	SubscriptionIDs []uint32
	// PacketID is the id the message was sent with, 0 if it was not sent;
	// Released reports that its PUBREC arrived. Load fills them in from
	// SaveInflight.
	PacketID uint16
	Released bool
}

// MemoryStore is a Store held in memory. It survives a Broker restart
// within one process (New, Close, New again with the same store) but not
// the process; it is the default.
type MemoryStore struct {
	mu       sync.Mutex
	sessions map[string]*memSession
	retained map[string]StoredMessage
}

type memSession struct {
	rec     SessionRecord
	queued  map[uint64]QueuedMessage
	inbound map[uint16]struct{}
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{sessions: make(map[string]*memSession), retained: make(map[string]StoredMessage)}
}

// SaveSession implements Store.
func (m *MemoryStore) SaveSession(rec SessionRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.Subscriptions = slices.Clone(rec.Subscriptions)
	if s := m.sessions[rec.ClientID]; s != nil {
		s.rec = rec
		return nil
	}
	m.sessions[rec.ClientID] = &memSession{rec: rec}
	return nil
}

// DeleteSession implements Store.
func (m *MemoryStore) DeleteSession(clientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, clientID)
	return nil
}

// SaveQueued implements Store. A message for an unknown session is ignored:
// the session has ended.
func (m *MemoryStore) SaveQueued(clientID string, q QueuedMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[clientID]
	if s == nil {
		return nil
	}
	if s.queued == nil {
		s.queued = make(map[uint64]QueuedMessage)
	}
	s.queued[q.Seq] = q
	return nil
}

// SaveInflight implements Store.
func (m *MemoryStore) SaveInflight(clientID string, seq uint64, packetID uint16, released bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[clientID]; s != nil {
		if q, ok := s.queued[seq]; ok {
			q.PacketID, q.Released = packetID, released
			s.queued[seq] = q
		}
	}
	return nil
}

// SaveInbound implements Store.
func (m *MemoryStore) SaveInbound(clientID string, packetID uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[clientID]; s != nil {
		if s.inbound == nil {
			s.inbound = make(map[uint16]struct{})
		}
		s.inbound[packetID] = struct{}{}
	}
	return nil
}

// DeleteInbound implements Store.
func (m *MemoryStore) DeleteInbound(clientID string, packetID uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[clientID]; s != nil {
		delete(s.inbound, packetID)
	}
	return nil
}

// DeleteQueued implements Store.
func (m *MemoryStore) DeleteQueued(clientID string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[clientID]; s != nil {
		delete(s.queued, seq)
	}
	return nil
}

// SaveRetained implements Store.
func (m *MemoryStore) SaveRetained(msg StoredMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retained[msg.Topic] = msg
	return nil
}

// DeleteRetained implements Store.
func (m *MemoryStore) DeleteRetained(topic string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.retained, topic)
	return nil
}

// Load implements Store. It replays a snapshot taken under the lock, so the
// callbacks may call back into the store.
func (m *MemoryStore) Load(session func(StoredSession) error, retained func(StoredMessage) error) error {
	m.mu.Lock()
	sessions := make([]StoredSession, 0, len(m.sessions))
	for _, id := range slices.Sorted(maps.Keys(m.sessions)) {
		s := m.sessions[id]
		rec := s.rec
		rec.Subscriptions = slices.Clone(rec.Subscriptions)
		sessions = append(sessions, StoredSession{
			Record:  rec,
			Queued:  slices.SortedFunc(maps.Values(s.queued), func(a, b QueuedMessage) int { return cmp.Compare(a.Seq, b.Seq) }),
			Inbound: slices.Sorted(maps.Keys(s.inbound)),
		})
	}
	ret := slices.Collect(maps.Values(m.retained))
	m.mu.Unlock()
	for _, s := range sessions {
		if err := session(s); err != nil {
			return err
		}
	}
	for _, r := range ret {
		if err := retained(r); err != nil {
			return err
		}
	}
	return nil
}
