package mqttcore

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// SessionExpiryNever is the session expiry interval that keeps a session
// until it is resumed with clean start (MQTT 5 §3.1.2.11.2).
const SessionExpiryNever = 0xFFFFFFFF

// Defaults applied by Options for zero fields.
const (
	DefaultMaxQueued          = 1000
	DefaultReceiveMaximum     = 65535
	DefaultMaxInboundInflight = 1024
	DefaultSysInterval        = 10 * time.Second
	DefaultVersion            = "snwgw"
)

// Options configure a Broker. Zero fields take the defaults above.
type Options struct {
	// Logger receives the engine's diagnostics; nil discards them.
	Logger *slog.Logger
	// Store persists sessions, subscriptions, queued and retained messages;
	// nil means a fresh MemoryStore.
	Store Store
	// Authorizer decides connects, publishes and subscriptions; nil allows
	// everything.
	Authorizer Authorizer
	// MaxQueued bounds the messages waiting in one session's queue (in-flight
	// messages are bounded separately by the receive maximum). When full,
	// the oldest queued QoS 0 message is dropped for a new QoS 1 or 2 one,
	// otherwise the new message is dropped; every drop is counted.
	MaxQueued int
	// ReceiveMaximum is the in-flight window of a connection that does not
	// set ConnectOptions.ReceiveMaximum (the MQTT 5 default is 65535).
	ReceiveMaximum uint16
	// MaxInboundInflight bounds the QoS 2 messages a connection may have
	// published and not yet released; it is the Receive Maximum a listener
	// announces to MQTT 5 clients.
	MaxInboundInflight uint16
	// MaxSessionExpiry caps the session expiry interval clients ask for, in
	// seconds; 0 means no cap.
	MaxSessionExpiry uint32
	// SysInterval is the period of the $SYS/broker statistics; a negative
	// value turns them off.
	SysInterval time.Duration
	// Version is published as $SYS/broker/version.
	Version string
}

func (o *Options) ensureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Store == nil {
		o.Store = NewMemoryStore()
	}
	if o.Authorizer == nil {
		o.Authorizer = AllowAll{}
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	if o.ReceiveMaximum == 0 {
		o.ReceiveMaximum = DefaultReceiveMaximum
	}
	if o.MaxInboundInflight == 0 {
		o.MaxInboundInflight = DefaultMaxInboundInflight
	}
	if o.MaxSessionExpiry == 0 {
		o.MaxSessionExpiry = SessionExpiryNever
	}
	if o.SysInterval == 0 {
		o.SysInterval = DefaultSysInterval
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
}

// Validate reports options that cannot work, after defaults are applied.
func (o *Options) Validate() error {
	if o.MaxQueued < 0 {
		return fmt.Errorf("%w: MaxQueued %d is negative", ErrInvalidOptions, o.MaxQueued)
	}
	if o.SysInterval > 0 && o.SysInterval < time.Second {
		return fmt.Errorf("%w: SysInterval %v is shorter than a second", ErrInvalidOptions, o.SysInterval)
	}
	return nil
}

// Broker states.
const (
	stateNew = iota
	stateStarted
	stateClosed
)

// Broker is the MQTT broker core: sessions, subscriptions, retained
// messages and the QoS engine. Connections reach it through Connect, whether
// they are in-process (the MQTT-SN gateway, the bridge) or MQTT listeners.
//
// Locking (see LOCKING.md): b.mu guards the session table and session
// lifecycles (connect, disconnect, expiry, wills); each session has its own
// mu for its queue, window and subscriptions; the subscription trie, the
// retained tree and the store have their own locks. The order is
// b.mu → session.mu → (trie.mu | retained.mu | store). Fan-out holds only
// the trie's read lock to collect targets, then each target's lock in
// turn, so a slow consumer never blocks a publisher: its queue just fills.
// Consumer callbacks run with no engine lock held.
type Broker struct {
	opts     Options
	log      *slog.Logger
	store    Store
	durable  DurableStore // store, if it commits asynchronously
	auth     Authorizer
	subs     trie
	retained retainedTree
	stats    counters

	// failedLogins bounds the log lines about refused logins, which anyone
	// who can reach a listener can cause at will.
	failedLogins logLimit

	mu       sync.Mutex
	state    int
	sessions map[string]*session // by client id
	cancel   context.CancelFunc
	done     chan struct{} // closed by Close
	started  time.Time
	assigned uint64 // assigned client identifiers so far
	wg       sync.WaitGroup
}

// New returns a Broker configured by opts (nil for defaults). Call Start
// before connecting, and Close when done.
func New(opts *Options) (*Broker, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	durable, _ := o.Store.(DurableStore)
	return &Broker{
		opts:     o,
		log:      o.Logger,
		store:    o.Store,
		durable:  durable,
		auth:     o.Authorizer,
		sessions: make(map[string]*session),
	}, nil
}

// atomically runs fn so that its store changes are committed together, if
// the store can group them.
func (b *Broker) atomically(fn func()) {
	if a, ok := b.store.(AtomicStore); ok {
		a.Atomically(fn)
		return
	}
	fn()
}

// Durable reports whether the store commits asynchronously, so that
// acknowledgements must wait for WhenDurable.
func (b *Broker) Durable() bool { return b.durable != nil }

// WhenDurable calls fn once every change the engine has made to its store
// so far is committed: a transport sends PUBACK, PUBREC or PUBCOMP from fn,
// so that nothing it acknowledged can be lost to a crash. With a store that
// is not a DurableStore fn runs at once. fn runs on the store's goroutine,
// in registration order, and must not block.
func (b *Broker) WhenDurable(fn func()) {
	if b.durable == nil {
		fn()
		return
	}
	b.durable.AfterCommit(fn)
}

// Start restores the stored state and starts the $SYS publisher, which
// runs until ctx ends or Close is called.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateStarted:
		return nil
	case stateClosed:
		return ErrClosed
	}
	b.started = time.Now()
	if err := b.restoreLocked(); err != nil {
		return fmt.Errorf("mqttcore: restoring the store: %w", err)
	}
	b.state = stateStarted
	b.done = make(chan struct{})
	ctx, b.cancel = context.WithCancel(ctx)
	if b.opts.SysInterval > 0 {
		b.goFunc(func() { b.sysLoop(ctx) })
	}
	return nil
}

