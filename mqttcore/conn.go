package mqttcore

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/snwgw/snwgw/mqttcore/packet"
)

// A network connection has two goroutines:
//
//   - the reader (serve) owns the socket's read side, the bufio.Reader, the
//     CONNECT handshake, inbound topic aliases and the keep-alive deadline;
//     it handles every packet the client sends and writes the replies;
//   - the writer (writeLoop) waits for the engine's Notify, pulls
//     deliveries with Session.Next and writes them, and carries out
//     disconnects the engine or the listener ask for.
//
// Both write through wmu, which guards the output buffer, outbound topic
// aliases and the closing state; the engine is called with wmu held (never
// the other way round: the engine never calls back into a connection with
// a lock of its own held, see LOCKING.md). The output buffer comes from a
// pool and goes back after every flush, so an idle connection holds none.
//
// Closing is orderly (shut): a v5 DISCONNECT if there is a reason to give,
// then the write side is shut (FIN), then the reader discards what the
// client still sends until it closes or CloseTimeout passes, and only then
// is the socket closed, so a client that is still sending sees EOF rather
// than a reset.

// readBufferSize is the reader's buffer: large enough to take several
// small packets per system call, small enough for many idle connections.
const readBufferSize = 2048

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// errTooLarge reports a packet above the client's Maximum Packet Size; it
// is discarded unsent (MQTT 5 §3.1.2.11.4).
var errTooLarge = errors.New("mqttcore: packet above the client's maximum packet size")

// wireConn is one MQTT connection of a listener; it is the Consumer of its
// Session.
type wireConn struct {
	b   *Broker
	ls  *listener
	nc  net.Conn
	log *slog.Logger

	// Reader state.
	in        connReader
	br        *bufio.Reader
	keepAlive time.Duration // 1.5 × the keep-alive in effect; 0: none
	inAliases []string      // inbound topic alias → topic (v5)

	wake       chan struct{} // Notify: the engine has deliveries
	kick       chan struct{} // Disconnected: end the connection
	kickReason atomic.Uint32 // the reason of the first kick, + 1
	done       chan struct{} // closed by shut: the writer stops

	closing atomic.Bool // set (under wmu) by shut

	wmu         sync.Mutex
	version     packet.Version // set once with the CONNECT
	sess        *Session       // set once CONNACK is written
	connacked   bool
	clientMax   uint32 // the client's Maximum Packet Size; 0: none (v5)
	aliasMax    uint16 // the client's Topic Alias Maximum (v5)
	problemInfo bool   // the client accepts reason strings (v5)
	bw          *bufio.Writer
	werr        error // the first write error, or net.ErrClosed once closing
	unflushed   int   // bytes written since the last count
	pub         packet.PublishPacket
	alias       uint16
	outAliases  map[string]uint16
	acks        []packet.AckPacket // committed acknowledgements for the writer
	held        []Delivery         // deliveries waiting for a commit (holdLocked)
	ready       []Delivery         // held deliveries now committed, for the writer
	heldOut     int                // held batches the store has not handed back

	// ackSlots bounds the acknowledgements waiting for the store to
	// commit: a client that publishes faster than the disk writes is held
	// back at TCP instead of growing the store's backlog.
	ackSlots chan struct{}
}

// maxPendingAcks bounds a connection's acknowledgements waiting for a
// commit: enough to keep a group commit full, small enough to stay cheap.
const maxPendingAcks = 256

// connReader counts the bytes read for the broker's statistics.
type connReader struct{ c *wireConn }

func (r *connReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	if n > 0 {
		r.c.b.CountBytes(n, 0)
	}
	return n, err
}

