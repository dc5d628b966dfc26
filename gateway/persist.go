package gateway

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// SessionStore keeps MQTT-SN session state across restarts. Values are opaque bytes the gateway encodes.
//
// The gateway calls SaveSession when a session's record changes (connect,
// registration, short-topic subscription, sleep, Will update, address
// change, disconnect) and DeleteSession when the session ends; never per
// message. Calls come from the shard goroutines, several at once, so an
// implementation must be safe for concurrent use and must not block for
// long: a durable one queues the write for its next group commit. data
// belongs to the store once SaveSession is called.
//
// LoadSessions replays every stored record, once, from Gateway.Restore; data
// need only be valid during the call to fn. An error from fn ends the
// replay and is returned.
//
// Messages are not part of the record: those waiting for or in flight to a
// client live in its broker session, which the broker's own store keeps.
type SessionStore interface {
	SaveSession(clientID string, data []byte) error
	DeleteSession(clientID string) error
	LoadSessions(fn func(clientID string, data []byte) error) error
}

// Record states. An awake client is stored as asleep: its awake window does
// not survive a restart, and it asks again with PINGREQ.
const (
	recActive       = "active"
	recAsleep       = "asleep"
	recDisconnected = "disconnected"
)

// recordVersion is the version of the record layout; a record of another
// version is refused at Restore rather than misread.
const recordVersion = 1

// maxRecordSize bounds a record Restore will decode, so a corrupt store
// cannot make it allocate without limit. Registrations are bounded far
// below it (MaxTopicBytesPerClient).
const maxRecordSize = 16 << 20

// sessionRecord is the stored form of a session. JSON, because records
// change on connect, registration and sleep, not per message, and a
// readable record is worth more than a few bytes.
type sessionRecord struct {
	Version  int    `json:"v"`
	ClientID string `json:"client_id"`
	// Link is the link's Name; Addr the client's address on it in its
	// String form, parsed back by the link (Link.ParseAddr); Node the
	// Wireless Node Id of a client behind a forwarder.
	Link      string        `json:"link"`
	Addr      string        `json:"addr,omitempty"`
	Node      []byte        `json:"node,omitempty"`
	Clean     bool          `json:"clean,omitempty"`
	KeepAlive uint32        `json:"keepalive,omitempty"` // seconds
	Sleep     uint32        `json:"sleep,omitempty"`     // seconds
	State     string        `json:"state"`
	Topics    []recordTopic `json:"topics,omitempty"`
	NextID    uint16        `json:"next_id,omitempty"`
	Refused   []string      `json:"refused,omitempty"`
	Shorts    []uint16      `json:"shorts,omitempty"`
	Will      *recordWill   `json:"will,omitempty"`
}

// recordTopic is a registered topic id; Known says the client holds it.
type recordTopic struct {
	ID    uint16 `json:"id"`
	Name  string `json:"name"`
	Known bool   `json:"known,omitempty"`
}

type recordWill struct {
	Topic   string `json:"topic"`
	Message []byte `json:"message,omitempty"`
	QoS     byte   `json:"qos,omitempty"`
	Retain  bool   `json:"retain,omitempty"`
}

// errBadRecord wraps every reason a stored record is refused.
var errBadRecord = errors.New("gateway: bad session record")

func (r *sessionRecord) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // every field marshals; a failure is a bug here
	}
	return b
}

