package mqttcore

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Consumer is implemented by the owner of a connection (a gateway session,
// a TCP connection's writer, the bridge). The engine calls it with no lock
// held, from any goroutine, and it must not block: it should only wake the
// owner, which then calls back into the Session from its own goroutine.
type Consumer interface {
	// Notify reports that Session.Next has deliveries. It is called once
	// until Next next reports none, and may be called before Connect has
	// returned.
	Notify()
	// Disconnected reports that the broker ended the connection: another
	// connection took over the client id (ReasonSessionTakenOver) or the
	// broker is closing (ReasonServerShuttingDown). The Session is already
	// closed; a listener sends an MQTT 5 DISCONNECT with the reason.
	Disconnected(reason ReasonCode)
}

// ConnectOptions describe one connection to a session (MQTT 5 §3.1).
//
// MQTT 3.1.1 maps onto them as follows: clean session 1 is CleanStart with
// SessionExpiry 0; clean session 0 is no CleanStart with SessionExpiry
// SessionExpiryNever (the 3.1.1 session lasts until a clean connect), capped
// by Options.MaxSessionExpiry.
//
// Keep-alive is not the engine's business: the owner of the connection
// supervises it and calls Disconnect with SendWill when it lapses.
type ConnectOptions struct {
	// ClientID names the session; empty asks the broker to assign one (the
	// MQTT 5 rule; a 3.1.1 listener refuses an empty id with clean session 0
	// itself). Session.ClientID returns the id in use.
	ClientID string
	// CleanStart discards any existing session of ClientID.
	CleanStart bool
	// SessionExpiry is the session expiry interval in seconds: 0 ends the
	// session with the connection, SessionExpiryNever keeps it until a
	// clean start.
	SessionExpiry uint32
	// Will is published if the connection ends without a normal disconnect.
	Will *Will
	// ReceiveMaximum is the in-flight window for QoS 1 and 2 deliveries:
	// Next returns no more unacknowledged messages than this. 0 takes
	// Options.ReceiveMaximum.
	ReceiveMaximum uint16
	// Username and Password are passed to the Authorizer.
	Username string
	Password []byte
	// Remote, Link, Identity and Authenticated are passed to the
	// Authorizer (see ClientInfo).
	Remote        net.Addr
	Link          string
	Identity      string
	Authenticated bool
	// Consumer is told about deliveries and broker-initiated disconnects.
	Consumer Consumer
	// MaxQueued, when positive, bounds this connection's queue instead of
	// Options.MaxQueued: the gateway gives each sleeping sensor a buffer of
	// its own size.
	MaxQueued int
	// DropOldest makes a full queue discard its oldest message, whatever
	// its QoS, for the new one, so a consumer that catches up sees the
	// newest state; without it the default policy of Options.MaxQueued
	// applies.
	DropOldest bool
	// Internal marks a connection of the process itself (the gateway's
	// QoS -1 publisher, a bridge): while its session exists, its client id
	// is reserved, and Connect refuses it to any connection that is not
	// Internal with ErrInvalidClientID (CONNACK 0x85, 3.1.1 return code
	// 2). One CONNECT must not be able to take such a session over and
	// stop the service behind it for good. An Internal connection takes
	// over any other.
	Internal bool
}

// DisconnectOptions describe the end of a connection by its owner.
type DisconnectOptions struct {
	// SendWill publishes the will: the connection was lost, keep-alive
	// lapsed, or an MQTT 5 client asked for it (reason 0x04). Without it
	// the will is discarded (MQTT 5 §3.14.4).
	SendWill bool
	// SessionExpiry, when set, replaces the session expiry interval (MQTT 5
	// §3.14.2.2.2); raising it from 0 is a protocol error.
	SessionExpiry *uint32
}

// Session is one connection's handle on a session. It is safe for
// concurrent use, though a connection normally drives it from one goroutine.
// Once the connection ends (Disconnect, takeover, broker close) its methods
// return ErrSessionClosed and Next reports nothing.
type Session struct {
	b        *Broker
	st       *session
	consumer Consumer
	info     ClientInfo
}

// Outbound message states.
const (
	stateQueued   = iota
	stateSent     // PUBLISH sent, waiting for PUBACK or PUBREC
	stateReleased // PUBREC received, PUBREL sent, waiting for PUBCOMP
)

// outMsg is one message on its way to one session.
type outMsg struct {
	msg      *message
	ids      []uint32
	seq      uint64 // order within the session; the store's key
	packetID uint16
	qos      byte
	retain   bool
	state    byte
}

// session is the state that outlives connections (MQTT 5 §4.1). All fields
// below mu are guarded by it; conn is the current connection, nil while the
// client is away.
type session struct {
	b      *Broker
	id     string
	online atomic.Bool // conn != nil, readable without mu for share groups
	// owner is the ClientInfo of the latest connection, or what the store
	// kept of it; fan-out judges each message's read rights by it without
	// taking mu. Set under mu.
	owner atomic.Pointer[ClientInfo]

	mu          sync.Mutex
	conn        *Session
	ended       bool
	stored      bool // a record exists in the store
	gen         uint64
	username    string
	expiry      uint32
	expiryTimer *time.Timer
	will        *Will        // the current connection's will
	pending     *pendingWill // a will waiting out its delay
	receiveMax  uint16
	maxQueued   int  // the connection's queue bound
	dropOldest  bool // a full queue drops its oldest message
	internal    bool // the client id is reserved to Internal connections
	notified    bool // Notify sent and Next has not yet reported none
	subs        []Subscription
	queue       fifo
	qos0        int // QoS 0 messages in queue
	inflight    map[uint16]*outMsg
	resend      []*outMsg // in-flight messages to repeat on this connection
	nextID      uint16
	seq         uint64
	inbound     map[uint16]struct{} // QoS 2 packet ids published, not yet released
}

type pendingWill struct {
	will  *Will
	info  ClientInfo
	timer *time.Timer
}

// Connect attaches a connection to the session of opts.ClientID, creating
// the session or taking it over from another connection (which is told
// ReasonSessionTakenOver), and reports whether an existing session was
// resumed. Only the session's owner resumes it (same user name, and same
// identity if the owner had one); for anyone else the old session ends as
// with CleanStart. After Connect the owner should drain Next: a resumed
// session may have messages waiting and in-flight messages to repeat with
// DUP.
func (b *Broker) Connect(opts ConnectOptions) (*Session, bool, error) {
	if opts.Consumer == nil {
		return nil, false, fmt.Errorf("%w: no Consumer", ErrInvalidOptions)
	}
	if opts.ClientID != "" {
		if err := validateString(opts.ClientID); err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrInvalidClientID, err)
		}
	}
	if w := opts.Will; w != nil {
		if err := ValidateTopic(w.Topic); err != nil {
			return nil, false, fmt.Errorf("mqttcore: will: %w", err)
		}
		if w.QoS > 2 {
			return nil, false, fmt.Errorf("%w: will QoS %d", ErrProtocol, w.QoS)
		}
	}
	info := ClientInfo{ClientID: opts.ClientID, Username: opts.Username, Remote: opts.Remote,
		Link: opts.Link, Identity: opts.Identity, Authenticated: opts.Authenticated}
	if !b.auth.AllowConnect(info, opts.Password) {
		b.stats.refused.Add(1)
		return nil, false, fmt.Errorf("%w: connect of %q", ErrNotAuthorized, opts.ClientID)
	}
	receiveMax := opts.ReceiveMaximum
	if receiveMax == 0 {
		receiveMax = b.opts.ReceiveMaximum
	}

	var wills []firedWill
	var kicked Consumer
	b.mu.Lock()
	switch b.state {
	case stateNew:
		b.mu.Unlock()
		return nil, false, ErrNotStarted
	case stateClosed:
		b.mu.Unlock()
		return nil, false, ErrClosed
	}
	if info.ClientID == "" {
		info.ClientID = b.assignClientIDLocked()
	}
	s := b.sessions[info.ClientID]
	if s != nil {
		s.mu.Lock()
		if s.internal && !opts.Internal && !s.ended {
			s.mu.Unlock()
			b.mu.Unlock()
			b.stats.refused.Add(1)
			return nil, false, fmt.Errorf("%w: %q is reserved to the gateway itself", ErrInvalidClientID, info.ClientID)
		}
		if s.conn != nil {
			// Takeover (MQTT 5 §3.1.4): the old connection ends as if lost, so
			// its will follows the usual delay rules.
			kicked = s.conn.consumer
			wills = s.endConnectionLocked(true, wills)
		}
		owned := s.ownedBy(info)
		if !s.ended && !opts.CleanStart && !owned {
			b.log.Info("session not resumed: it belongs to another user or identity",
				"client", info.ClientID, "user", info.Username, "identity", info.Identity)
		}
		if !s.ended && (opts.CleanStart || !owned) {
			wills = s.endLocked(wills)
		}
		if s.ended {
			s.mu.Unlock()
			s = nil
		}
	}
	present := s != nil
	if s == nil {
		s = b.newSessionLocked(info.ClientID)
		s.mu.Lock()
	} else if b.checkRead() {
		s.rejudgeLocked(info)
	}
	h := &Session{b: b, st: s, consumer: opts.Consumer, info: info}
	s.attachLocked(h, opts, receiveMax)
	wake := s.deliverableLocked()
	s.notified = wake
	s.mu.Unlock()
	b.stats.connected.Add(1)
	b.mu.Unlock()

	b.publishWills(wills)
	if kicked != nil {
		kicked.Disconnected(ReasonSessionTakenOver)
	}
	if wake {
		opts.Consumer.Notify()
	}
	return h, present, nil
}