func newWireConn(ls *listener, nc net.Conn) *wireConn {
	c := &wireConn{
		b: ls.b, ls: ls, nc: nc, log: ls.log,
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	c.in.c = c
	c.br = bufio.NewReaderSize(&c.in, readBufferSize)
	if c.b.Durable() {
		c.ackSlots = make(chan struct{}, maxPendingAcks)
	}
	return c
}

// Notify implements Consumer: wake the writer.
func (c *wireConn) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Disconnected implements Consumer: the writer sends the DISCONNECT (v5)
// and closes, so the engine is never blocked by a slow socket.
func (c *wireConn) Disconnected(reason ReasonCode) {
	c.kickReason.CompareAndSwap(0, uint32(reason)+1)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// connEnd says how a connection ends.
type connEnd struct {
	rc     packet.ReasonCode // the reason for a server DISCONNECT
	send   bool              // send a v5 DISCONNECT with rc
	will   bool              // publish the will
	expiry *uint32           // the client's new session expiry (v5 DISCONNECT)
}

// serve is the reader goroutine: handshake, packets, then the orderly end.
func (c *wireConn) serve() {
	end := c.run()
	if c.sess != nil {
		err := c.sess.Disconnect(DisconnectOptions{SendWill: end.will, SessionExpiry: end.expiry})
		if errors.Is(err, ErrProtocol) {
			// A DISCONNECT raising a session expiry of 0 (MQTT 5 §3.14.2.2.2).
			end.rc, end.send = packet.ProtocolError, true
		}
	}
	c.shut(end.rc, end.send)
	// Discard what the client still sends until it closes or the deadline
	// shut has set passes.
	_, _ = io.Copy(io.Discard, c.nc)
	_ = c.nc.Close()
	c.ls.remove(c)
}

// run reads the CONNECT and then every packet until the connection ends.
func (c *wireConn) run() connEnd {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.ls.opts.ConnectTimeout)); err != nil {
		return connEnd{}
	}
	p, err := packet.Read(c.br, 0, c.ls.opts.MaxPacketSize)
	if err != nil {
		if tlsHandshakeFailed(c.nc, err) {
			c.loginFailed("TLS handshake failed", "", "", err)
		}
		if errors.Is(err, packet.ErrUnsupportedVersion) {
			// The client's level is unknown: a 3.1.1 CONNACK (return code
			// 1) is what every version understands (MQTT 5 §3.1.2.2).
			c.refuse(packet.V311, packet.UnsupportedProtocolVersion)
		}
		c.log.Debug("connection closed before CONNECT", "remote", c.nc.RemoteAddr(), "err", err)
		return connEnd{}
	}
	if !c.connect(p.(*packet.ConnectPacket)) {
		return connEnd{}
	}
	return c.readLoop()
}

// refuse answers a CONNECT with a failing CONNACK.
func (c *wireConn) refuse(v packet.Version, rc packet.ReasonCode) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.version = v
	ack := &packet.ConnackPacket{ReasonCode: rc}
	if v == packet.V5 {
		ack.ReasonCode = fitReason(ack, rc, packet.UnspecifiedError)
	} else {
		switch rc {
		case packet.UnsupportedProtocolVersion, packet.ClientIdentifierNotValid, packet.BadUserNameOrPassword, packet.NotAuthorized:
		default:
			ack.ReasonCode = packet.ServerUnavailable
		}
	}
	_ = c.writeLocked(ack)
	c.flushLocked()
}

// fitReason returns rc if p (whose reason code field holds rc) may carry
// it, and fallback otherwise.
func fitReason(p packet.Packet, rc, fallback packet.ReasonCode) packet.ReasonCode {
	if _, err := packet.Size(p, packet.V5); err != nil {
		return fallback
	}
	return rc
}