// decodeRecord reads and checks a stored record: everything in it is
// validated as if a client had sent it, since a store may be corrupt.
func decodeRecord(data []byte) (*sessionRecord, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadRecord, len(data))
	}
	r := new(sessionRecord)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	// Empty and absent are the same to the gateway; one form keeps
	// decode → encode → decode stable.
	r.Node = nilIfEmpty(r.Node)
	r.Topics = nilIfEmpty(r.Topics)
	r.Refused = nilIfEmpty(r.Refused)
	r.Shorts = nilIfEmpty(r.Shorts)
	if r.Will != nil {
		r.Will.Message = nilIfEmpty(r.Will.Message)
	}
	bad := func(format string, args ...any) (*sessionRecord, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{errBadRecord}, args...)...)
	}
	switch {
	case r.Version != recordVersion:
		return bad("version %d", r.Version)
	case r.ClientID == "", len(r.ClientID) > math.MaxUint16, !utf8.ValidString(r.ClientID), containsNUL(r.ClientID):
		return bad("client id %q", r.ClientID)
	case !utf8.ValidString(r.Link), !utf8.ValidString(r.Addr):
		return bad("link or address not UTF-8")
	case len(r.Node) > 255:
		return bad("node id of %d bytes", len(r.Node))
	case r.State != recActive && r.State != recAsleep && r.State != recDisconnected:
		return bad("state %q", r.State)
	case r.State == recDisconnected && r.Clean:
		return bad("a clean session kept disconnected")
	case r.KeepAlive > math.MaxUint16, r.Sleep > math.MaxUint16:
		return bad("keep-alive %d or sleep %d out of range", r.KeepAlive, r.Sleep)
	case len(r.Topics) > maxTopicID, len(r.Refused) > maxTopicID, len(r.Shorts) > math.MaxUint16+1:
		return bad("too many entries")
	case r.NextID > maxTopicID:
		return bad("next topic id %d", r.NextID)
	}
	ids := make(map[uint16]struct{}, len(r.Topics))
	names := make(map[string]struct{}, len(r.Topics))
	for _, t := range r.Topics {
		if t.ID == 0 || t.ID > maxTopicID {
			return bad("topic id %d", t.ID)
		}
		if err := validTopicName(t.Name); err != nil {
			return bad("topic %d: %v", t.ID, err)
		}
		if _, dup := ids[t.ID]; dup {
			return bad("topic id %d twice", t.ID)
		}
		if _, dup := names[t.Name]; dup {
			return bad("topic %q twice", t.Name)
		}
		ids[t.ID], names[t.Name] = struct{}{}, struct{}{}
	}
	for _, name := range r.Refused {
		if err := validTopicName(name); err != nil {
			return bad("refused topic: %v", err)
		}
	}
	if w := r.Will; w != nil {
		if err := validTopicName(w.Topic); err != nil {
			return bad("will: %v", err)
		}
		if w.QoS > 2 {
			return bad("will QoS %d", w.QoS)
		}
	}
	return r, nil
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// record returns what is stored of s.
func (s *session) record() *sessionRecord {
	r := &sessionRecord{
		Version:   recordVersion,
		ClientID:  s.clientID,
		Node:      s.node,
		Clean:     !s.persistent,
		KeepAlive: uint32(s.keepAlive / time.Second),
		Sleep:     uint32(s.sleepFor / time.Second),
		NextID:    s.reg.next,
	}
	switch s.state {
	case stActive:
		r.State = recActive
	case stAsleep, stAwake:
		r.State = recAsleep
	default:
		r.State = recDisconnected
	}
	if s.state != stDisconnected && s.key.link != nil {
		r.Link, r.Addr = s.key.link.Name, s.addr.String()
	}
	s.reg.each(func(id uint16, e regEntry) {
		r.Topics = append(r.Topics, recordTopic{ID: id, Name: e.name, Known: e.known})
	})
	slices.SortFunc(r.Topics, func(a, b recordTopic) int { return cmp.Compare(a.ID, b.ID) })
	for name := range s.reg.refused {
		r.Refused = append(r.Refused, name)
	}
	slices.Sort(r.Refused)
	for id := range s.shorts {
		r.Shorts = append(r.Shorts, id)
	}
	slices.Sort(r.Shorts)
	if s.willTopic != "" {
		r.Will = &recordWill{Topic: s.willTopic, Message: s.willMsg, QoS: s.willQoS, Retain: s.willRetain}
	}
	return r
}

// save writes the session's record if it changed since the last write.
// It runs once at the end of every event the shard handles for the
// session, so a datagram that changes nothing costs one test of a flag.
func (s *session) save() {
	if !s.changed && !s.reg.dirty {
		return
	}
	if s.state == stConnecting {
		return // saved when the connect completes or is abandoned
	}
	s.changed, s.reg.dirty = false, false
	st := s.opts().Store
	if st == nil || s.gone {
		return
	}
	s.g().storeErr(st.SaveSession(s.clientID, s.record().encode()), s.clientID)
}

// storeErr counts and logs a failed store call; the session carries on
// in memory, and the next change writes it whole again.
func (g *Gateway) storeErr(err error, clientID string) {
	if err == nil {
		return
	}
	g.stats.storeErrors.Add(1)
	g.logProtocol("gateway: session store failed", "client", clientID, "err", err)
}