// ownedBy reports whether a connection described by c may resume the
// session: a client id is no credential, so the session goes on only for
// the same user name, and, if its latest connection proved an identity (a
// certificate, a DTLS identity), the same identity. Anyone else who
// connects with the client id starts afresh, as with clean start, and
// never sees what was queued for the owner.
func (s *session) ownedBy(c ClientInfo) bool {
	o := s.owner.Load()
	return o == nil || o.Username == c.Username && (o.Identity == "" || o.Identity == c.Identity)
}

// rejudgeLocked drops what a resuming connection may not read of the
// messages queued or in flight: they were judged by the rights of the
// connection they were routed for, which may have come through another
// link. Only a change of link or identity can change the rights of the
// same client id and user, so otherwise there is nothing to do.
func (s *session) rejudgeLocked(c ClientInfo) {
	o := s.owner.Load()
	if o != nil && o.Link == c.Link && o.Identity == c.Identity {
		return
	}
	b := s.b
	denied := func(x *outMsg) bool { return !b.auth.AllowRead(c, x.msg.topic) }
	s.queue.removeIf(denied, func(x *outMsg) {
		if x.qos == 0 {
			s.qos0--
		}
		s.forgetLocked(x)
		b.stats.refused.Add(1)
	})
	for id, x := range s.inflight {
		// A message already received (PUBREC) only waits for PUBCOMP.
		if x.state == stateSent && denied(x) {
			delete(s.inflight, id)
			s.forgetLocked(x)
			b.stats.refused.Add(1)
		}
	}
}