// certIdentity returns the subject common name of a TLS client certificate
// that the handshake verified, or "" (plain TCP, no certificate). Any
// connection that reports its TLS state the way *tls.Conn does counts, so
// a transport layered over TLS (WebSocket over HTTPS) gets the same
// treatment without mqttcore knowing it.
func certIdentity(nc net.Conn) string {
	tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// loginFailed logs a refused login at warn level, so that an operator sees
// a misconfigured device or someone guessing passwords at the default
// level, with what identifies them: the address, the client id and the
// user name. Anyone who can reach a listener can cause these lines, so
// they share a broker-wide budget, and the next line after a flood says
// how many were left out.
func (c *wireConn) loginFailed(reason, clientID, username string, err error) {
	ok, suppressed := c.b.failedLogins.allow(time.Now())
	if !ok {
		return
	}
	args := []any{"remote", c.nc.RemoteAddr(), "client", clientID, "user", username, "reason", reason}
	if err != nil {
		args = append(args, "err", err)
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	c.log.Warn("mqtt login failed", args...)
}

// tlsHandshakeFailed reports whether err ended a TLS handshake the peer
// had started: a client certificate refused or missing, for one. A peer
// that connects and goes away (a port scan, a health check) is no failed
// login.
func tlsHandshakeFailed(nc net.Conn, err error) bool {
	tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	if !ok || tc.ConnectionState().HandshakeComplete {
		return false
	}
	return !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) &&
		!errors.Is(err, syscall.ECONNRESET)
}

// connect attaches the connection to its session and answers with
// CONNACK (MQTT 5 §3.1.4, §3.2); it reports whether the connection goes on.
func (c *wireConn) connect(cp *packet.ConnectPacket) bool {
	v5 := cp.Version == packet.V5
	props := &cp.Properties
	opts := ConnectOptions{ClientID: cp.ClientID, CleanStart: cp.CleanStart, Password: cp.Password, Consumer: c,
		Remote: c.nc.RemoteAddr(), Link: c.ls.opts.Name, Identity: certIdentity(c.nc)}
	if cp.Username != nil {
		opts.Username = *cp.Username
	}
	if c.ls.opts.UseIdentityAsUsername {
		if opts.Identity == "" {
			// Plain TCP, a certificate requested but not verified, or one
			// without a common name: nothing stands for the user name, and
			// the one the client sent must not be trusted in its place.
			c.loginFailed("no verified client certificate with a common name", cp.ClientID, opts.Username, nil)
			c.refuse(cp.Version, packet.NotAuthorized)
			return false
		}
		// The certificate is the credential; a password the client sent
		// anyway is not passed on.
		opts.Username, opts.Password, opts.Authenticated = opts.Identity, nil, true
	}
	var clientMax uint32
	var aliasMax uint16
	problemInfo := true
	if v5 {
		if props.AuthMethod != "" {
			// Enhanced authentication is not offered (MQTT 5 §4.12).
			c.refuse(cp.Version, packet.BadAuthenticationMethod)
			return false
		}
		if props.SessionExpiry != nil {
			opts.SessionExpiry = *props.SessionExpiry
		}
		if props.ReceiveMaximum != nil {
			opts.ReceiveMaximum = *props.ReceiveMaximum
		}
		if props.MaximumPacketSize != nil {
			clientMax = *props.MaximumPacketSize
		}
		if props.TopicAliasMaximum != nil {
			aliasMax = *props.TopicAliasMaximum
		}
		problemInfo = props.RequestProblemInfo == nil || *props.RequestProblemInfo == 1
	} else if !cp.CleanStart {
		if cp.ClientID == "" {
			// A 3.1.1 server may not invent an id for a session that is to
			// last (3.1.1 §3.1.3.1, [MQTT-3.1.3-8]).
			c.refuse(cp.Version, packet.ClientIdentifierNotValid)
			return false
		}
		opts.SessionExpiry = SessionExpiryNever
	}
	if w := cp.Will; w != nil {
		opts.Will = &Will{Message: Message{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}}
		if v5 {
			opts.Will.Properties = messageProps(&w.Properties)
			if w.Properties.WillDelay != nil {
				opts.Will.Delay = *w.Properties.WillDelay
			}
		}
	}
	keepAlive := cp.KeepAlive
	var serverKeepAlive *uint16
	if max := c.ls.opts.MaxKeepAlive; v5 && max > 0 && (keepAlive == 0 || keepAlive > max) {
		keepAlive = max
		serverKeepAlive = &keepAlive
	}

	sess, present, err := c.b.Connect(opts)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotAuthorized):
			c.loginFailed("not authorized", cp.ClientID, opts.Username, nil)
		case errors.Is(err, ErrInvalidClientID):
			c.loginFailed("client identifier refused", cp.ClientID, opts.Username, err)
		default:
			c.log.Debug("connect refused", "remote", c.nc.RemoteAddr(), "client", cp.ClientID, "err", err)
		}
		rc := packet.ReasonCode(ReasonFor(err))
		if rc == packet.ServerShuttingDown {
			rc = packet.ServerUnavailable
		}
		c.refuse(cp.Version, rc)
		return false
	}
	ack := &packet.ConnackPacket{SessionPresent: present}
	if v5 {
		ap := &ack.Properties
		ap.ReceiveMaximum = &c.b.opts.MaxInboundInflight
		ap.MaximumPacketSize = &c.ls.opts.MaxPacketSize
		if n := c.ls.opts.TopicAliasMaximum; n > 0 {
			m := uint16(n)
			ap.TopicAliasMaximum = &m
		}
		if cp.ClientID == "" {
			ap.AssignedClientID = sess.ClientID()
		}
		if e := sess.SessionExpiry(); e != opts.SessionExpiry {
			ap.SessionExpiry = &e
		}
		ap.ServerKeepAlive = serverKeepAlive
	}

	c.wmu.Lock()
	if c.closing.Load() {
		// The engine or the listener ended the connection already.
		c.wmu.Unlock()
		_ = sess.Disconnect(DisconnectOptions{SendWill: true})
		return false
	}
	c.version = cp.Version
	c.clientMax, c.aliasMax, c.problemInfo = clientMax, aliasMax, problemInfo
	err = c.writeLocked(ack)
	c.flushLocked()
	c.sess = sess
	c.connacked = err == nil
	if keepAlive > 0 {
		// MQTT 5 §3.1.2.10: one and a half times the keep-alive.
		c.keepAlive = time.Duration(keepAlive) * 1500 * time.Millisecond
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	c.wmu.Unlock()
	if err != nil {
		return false
	}
	c.log.Debug("client connected", "remote", c.nc.RemoteAddr(), "client", sess.ClientID(), "version", cp.Version, "present", present)
	// A Notify that came before c.sess was set found nothing to do.
	c.Notify()
	return true
}