// Restore recreates the sessions the SessionStore holds, each on its link
// and at its address, with its broker session attached again so that the
// messages the broker kept wait in its queue: a sleeping client that wakes
// with PINGREQ(ClientId) gets them without a new CONNECT, and an active one
// goes on publishing with its topic ids, supervised by its keep-alive from
// now. A session whose link is no longer served, or whose address the link
// cannot parse (a DTLS association does not outlive the process), is
// dropped and logged if it was a CleanSession=1 session, and otherwise kept
// disconnected, for a CONNECT with CleanSession=0, as after a DISCONNECT.
//
// With Options.Store set, links added with Serve do not read until Restore
// has run, so call Serve for every link first and then Restore, once; with
// no link served it refuses (ErrInvalidOptions) rather than drop every
// session. Without a store Restore does nothing. A record that cannot be
// read (damaged, or written by a newer version) stops the restore with an
// error naming its client, and nothing is changed.
func (g *Gateway) Restore() error {
	var err error
	g.restoreOnce.Do(func() {
		defer close(g.ready)
		err = g.restore()
	})
	return err
}

func (g *Gateway) restore() error {
	st := g.opts.Store
	g.mu.Lock()
	links := make(map[string]*link, len(g.links))
	for _, l := range g.links {
		links[l.Name] = l
	}
	g.mu.Unlock()
	if len(links) == 0 {
		// Every session would be dropped for want of its link.
		return fmt.Errorf("%w: Restore before any link is served", ErrInvalidOptions)
	}

	// Records are decoded during the replay but handed to the shards only
	// after it: a store may hold a read transaction open for the replay,
	// and the shards write to it (and to the broker's store) as they go.
	type restored struct {
		rec   *sessionRecord
		key   addrKey
		addr  net.Addr
		moved bool // kept disconnected: its link or address is gone
	}
	var list []restored
	var dropped []string
	err := st.LoadSessions(func(clientID string, data []byte) error {
		rec, err := decodeRecord(data)
		if err == nil && rec.ClientID != clientID {
			err = fmt.Errorf("%w: stored under %q", errBadRecord, clientID)
		}
		if err != nil {
			// Dropping it would end the broker session too, with whatever
			// is queued for the sensor: a record from a newer version, or a
			// damaged one, stops the restore instead.
			return fmt.Errorf("gateway: the stored session of %q cannot be read (%w); nothing was changed: "+
				"run the snwgw that wrote it, or restore the data file from a backup", clientID, err)
		}
		if rec.State == recDisconnected {
			list = append(list, restored{rec: rec})
			return nil
		}
		var key addrKey
		var addr net.Addr
		l := links[rec.Link]
		if l == nil {
			err = fmt.Errorf("link %q is not served", rec.Link)
		} else {
			key, addr, err = l.resolve(rec.Addr, rec.Node)
		}
		switch {
		case err == nil:
			list = append(list, restored{rec: rec, key: key, addr: addr})
		case rec.Clean:
			g.log.Info("gateway: restored session dropped: its link or address is gone", "client", clientID, "link", rec.Link, "addr", rec.Addr, "err", err)
			dropped = append(dropped, clientID)
		default:
			// A CleanSession=0 session outlives its connection anyway: it
			// waits for a CONNECT, on any link, as after a DISCONNECT.
			g.log.Info("gateway: restored session kept disconnected: its link or address is gone", "client", clientID, "link", rec.Link, "addr", rec.Addr, "err", err)
			rec.State = recDisconnected
			list = append(list, restored{rec: rec, moved: true})
		}
		return nil
	})
	for _, id := range dropped {
		g.storeErr(st.DeleteSession(id), id)
		g.endBrokerSession(id)
	}
	for _, r := range list {
		g.shardFor(r.rec.ClientID).post(event{kind: evRun, fn: func(sh *shard) { sh.restore(r.rec, r.key, r.addr, r.moved) }})
	}
	// Wait until every shard has restored its share before the links read.
	done := make(chan struct{}, len(g.shards))
	for _, sh := range g.shards {
		sh.post(event{kind: evRun, fn: func(*shard) { done <- struct{}{} }})
	}
	for range g.shards {
		select {
		case <-done:
		case <-g.closing:
			return ErrClosed
		}
	}
	g.log.Info("gateway: sessions restored", "sessions", len(list), "dropped", len(dropped))
	if err != nil {
		return fmt.Errorf("gateway: loading sessions: %w", err)
	}
	return nil
}