// attachLocked makes h the session's connection. Reconnecting cancels the
// expiry timer and a will still waiting out its delay (MQTT 5 §3.1.3.2.2),
// and schedules every unacknowledged message for redelivery (§4.4).
func (s *session) attachLocked(h *Session, opts ConnectOptions, receiveMax uint16) {
	s.stopTimersLocked()
	s.gen++
	s.conn = h
	s.online.Store(true)
	s.owner.Store(&h.info) // replaced by a copy when the connection ends
	s.username = opts.Username
	s.expiry = min(opts.SessionExpiry, s.b.opts.MaxSessionExpiry)
	s.receiveMax = receiveMax
	s.maxQueued = opts.MaxQueued
	if s.maxQueued <= 0 {
		s.maxQueued = s.b.opts.MaxQueued
	}
	s.dropOldest = opts.DropOldest
	s.internal = opts.Internal
	if opts.Will != nil {
		w := *opts.Will
		s.will = &w
	}
	s.resend = slices.SortedFunc(maps.Values(s.inflight), func(a, b *outMsg) int { return cmp.Compare(a.seq, b.seq) })
	s.persistLocked()
}

// detachLocked forgets the connection, keeping the session state.
func (s *session) detachLocked() {
	s.conn = nil
	s.online.Store(false)
	s.will = nil
	s.resend = nil
	s.notified = false
}

func (s *session) stopTimersLocked() {
	if s.expiryTimer != nil {
		s.expiryTimer.Stop()
		s.expiryTimer = nil
	}
	if s.pending != nil {
		s.pending.timer.Stop()
		s.pending = nil
	}
}