// readLoop handles packets until the connection ends.
func (c *wireConn) readLoop() connEnd {
	for {
		if c.br.Buffered() == 0 && !c.idle() {
			return c.closedEnd()
		}
		p, err := packet.Read(c.br, c.version, c.ls.opts.MaxPacketSize)
		if c.closing.Load() {
			return c.closedEnd()
		}
		if err != nil {
			return c.readFailed(err)
		}
		if end, done := c.handle(p); done {
			return end
		}
	}
}

// idle runs before the reader blocks: it flushes the replies written so
// far, in one write, and arms the keep-alive. It reports false once the
// connection is closing.
func (c *wireConn) idle() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return false
	}
	c.flushLocked()
	if c.keepAlive > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive))
	}
	return true
}

// closedEnd is the end of a connection that shut while the reader was
// busy: a takeover or broker close (the engine has dealt with the session),
// a listener shutdown (no will, as when the broker closes) or a client too
// slow to take its data (the connection is lost: will).
func (c *wireConn) closedEnd() connEnd {
	r := c.kickReason.Load()
	return connEnd{will: r == 0}
}

func (c *wireConn) readFailed(err error) connEnd {
	switch {
	case errors.Is(err, io.EOF):
		c.log.Debug("client closed the connection", "client", c.sess.ClientID())
		return connEnd{will: true}
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("keep-alive timeout", "client", c.sess.ClientID())
		return connEnd{will: true, rc: packet.KeepAliveTimeout, send: true}
	case errors.Is(err, packet.ErrMalformed), errors.Is(err, packet.ErrProtocolError), errors.Is(err, packet.ErrPacketTooLarge):
		c.log.Debug("bad packet", "client", c.sess.ClientID(), "err", err)
		return connEnd{will: true, rc: packet.ReasonFor(err), send: true}
	}
	c.log.Debug("connection lost", "client", c.sess.ClientID(), "err", err)
	return connEnd{will: true}
}