// Close disconnects every connection (their consumers are told
// ReasonServerShuttingDown), stops timers and waits for the broker's
// goroutines or ctx. It is idempotent. Persistent sessions stay in the
// store; wills are not published at shutdown.
func (b *Broker) Close(ctx context.Context) error {
	var kicked []Consumer
	b.mu.Lock()
	if b.state != stateClosed {
		b.state = stateClosed
		if b.cancel != nil {
			b.cancel()
		}
		if b.done != nil {
			close(b.done)
		}
		for _, s := range b.sessions {
			s.mu.Lock()
			if s.conn != nil {
				kicked = append(kicked, s.conn.consumer)
				s.detachLocked()
				b.stats.connected.Add(-1)
			}
			s.stopTimersLocked()
			s.mu.Unlock()
		}
	}
	b.mu.Unlock()
	for _, c := range kicked {
		c.Disconnected(ReasonServerShuttingDown)
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttcore: waiting for goroutines: %w", ctx.Err())
	}
}

// goFunc runs f on a goroutine Close waits for. The caller holds b.mu, so
// the Add cannot race Close's Wait.
func (b *Broker) goFunc(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// afterFunc runs f after d on a timer goroutine that Close waits for; once
// the broker is closed, f no longer runs.
func (b *Broker) afterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		b.mu.Lock()
		if b.state == stateClosed {
			b.mu.Unlock()
			return
		}
		b.wg.Add(1)
		b.mu.Unlock()
		defer b.wg.Done()
		f()
	})
}

// firedWill is a will to publish once locks are released.
type firedWill struct {
	origin *session
	info   ClientInfo
	will   *Will
}

func (b *Broker) publishWills(wills []firedWill) {
	for _, w := range wills {
		m := w.will.Message
		if err := b.publish(w.origin, w.info, &m); err != nil {
			b.log.Warn("will not published", "client", w.info.ClientID, "topic", m.Topic, "err", err)
		}
	}
}

// publish validates, authorizes and routes one inbound message.
func (b *Broker) publish(origin *session, info ClientInfo, m *Message) error {
	if err := ValidateTopic(m.Topic); err != nil {
		return err
	}
	if m.QoS > 2 {
		return fmt.Errorf("%w: QoS %d", ErrProtocol, m.QoS)
	}
	if isSys(m.Topic) || !b.auth.AllowPublish(info, m.Topic) {
		b.stats.refused.Add(1)
		return fmt.Errorf("%w: publish to %q", ErrNotAuthorized, m.Topic)
	}
	b.stats.received.Add(1)
	b.route(origin, newMessage(m, time.Now()))
	return nil
}

// isSys reports whether topic is reserved for the broker's statistics;
// clients may not publish there.
func isSys(topic string) bool {
	return len(topic) >= 4 && topic[:4] == "$SYS" && (len(topic) == 4 || topic[4] == '/')
}