// endConnectionLocked ends the current connection; the caller holds b.mu.
// With sendWill the will fires now or after its delay; a session with
// expiry 0 ends at once, others start their expiry timer.
func (s *session) endConnectionLocked(sendWill bool, wills []firedWill) []firedWill {
	info := s.conn.info
	will := s.will
	s.detachLocked()
	s.b.stats.connected.Add(-1)
	if sendWill && will != nil {
		if will.Delay == 0 {
			wills = append(wills, firedWill{origin: s, info: info, will: will})
		} else {
			pw := &pendingWill{will: will, info: info}
			pw.timer = s.b.afterFunc(time.Duration(will.Delay)*time.Second, func() { s.fireWill(pw) })
			s.pending = pw
		}
	}
	if s.expiry == 0 {
		return s.endLocked(wills)
	}
	// The owner pointed into the connection's handle; a copy lets the
	// handle, and the connection behind its consumer, go while the
	// session waits for its client.
	owner := info
	s.owner.Store(&owner)
	s.armExpiryLocked()
	return wills
}

// armExpiryLocked starts the session expiry timer of a session without a
// connection.
func (s *session) armExpiryLocked() {
	if s.expiry == SessionExpiryNever {
		return
	}
	gen := s.gen
	s.expiryTimer = s.b.afterFunc(time.Duration(s.expiry)*time.Second, func() { s.expire(gen) })
}

// expire ends the session when its expiry interval has passed without a
// new connection.
func (s *session) expire(gen uint64) {
	b := s.b
	b.mu.Lock()
	s.mu.Lock()
	var wills []firedWill
	if !s.ended && s.conn == nil && s.gen == gen {
		wills = s.endLocked(nil)
	}
	s.mu.Unlock()
	b.mu.Unlock()
	b.publishWills(wills)
}

// fireWill publishes a will whose delay has passed, unless the client has
// reconnected or the session has ended (which fired it already).
func (s *session) fireWill(pw *pendingWill) {
	s.mu.Lock()
	fire := s.pending == pw
	if fire {
		s.pending = nil
	}
	s.mu.Unlock()
	if fire {
		s.b.publishWills([]firedWill{{origin: s, info: pw.info, will: pw.will}})
	}
}

// endLocked ends the session (MQTT 5 §4.1): its subscriptions and queue go
// and a will still waiting for its delay fires now, because a will fires at
// the earlier of will delay and session end. The caller holds b.mu.
func (s *session) endLocked(wills []firedWill) []firedWill {
	b := s.b
	if pw := s.pending; pw != nil {
		wills = append(wills, firedWill{origin: s, info: pw.info, will: pw.will})
	}
	s.stopTimersLocked()
	s.ended = true
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	for _, sub := range s.subs {
		group, inner, _ := ParseShared(sub.Filter)
		b.subs.unsubscribe(group, inner, s)
	}
	s.subs = nil
	for s.queue.len() > 0 {
		s.queue.pop()
	}
	s.qos0 = 0
	s.inflight = nil
	s.inbound = nil
	if s.stored {
		b.storeErr(b.store.DeleteSession(s.id), "session", s.id)
		s.stored = false
	}
	return wills
}

// persistLocked writes the session record through to the store, or removes
// it when the session no longer outlives its connection.
func (s *session) persistLocked() {
	b := s.b
	if s.expiry == 0 {
		if s.stored {
			b.storeErr(b.store.DeleteSession(s.id), "session", s.id)
			s.stored = false
		}
		return
	}
	rec := SessionRecord{ClientID: s.id, Username: s.username, Expiry: s.expiry, Subscriptions: s.subs}
	if o := s.owner.Load(); o != nil {
		rec.Identity, rec.Link = o.Identity, o.Link
	}
	b.storeErr(b.store.SaveSession(rec), "session", s.id)
	s.stored = true
}

// SetQueue changes the bound and policy of the session's queue (see
// ConnectOptions.MaxQueued and DropOldest): the gateway gives an active
// sensor the broker's queue and a sleeping one its sleep buffer. Messages
// already queued stay, even above a lowered bound.
func (h *Session) SetQueue(maxQueued int, dropOldest bool) {
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != h {
		return
	}
	if maxQueued <= 0 {
		maxQueued = s.b.opts.MaxQueued
	}
	s.maxQueued, s.dropOldest = maxQueued, dropOldest
}

// ClientID returns the session's client identifier, the assigned one when
// the connection asked for none.
func (h *Session) ClientID() string { return h.info.ClientID }

// SessionExpiry returns the session expiry interval in effect, after
// Options.MaxSessionExpiry; a listener reports a capped value in CONNACK.
func (h *Session) SessionExpiry() uint32 {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	return h.st.expiry
}