// protocolEnd ends the connection over err (MQTT 5 §4.13): a v5 client is
// told why.
func protocolEnd(err error) connEnd {
	rc := packet.ReasonFor(err)
	if rc == packet.UnspecifiedError {
		rc = packet.ReasonCode(ReasonFor(err))
	}
	return connEnd{will: true, rc: rc, send: true}
}

// handle acts on one packet from the client; done reports the end of the
// connection.
func (c *wireConn) handle(p packet.Packet) (end connEnd, done bool) {
	var err error
	switch p := p.(type) {
	case *packet.PublishPacket:
		err = c.onPublish(p)
	case *packet.AckPacket:
		err = c.onAck(p)
	case *packet.SubscribePacket:
		err = c.onSubscribe(p)
	case *packet.UnsubscribePacket:
		err = c.onUnsubscribe(p)
	case *packet.PingreqPacket:
		err = c.reply(&packet.PingrespPacket{})
	case *packet.DisconnectPacket:
		end = connEnd{will: p.ReasonCode == packet.DisconnectWithWill}
		if c.version == packet.V5 {
			end.expiry = p.Properties.SessionExpiry
		}
		return end, true
	case *packet.AuthPacket:
		// No authentication method was agreed, so AUTH may not be sent
		// (MQTT 5 §4.12).
		err = packet.ProtocolError
	default:
		// A packet only a server sends (MQTT 5 §4.13).
		err = packet.ProtocolError
	}
	switch {
	case err == nil:
		return connEnd{}, false
	case errors.Is(err, ErrSessionClosed), c.closing.Load():
		return c.closedEnd(), true
	}
	c.log.Debug("protocol error", "client", c.sess.ClientID(), "err", err)
	return protocolEnd(err), true
}

// reply writes a packet; the reader flushes once it has no more input.
func (c *wireConn) reply(p packet.Packet) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.replyLocked(p)
}

// replyLocked writes p, leaving out its reason string and user
// properties if they would break the client's Maximum Packet Size (MQTT 5
// §3.1.2.11.4). A closing connection drops it silently.
func (c *wireConn) replyLocked(p packet.Packet) error {
	err := c.writeLocked(p)
	if errors.Is(err, errTooLarge) {
		if props := replyProps(p); props != nil {
			props.ReasonString, props.User = "", nil
			err = c.writeLocked(p)
		}
	}
	if errors.Is(err, errTooLarge) {
		c.log.Warn("reply above the client's maximum packet size dropped", "client", c.sess.ClientID(), "type", p.Type())
		return nil
	}
	if c.closing.Load() {
		return nil
	}
	return err
}

func replyProps(p packet.Packet) *packet.Properties {
	switch p := p.(type) {
	case *packet.AckPacket:
		return &p.Properties
	case *packet.SubackPacket:
		return &p.Properties
	case *packet.UnsubackPacket:
		return &p.Properties
	case *packet.DisconnectPacket:
		return &p.Properties
	}
	return nil
}

// reasonString is the reason string of a failure for a client that asked
// for problem information (MQTT 5 §3.1.2.11.7).
func (c *wireConn) reasonString(rc packet.ReasonCode, err error) string {
	if !c.problemInfo || !rc.IsError() || err == nil {
		return ""
	}
	return err.Error()
}