// endBrokerSession ends the broker session of a client whose gateway
// session was dropped, so its queue does not wait out the expiry for a
// client that cannot come back to it.
func (g *Gateway) endBrokerSession(clientID string) {
	bs, _, err := g.broker.Connect(mqttcore.ConnectOptions{ClientID: clientID, CleanStart: true,
		Consumer: discardConsumer{}, Authenticated: true})
	if err == nil {
		bs.Disconnect(mqttcore.DisconnectOptions{})
	}
}

// resolve turns a stored address back into the key and net.Addr the read
// loop would have made for a datagram from it.
func (l *link) resolve(addr string, node []byte) (addrKey, net.Addr, error) {
	key := addrKey{link: l, node: string(node)}
	if l.udp != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return addrKey{}, nil, err
		}
		key.ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		return key, net.UDPAddrFromAddrPort(key.ap), nil
	}
	if l.ParseAddr == nil {
		return addrKey{}, nil, fmt.Errorf("link %q cannot parse addresses", l.Name)
	}
	a, err := l.ParseAddr(addr)
	if err != nil {
		return addrKey{}, nil, err
	}
	key.str = a.String()
	return key, a, nil
}

// restore recreates one stored session on this shard; moved says its
// record must be written again, now disconnected.
func (sh *shard) restore(rec *sessionRecord, key addrKey, addr net.Addr, moved bool) {
	g := sh.g
	if sh.byID[rec.ClientID] != nil {
		return
	}
	g.sessions.Add(1)
	s := sh.newSession(rec.ClientID)
	s.persistent = !rec.Clean
	s.keepAlive = time.Duration(rec.KeepAlive) * time.Second
	s.sleepFor = min(time.Duration(rec.Sleep)*time.Second, s.opts().MaxSleepDuration)
	for _, t := range rec.Topics {
		s.reg.put(t.ID, t.Name, t.Known)
	}
	// Restored names count against the bounds, even above them (a bound
	// lowered since): they only stop new registrations.
	g.topicBytes.Add(int64(s.reg.bytes))
	s.reg.next = rec.NextID
	for _, name := range rec.Refused {
		s.reg.refuse(name)
	}
	s.reg.dirty = false
	if len(rec.Shorts) > 0 {
		s.shorts = make(map[uint16]struct{}, len(rec.Shorts))
		for _, id := range rec.Shorts {
			s.shorts[id] = struct{}{}
		}
	}
	if w := rec.Will; w != nil {
		s.willTopic, s.willMsg, s.willQoS, s.willRetain = w.Topic, w.Message, w.QoS, w.Retain
	}
	now := time.Now()
	if rec.State == recDisconnected {
		s.state, s.goneAt = stDisconnected, now
		s.changed = moved
		s.reschedule()
		s.save()
		return
	}
	s.state = stActive
	if rec.State == recAsleep {
		s.state = stAsleep
	}
	// Supervision starts afresh: the client gets a whole keep-alive period
	// (or sleep) from the restart, whatever it had used up before.
	s.lastHeard = now
	s.moveIP(key, addr) // counted, never refused: it was admitted before
	s.key, s.addr, s.node = key, addr, rec.Node
	bs, present, err := s.connectBroker(false)
	if err != nil {
		g.log.Warn("gateway: restored session dropped: refused by the broker", "client", s.clientID, "err", err)
		s.remove()
		return
	}
	if !present {
		g.log.Warn("gateway: restored session had no broker session: its subscriptions and queued messages are lost", "client", s.clientID)
	}
	s.bs = bs
	s.rebind(key, addr, rec.Node)
	s.changed = false
	s.reschedule()
}