// Disconnect ends the connection; the session stays if its expiry interval
// allows. It returns ErrSessionClosed if the connection had already ended,
// and wraps ErrProtocol if opts.SessionExpiry tried to raise an expiry of 0
// (the connection ends all the same, with the expiry unchanged).
func (h *Session) Disconnect(opts DisconnectOptions) error {
	b, s := h.b, h.st
	var err error
	b.mu.Lock()
	s.mu.Lock()
	if s.conn != h {
		s.mu.Unlock()
		b.mu.Unlock()
		return ErrSessionClosed
	}
	if e := opts.SessionExpiry; e != nil {
		if s.expiry == 0 && *e != 0 {
			err = fmt.Errorf("%w: session expiry raised from 0 at disconnect", ErrProtocol)
		} else {
			s.expiry = min(*e, b.opts.MaxSessionExpiry)
			s.persistLocked()
		}
	}
	wills := s.endConnectionLocked(opts.SendWill, nil)
	s.mu.Unlock()
	b.mu.Unlock()
	b.publishWills(wills)
	return err
}

// Publish publishes a message from this connection at QoS 0, 1 or 2. For
// QoS 1 the message is accepted (and may be acknowledged) when Publish
// returns nil. A transport that must not publish a retransmitted QoS 2
// message twice uses PublishQoS2 instead. Errors: ErrInvalidTopic,
// ErrNotAuthorized (the message is dropped and counted), ErrProtocol,
// ErrSessionClosed.
func (h *Session) Publish(m Message) error {
	if !h.attached() {
		return ErrSessionClosed
	}
	return h.b.publish(h.st, h.info, &m)
}

// PublishQoS2 handles an inbound QoS 2 PUBLISH with packetID (MQTT 5
// §4.3.3, method B): the message is published on the first receipt and the
// id remembered until Release, so a retransmission is acknowledged without
// being published again. An error means the message was not published and
// the id not kept (v5 PUBREC carries ReasonFor(err)).
func (h *Session) PublishQoS2(packetID uint16, m Message) error {
	if m.QoS != 2 || packetID == 0 {
		return fmt.Errorf("%w: PublishQoS2 with QoS %d, packet id %d", ErrProtocol, m.QoS, packetID)
	}
	// The id and the copies routing queues must reach the disk in one
	// commit: an id stored without its copies would make the publisher's
	// repeat after a crash look like a duplicate, and the message would be
	// lost; copies without the id would deliver it twice.
	var err error
	h.b.atomically(func() { err = h.publishQoS2(packetID, &m) })
	return err
}