// onPublish handles an inbound PUBLISH (MQTT 5 §3.3.4, §4.3).
func (c *wireConn) onPublish(p *packet.PublishPacket) error {
	v5 := c.version == packet.V5
	topic := p.Topic
	if v5 {
		if len(p.Properties.SubscriptionIDs) > 0 {
			return packet.ProtocolError // [MQTT-3.3.4-6]
		}
		if a := p.Properties.TopicAlias; a != nil {
			if int(*a) > c.ls.opts.TopicAliasMaximum {
				return packet.TopicAliasInvalid // [MQTT-3.3.2-9]
			}
			if c.inAliases == nil {
				c.inAliases = make([]string, c.ls.opts.TopicAliasMaximum)
			}
			if topic == "" {
				if topic = c.inAliases[*a-1]; topic == "" {
					return packet.ProtocolError // an alias never set (MQTT 5 §3.3.2.3.4)
				}
			} else {
				c.inAliases[*a-1] = topic
			}
		}
	}
	m := Message{Topic: topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain}
	if v5 {
		m.Properties = messageProps(&p.Properties)
	}
	var err error
	if p.QoS == 2 {
		err = c.sess.PublishQoS2(p.PacketID, m)
	} else {
		err = c.sess.Publish(m)
	}
	rc := packet.ReasonCode(ReasonFor(err))
	switch {
	case err == nil:
	case errors.Is(err, ErrNotAuthorized):
		// Dropped; a v5 client with QoS > 0 learns why, a 3.1.1 client gets
		// a positive acknowledgement (3.1.1 §3.3.5).
		if !v5 {
			rc = packet.Success
		}
	case errors.Is(err, ErrInvalidTopic) && v5 && p.QoS > 0:
		// Answered with 0x90 in the acknowledgement.
	default:
		return err
	}
	switch p.QoS {
	case 1:
		return c.ack(packet.AckPacket{PacketType: packet.Puback, PacketID: p.PacketID, ReasonCode: rc,
			Properties: packet.Properties{ReasonString: c.reasonString(rc, err)}})
	case 2:
		return c.ack(packet.AckPacket{PacketType: packet.Pubrec, PacketID: p.PacketID, ReasonCode: rc,
			Properties: packet.Properties{ReasonString: c.reasonString(rc, err)}})
	}
	return nil
}

// ack sends an acknowledgement of the client's publication. With a durable
// store it waits, off the reader, until what the publication changed is
// committed: a client never holds a PUBACK, PUBREC or PUBCOMP for a message
// a crash could still lose. Every acknowledgement takes that path, so they
// stay in the order of the packets they answer (MQTT 5 §4.6).
func (c *wireConn) ack(p packet.AckPacket) error {
	if c.ackSlots == nil {
		return c.reply(&p)
	}
	select {
	case c.ackSlots <- struct{}{}:
	case <-c.done:
		return ErrSessionClosed
	}
	c.b.WhenDurable(func() {
		<-c.ackSlots
		c.wmu.Lock()
		c.acks = append(c.acks, p)
		c.wmu.Unlock()
		c.Notify()
	})
	return nil
}

// writeAcksLocked writes the acknowledgements and held deliveries whose
// changes are committed.
func (c *wireConn) writeAcksLocked() {
	for i := range c.acks {
		_ = c.replyLocked(&c.acks[i])
	}
	clear(c.acks)
	c.acks = c.acks[:0]
	for i := range c.ready {
		c.writeDeliveryLocked(&c.ready[i])
	}
	clear(c.ready)
	c.ready = c.ready[:0]
}