// route stores a retained message and hands one copy to every matching
// session (MQTT 5 §4.5). It never blocks on a receiver.
func (b *Broker) route(origin *session, msg *message) {
	if msg.retain {
		b.setRetained(msg)
	}
	m := b.subs.match(msg.topic, origin)
	check := b.checkRead()
	for i := range m.targets {
		t := &m.targets[i]
		if check && !t.s.mayRead(msg.topic) {
			// Judged here, before it is queued, so a refused QoS 1 or 2
			// message never takes a place in the queue or the window.
			b.stats.refused.Add(1)
			continue
		}
		// Normal forwarding clears RETAIN unless Retain As Published is set
		// (MQTT 5 §3.3.1.3).
		t.s.deliver(&outMsg{msg: msg, qos: min(msg.qos, t.qos), retain: msg.retain && t.rap, ids: t.ids})
	}
	m.release()
}

func (b *Broker) setRetained(msg *message) {
	// $SYS values are rebuilt on every start, so they are not stored.
	if !b.retained.set(msg) || isSys(msg.topic) {
		return
	}
	var err error
	if len(msg.payload) == 0 {
		err = b.store.DeleteRetained(msg.topic)
	} else {
		err = b.store.SaveRetained(storedMessage(msg))
	}
	b.storeErr(err, "retained", msg.topic)
}

func storedMessage(m *message) StoredMessage {
	return StoredMessage{
		Message: Message{Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain, Properties: m.props},
		Expires: m.expires,
	}
}

func messageFromStore(sm StoredMessage) *message {
	return &message{
		topic: sm.Topic, payload: sm.Payload, qos: sm.QoS, retain: sm.Retain,
		props: sm.Properties, expires: sm.Expires,
	}
}

func (b *Broker) storeErr(err error, what, key string) {
	if err != nil {
		b.stats.storeErrors.Add(1)
		b.log.Error("store failed", "what", what, "key", key, "err", err)
	}
}

// restoreLocked loads the stored sessions (offline, with their expiry
// timers restarted) and retained messages. Messages that were in flight go
// back in flight under their packet ids, to be repeated at the next
// connection.
func (b *Broker) restoreLocked() error {
	now := time.Now()
	return b.store.Load(func(st StoredSession) error {
		rec := st.Record
		s := b.newSessionLocked(rec.ClientID)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.username = rec.Username
		s.owner.Store(&ClientInfo{ClientID: rec.ClientID, Username: rec.Username, Identity: rec.Identity, Link: rec.Link})
		s.expiry = rec.Expiry
		s.stored = true
		for _, sub := range rec.Subscriptions {
			group, inner, err := ParseShared(sub.Filter)
			if err != nil {
				b.log.Warn("stored subscription dropped", "client", rec.ClientID, "filter", sub.Filter, "err", err)
				continue
			}
			s.subs = append(s.subs, sub)
			b.subs.subscribe(group, inner, subscriberOf(s, sub))
		}
		for _, q := range st.Queued {
			msg := messageFromStore(q.Message)
			s.seq = max(s.seq, q.Seq)
			o := &outMsg{msg: msg, seq: q.Seq, qos: q.QoS, retain: q.Retain, ids: q.SubscriptionIDs}
			if q.PacketID != 0 && q.QoS > 0 && s.inflight[q.PacketID] == nil {
				// Once sent, a message is repeated even if it has expired
				// since (MQTT 5 §3.3.2.3.3 expires only what was not sent).
				o.packetID, o.state = q.PacketID, stateSent
				if q.Released && q.QoS == 2 {
					o.state = stateReleased
				}
				if s.inflight == nil {
					s.inflight = make(map[uint16]*outMsg)
				}
				s.inflight[o.packetID] = o
				continue
			}
			if msg.expired(now) {
				b.storeErr(b.store.DeleteQueued(rec.ClientID, q.Seq), "queued", rec.ClientID)
				continue
			}
			s.queue.push(o)
		}
		for _, id := range st.Inbound {
			if s.inbound == nil {
				s.inbound = make(map[uint16]struct{})
			}
			s.inbound[id] = struct{}{}
		}
		s.armExpiryLocked()
		return nil
	}, func(sm StoredMessage) error {
		msg := messageFromStore(sm)
		if msg.expired(now) {
			b.storeErr(b.store.DeleteRetained(sm.Topic), "retained", sm.Topic)
			return nil
		}
		b.retained.set(msg)
		return nil
	})
}

func (b *Broker) newSessionLocked(id string) *session {
	s := &session{b: b, id: id}
	b.sessions[id] = s
	return s
}

// assignClientIDLocked invents an unused client identifier for a client
// that sent an empty one (MQTT 5 §3.1.3.1).
func (b *Broker) assignClientIDLocked() string {
	for {
		b.assigned++
		id := "auto-" + strconv.FormatInt(b.started.UnixNano(), 36) + "-" + strconv.FormatUint(b.assigned, 36)
		if _, taken := b.sessions[id]; !taken {
			return id
		}
	}
}