func (h *Session) publishQoS2(packetID uint16, m *Message) error {
	s := h.st
	s.mu.Lock()
	if s.conn != h {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if _, dup := s.inbound[packetID]; dup {
		s.mu.Unlock()
		return nil
	}
	if len(s.inbound) >= int(h.b.opts.MaxInboundInflight) {
		s.mu.Unlock()
		return ErrReceiveMaximumExceeded
	}
	if s.inbound == nil {
		s.inbound = make(map[uint16]struct{})
	}
	s.inbound[packetID] = struct{}{}
	if s.stored {
		h.b.storeErr(h.b.store.SaveInbound(s.id, packetID), "inbound", s.id)
	}
	s.mu.Unlock()
	err := h.b.publish(s, h.info, m)
	if err != nil {
		s.mu.Lock()
		s.forgetInboundLocked(packetID)
		s.mu.Unlock()
	}
	return err
}

// Release handles PUBREL for an inbound QoS 2 message: the packet id may
// be reused. It returns ErrPacketIDNotFound for an unknown id (v5 PUBCOMP
// 0x92).
func (h *Session) Release(packetID uint16) error {
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != h {
		return ErrSessionClosed
	}
	if _, ok := s.inbound[packetID]; !ok {
		return fmt.Errorf("%w: PUBREL %d", ErrPacketIDNotFound, packetID)
	}
	s.forgetInboundLocked(packetID)
	return nil
}

func (s *session) forgetInboundLocked(packetID uint16) {
	delete(s.inbound, packetID)
	if s.stored {
		s.b.storeErr(s.b.store.DeleteInbound(s.id, packetID), "inbound", s.id)
	}
}

func (h *Session) attached() bool {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	return h.st.conn == h
}

// Subscribe adds or replaces subscriptions (MQTT 5 §3.8) and returns one
// reason code per entry: the granted QoS, ReasonTopicFilterInvalid or
// ReasonNotAuthorized. Retained messages are queued per Retain Handling.
// Options no client may send (QoS or Retain Handling above 2, a
// subscription identifier out of range, No Local on a shared subscription)
// fail the whole call with ErrProtocol before anything changes.
func (h *Session) Subscribe(subs ...Subscription) ([]ReasonCode, error) {
	for _, sub := range subs {
		if sub.QoS > 2 || sub.RetainHandling > 2 || sub.ID > MaxSubscriptionID {
			return nil, fmt.Errorf("%w: subscription options of %q", ErrProtocol, sub.Filter)
		}
		if group, _, err := ParseShared(sub.Filter); err == nil && group != "" && sub.NoLocal {
			return nil, fmt.Errorf("%w: No Local on shared subscription %q", ErrProtocol, sub.Filter) // MQTT 5 §3.8.3.1
		}
	}
	b, s := h.b, h.st
	codes := make([]ReasonCode, len(subs))
	now := time.Now()
	for i, sub := range subs {
		group, inner, err := ParseShared(sub.Filter)
		if err != nil {
			codes[i] = ReasonTopicFilterInvalid
			continue
		}
		if !b.auth.AllowSubscribe(h.info, sub.Filter) {
			b.stats.refused.Add(1)
			codes[i] = ReasonNotAuthorized
			continue
		}
		s.mu.Lock()
		if s.conn != h {
			s.mu.Unlock()
			return nil, ErrSessionClosed
		}
		isNew := true
		if j := slices.IndexFunc(s.subs, func(x Subscription) bool { return x.Filter == sub.Filter }); j >= 0 {
			s.subs[j], isNew = sub, false
		} else {
			s.subs = append(s.subs, sub)
		}
		b.subs.subscribe(group, inner, subscriberOf(s, sub))
		codes[i] = ReasonCode(sub.QoS)
		// Retained messages are not sent for shared subscriptions (MQTT 5
		// §4.8.2); otherwise Retain Handling decides (§3.8.3.1). They keep
		// RETAIN set whatever Retain As Published says.
		if group == "" && (sub.RetainHandling == 0 || sub.RetainHandling == 1 && isNew) {
			var retained []*message
			b.retained.match(inner, now, func(m *message) { retained = append(retained, m) })
			check := b.checkRead()
			for _, m := range retained {
				if check && !b.auth.AllowRead(h.info, m.topic) {
					b.stats.refused.Add(1)
					continue
				}
				o := &outMsg{msg: m, qos: min(m.qos, sub.QoS), retain: true}
				if sub.ID != 0 {
					o.ids = []uint32{sub.ID}
				}
				s.enqueueLocked(o)
			}
		}
		s.persistLocked()
		c := s.wakeLocked()
		s.mu.Unlock()
		if c != nil {
			c.Notify()
		}
	}
	return codes, nil
}

// mayRead reports whether the Authorizer lets the session's owner receive
// a message on topic.
func (s *session) mayRead(topic string) bool {
	c := s.owner.Load()
	return c != nil && s.b.auth.AllowRead(*c, topic)
}

func subscriberOf(s *session, sub Subscription) subscriber {
	return subscriber{s: s, id: sub.ID, qos: sub.QoS, noLocal: sub.NoLocal, rap: sub.RetainAsPublished}
}

// Unsubscribe removes subscriptions (MQTT 5 §3.10) and returns one reason
// code per filter: ReasonSuccess, ReasonNoSubscriptionExisted or
// ReasonTopicFilterInvalid.
func (h *Session) Unsubscribe(filters ...string) ([]ReasonCode, error) {
	b, s := h.b, h.st
	codes := make([]ReasonCode, len(filters))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != h {
		return nil, ErrSessionClosed
	}
	for i, f := range filters {
		group, inner, err := ParseShared(f)
		if err != nil {
			codes[i] = ReasonTopicFilterInvalid
			continue
		}
		j := slices.IndexFunc(s.subs, func(x Subscription) bool { return x.Filter == f })
		if j < 0 {
			codes[i] = ReasonNoSubscriptionExisted
			continue
		}
		s.subs = slices.Delete(s.subs, j, j+1)
		b.subs.unsubscribe(group, inner, s)
	}
	s.persistLocked()
	return codes, nil
}

// deliver queues one message for the session without blocking. While the
// client is away QoS 0 is dropped (MQTT 5 §4.1: only QoS 1 and 2 are kept).
func (s *session) deliver(o *outMsg) {
	s.mu.Lock()
	if s.ended || (s.conn == nil && o.qos == 0) {
		s.mu.Unlock()
		if o.qos == 0 {
			s.b.stats.dropped.Add(1)
		}
		return
	}
	s.enqueueLocked(o)
	c := s.wakeLocked()
	s.mu.Unlock()
	if c != nil {
		c.Notify()
	}
}

// enqueueLocked appends o to the bounded queue. When the queue is full,
// with DropOldest the oldest message makes room; otherwise the oldest QoS 0
// message makes room for a QoS 1 or 2 one, or o is dropped. Every drop is
// counted.
func (s *session) enqueueLocked(o *outMsg) {
	b := s.b
	limit := s.maxQueued
	if limit <= 0 {
		limit = b.opts.MaxQueued // no connection has attached yet
	}
	if s.queue.len() >= limit {
		switch {
		case s.dropOldest:
			old := s.queue.pop()
			if old.qos == 0 {
				s.qos0--
			} else if s.stored {
				b.storeErr(b.store.DeleteQueued(s.id, old.seq), "queued", s.id)
			}
		case o.qos == 0 || s.qos0 == 0:
			b.stats.dropped.Add(1)
			return
		default:
			s.queue.removeFirst(func(x *outMsg) bool { return x.qos == 0 })
			s.qos0--
		}
		b.stats.dropped.Add(1)
	}
	s.seq++
	o.seq = s.seq
	s.queue.push(o)
	if o.qos == 0 {
		s.qos0++
	} else if s.stored {
		b.storeErr(b.store.SaveQueued(s.id, queuedMessage(o)), "queued", s.id)
	}
}

func queuedMessage(o *outMsg) QueuedMessage {
	return QueuedMessage{Seq: o.seq, Message: storedMessage(o.msg), QoS: o.qos, Retain: o.retain, SubscriptionIDs: o.ids}
}

// wakeLocked returns the consumer to notify, if the connection has
// deliveries it has not been told about.
func (s *session) wakeLocked() Consumer {
	if s.conn == nil || s.notified || !s.deliverableLocked() {
		return nil
	}
	s.notified = true
	return s.conn.consumer
}

// deliverableLocked reports whether Next has something to hand out: a
// message to repeat, or a queued one the in-flight window admits. A
// consumer whose window is full is not woken for every new message.
func (s *session) deliverableLocked() bool {
	if len(s.resend) > 0 {
		return true
	}
	if s.queue.len() == 0 {
		return false
	}
	return s.queue.front().qos == 0 || len(s.inflight) < int(s.receiveMax)
}

// Next returns the next delivery for the connection: first the in-flight
// messages of an earlier connection (PUBLISH with DUP, or PUBREL), then
// queued messages in order while the in-flight window has room. Expired
// messages are dropped on the way and the remaining expiry is set on the
// delivery. When Next reports false the consumer is notified again once
// there is more.
func (h *Session) Next() (Delivery, bool) {
	s := h.st
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != h {
		return Delivery{}, false
	}
	for len(s.resend) > 0 {
		o := s.resend[0]
		s.resend[0] = nil
		s.resend = s.resend[1:]
		if s.inflight[o.packetID] != o {
			continue
		}
		if o.state == stateReleased {
			return Delivery{PacketID: o.packetID, Release: true}, true
		}
		d := o.delivery(now)
		d.DUP = true
		s.b.stats.sent.Add(1)
		return d, true
	}
	s.resend = nil
	for s.queue.len() > 0 {
		o := s.queue.front()
		if o.msg.expired(now) {
			s.queue.pop()
			s.forgetLocked(o)
			s.b.stats.expired.Add(1)
			continue
		}
		if o.qos > 0 {
			if len(s.inflight) >= int(s.receiveMax) {
				break
			}
			s.queue.pop()
			o.packetID = s.nextPacketIDLocked()
			o.state = stateSent
			if s.inflight == nil {
				s.inflight = make(map[uint16]*outMsg)
			}
			s.inflight[o.packetID] = o
			if s.stored {
				s.b.storeErr(s.b.store.SaveInflight(s.id, o.seq, o.packetID, false), "inflight", s.id)
			}
		} else {
			s.queue.pop()
			s.qos0--
		}
		s.b.stats.sent.Add(1)
		return o.delivery(now), true
	}
	s.notified = false
	return Delivery{}, false
}

func (o *outMsg) delivery(now time.Time) Delivery {
	d := Delivery{Message: o.msg.public(now), PacketID: o.packetID, SubscriptionIDs: o.ids}
	d.QoS = o.qos
	d.Retain = o.retain
	return d
}

// nextPacketIDLocked returns a packet id in 1..65535 that is not in flight
// (MQTT 5 §2.2.1). The window is at most 65535, so one is free.
func (s *session) nextPacketIDLocked() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.inflight[s.nextID]; !used {
			return s.nextID
		}
	}
}