// onAck maps the acknowledgements of the QoS flows onto the engine (MQTT 5
// §4.3.2, §4.3.3). An acknowledgement of an unknown packet id is ignored,
// as a client may repeat one after a reconnect.
func (c *wireConn) onAck(p *packet.AckPacket) error {
	var err error
	switch p.PacketType {
	case packet.Puback:
		err = c.sess.Ack(p.PacketID)
	case packet.Pubrec:
		if p.ReasonCode.IsError() {
			err = c.sess.Complete(p.PacketID)
			break
		}
		rc := packet.Success
		if err = c.sess.Received(p.PacketID); errors.Is(err, ErrPacketIDNotFound) {
			rc, err = packet.PacketIdentifierNotFound, nil
		}
		if err == nil {
			// PUBREL only once the PUBREC state is committed: a restart
			// must not send the PUBLISH again after it.
			return c.ack(packet.AckPacket{PacketType: packet.Pubrel, PacketID: p.PacketID, ReasonCode: rc})
		}
	case packet.Pubrel:
		rc := packet.Success
		if err = c.sess.Release(p.PacketID); errors.Is(err, ErrPacketIDNotFound) {
			rc, err = packet.PacketIdentifierNotFound, nil
			if c.version != packet.V5 {
				// 3.1.1 has no reason code: completing an unknown id is harmless.
				rc = packet.Success
			}
		}
		if err == nil {
			// The release is committed before PUBCOMP, or a restart would
			// still hold the id and take the client's next PUBLISH with it
			// for a repeat.
			return c.ack(packet.AckPacket{PacketType: packet.Pubcomp, PacketID: p.PacketID, ReasonCode: rc})
		}
	case packet.Pubcomp:
		err = c.sess.Complete(p.PacketID)
	}
	if errors.Is(err, ErrPacketIDNotFound) {
		c.log.Debug("acknowledgement of an unknown packet id", "client", c.sess.ClientID(), "type", p.PacketType, "id", p.PacketID)
		return nil
	}
	return err
}

// onSubscribe handles SUBSCRIBE (MQTT 5 §3.8.4). The SUBACK is written
// with wmu held across Subscribe, so it precedes the retained messages the
// subscription queues.
func (c *wireConn) onSubscribe(p *packet.SubscribePacket) error {
	var id uint32
	if ids := p.Properties.SubscriptionIDs; len(ids) > 0 {
		id = ids[0]
	}
	subs := make([]Subscription, len(p.Subscriptions))
	for i, s := range p.Subscriptions {
		subs[i] = Subscription{Filter: s.Filter, QoS: s.QoS, NoLocal: s.NoLocal,
			RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling, ID: id}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	codes, err := c.sess.Subscribe(subs...)
	if err != nil {
		return err
	}
	ack := &packet.SubackPacket{PacketID: p.PacketID, ReasonCodes: make([]packet.ReasonCode, len(codes))}
	for i, rc := range codes {
		ack.ReasonCodes[i] = packet.ReasonCode(rc)
	}
	return c.replyLocked(ack)
}

// onUnsubscribe handles UNSUBSCRIBE (MQTT 5 §3.10.4).
func (c *wireConn) onUnsubscribe(p *packet.UnsubscribePacket) error {
	codes, err := c.sess.Unsubscribe(p.Filters...)
	if err != nil {
		return err
	}
	ack := &packet.UnsubackPacket{PacketID: p.PacketID, ReasonCodes: make([]packet.ReasonCode, len(codes))}
	for i, rc := range codes {
		ack.ReasonCodes[i] = packet.ReasonCode(rc)
	}
	return c.reply(ack)
}

// messageProps takes the application message properties of a PUBLISH or
// a will (MQTT 5 §3.3.2.3, §3.1.3.2).
func messageProps(p *packet.Properties) MessageProperties {
	m := MessageProperties{
		PayloadFormat: p.PayloadFormat, MessageExpiry: p.MessageExpiry, ContentType: p.ContentType,
		ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData,
	}
	if len(p.User) > 0 {
		m.User = make([]UserProperty, len(p.User))
		for i, u := range p.User {
			m.User[i] = UserProperty(u)
		}
	}
	return m
}