// connectBroker attaches the session to its broker session. With a
// SessionStore every broker session is a stored one while its MQTT-SN
// session lives, clean or not, so that what it queued survives a restart
// with it; it ends with expiry 0 when the MQTT-SN session ends
// (endBroker). cleanStart discards what the broker kept, for
// CleanSession=1; a restored session never asks for it.
func (s *session) connectBroker(cleanStart bool) (*mqttcore.Session, bool, error) {
	o := s.opts()
	var expiry uint32
	if s.persistent || o.Store != nil {
		expiry = uint32(min(o.SessionExpiry/time.Second, math.MaxUint32-1))
	}
	opts := mqttcore.ConnectOptions{
		ClientID:       s.clientID,
		CleanStart:     cleanStart,
		SessionExpiry:  expiry,
		ReceiveMaximum: 1,
		Consumer:       s,
		// MQTT-SN 1.2 carries no credentials: the gateway admitted the
		// client, and the broker's authorizer judges only what it may
		// publish and subscribe to.
		Link:          s.key.link.Name,
		Identity:      peerIdentity(s.addr),
		Authenticated: true,
	}
	// An active client gets the broker's queue and its policy; the sleep
	// buffer applies only while it sleeps (spec-interpretation #27).
	if s.state == stAsleep {
		opts.MaxQueued, opts.DropOldest = o.SleepBuffer, o.SleepBufferPolicy == DropOldest
	}
	return s.g().broker.Connect(opts)
}

// endBroker ends the broker session for good: the MQTT-SN session is over
// (a clean client's DISCONNECT, a lost clean client, CleanSession=1).
func (s *session) endBroker() {
	if s.bs != nil {
		var zero uint32
		s.bs.Disconnect(mqttcore.DisconnectOptions{SessionExpiry: &zero})
		s.bs = nil
	}
}

// Acknowledgements held for a durable broker store.

// heldAck is a PUBACK, PUBREC or PUBCOMP waiting for the broker's store to
// commit what it acknowledges.
type heldAck struct {
	s       *session
	typ     mqttsn.MsgType
	topicID uint16
	msgID   uint16
	rc      mqttsn.ReturnCode
	// commit, when not 0, makes this no acknowledgement but the store's
	// word that the session's held delivery (holdForCommit) may go on.
	commit uint32
}

// maxHeldAcks bounds the acknowledgements a shard holds for the store: a
// client that publishes faster than the disk commits is not answered,
// and repeats its message as over a lossy link, instead of growing the
// backlog without bound.
const maxHeldAcks = shardInbox

// ackPub acknowledges a client's PUBLISH or PUBREL. With a durable broker
// store the acknowledgement waits until the store has committed what it
// acknowledges (mqttcore.Broker.WhenDurable), so a message a client was
// told is safe cannot be lost to a power cut; every acknowledgement takes
// that path, so they stay in order. Otherwise it goes out at once.
func (s *session) ackPub(typ mqttsn.MsgType, topicID, msgID uint16, rc mqttsn.ReturnCode) {
	g := s.g()
	if !g.durable {
		s.sendAck(typ, topicID, msgID, rc)
		return
	}
	sh := s.sh
	sh.acksHeld.Add(1)
	a := heldAck{s: s, typ: typ, topicID: topicID, msgID: msgID, rc: rc}
	g.broker.WhenDurable(func() { sh.release(a) })
}

func (s *session) sendAck(typ mqttsn.MsgType, topicID, msgID uint16, rc mqttsn.ReturnCode) {
	switch typ {
	case mqttsn.TypePubAck:
		s.send(&mqttsn.PubAck{TopicID: topicID, MsgID: msgID, ReturnCode: rc})
	case mqttsn.TypePubRec:
		s.send(&mqttsn.PubRec{MsgID: msgID})
	case mqttsn.TypePubComp:
		s.send(&mqttsn.PubComp{MsgID: msgID})
	}
}

// release hands a committed acknowledgement to the shard. It runs on the
// store's goroutine and never blocks.
func (sh *shard) release(a heldAck) {
	sh.wakeMu.Lock()
	sh.acks = append(sh.acks, a)
	sh.wakeMu.Unlock()
	select {
	case sh.wakeCh <- struct{}{}:
	default:
	}
}

// sendHeld sends the committed acknowledgements, in commit order.
func (sh *shard) sendHeld(acks []heldAck) {
	for i := range acks {
		a := &acks[i]
		sh.acksHeld.Add(-1)
		switch {
		case a.s.gone:
		case a.commit != 0:
			a.s.onCommitted(a.commit)
		default:
			a.s.sendAck(a.typ, a.topicID, a.msgID, a.rc)
		}
		acks[i] = heldAck{}
	}
}