// forgetLocked drops the stored copy of a message that is done with.
func (s *session) forgetLocked(o *outMsg) {
	if o.qos > 0 && s.stored {
		s.b.storeErr(s.b.store.DeleteQueued(s.id, o.seq), "queued", s.id)
	}
}

// Ack handles PUBACK for a QoS 1 delivery (MQTT 5 §4.3.2), whatever its
// reason code: the message is done and the window opens.
func (h *Session) Ack(packetID uint16) error { return h.finish(packetID, 1) }

// Received handles PUBREC for a QoS 2 delivery (MQTT 5 §4.3.3): the owner
// sends PUBREL next and the id stays in flight until Complete. A repeated
// PUBREC is accepted. A PUBREC with a failure reason code ends the flow
// instead (§4.3.3): call Complete for it.
func (h *Session) Received(packetID uint16) error {
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != h {
		return ErrSessionClosed
	}
	o := s.inflight[packetID]
	if o == nil || o.qos != 2 {
		return fmt.Errorf("%w: PUBREC %d", ErrPacketIDNotFound, packetID)
	}
	if o.state == stateSent {
		// The subscriber has the message: from now on only PUBREL may be
		// repeated, even after a restart.
		o.state = stateReleased
		if s.stored {
			s.b.storeErr(s.b.store.SaveInflight(s.id, o.seq, o.packetID, true), "inflight", s.id)
		}
	}
	return nil
}

// Complete handles PUBCOMP for a QoS 2 delivery (MQTT 5 §4.3.3), or a
// PUBREC with a failure reason code: the id is free and the window opens.
func (h *Session) Complete(packetID uint16) error { return h.finish(packetID, 2) }

// finish removes the in-flight message packetID of the given QoS.
func (h *Session) finish(packetID uint16, qos byte) error {
	s := h.st
	s.mu.Lock()
	if s.conn != h {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	o := s.inflight[packetID]
	if o == nil || o.qos != qos {
		s.mu.Unlock()
		return fmt.Errorf("%w: acknowledgement of %d", ErrPacketIDNotFound, packetID)
	}
	s.forgetLocked(o)
	delete(s.inflight, packetID)
	c := s.wakeLocked()
	s.mu.Unlock()
	if c != nil {
		c.Notify()
	}
	return nil
}

// fifo is the queue of messages not yet sent, in arrival order.
type fifo struct {
	items []*outMsg
	head  int
}

func (q *fifo) len() int       { return len(q.items) - q.head }
func (q *fifo) front() *outMsg { return q.items[q.head] }
func (q *fifo) push(o *outMsg) { q.items = append(q.items, o) }

func (q *fifo) pop() *outMsg {
	o := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items):
		// A drained queue keeps a small backing array for the next message
		// but gives a large one back, so idle sessions stay small.
		if cap(q.items) > 4 {
			q.items = nil
		}
		q.items, q.head = q.items[:0], 0
	case q.head >= 64 && q.head*2 >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return o
}

// removeIf removes every message for which drop is true, in place,
// calling gone for each.
func (q *fifo) removeIf(drop func(*outMsg) bool, gone func(*outMsg)) {
	n := q.head
	for i := q.head; i < len(q.items); i++ {
		o := q.items[i]
		if drop(o) {
			gone(o)
			continue
		}
		q.items[n] = o
		n++
	}
	clear(q.items[n:])
	q.items = q.items[:n]
}

// removeFirst removes the oldest message for which match is true.
func (q *fifo) removeFirst(match func(*outMsg) bool) {
	for i := q.head; i < len(q.items); i++ {
		if match(q.items[i]) {
			copy(q.items[i:], q.items[i+1:])
			q.items[len(q.items)-1] = nil
			q.items = q.items[:len(q.items)-1]
			return
		}
	}
}
