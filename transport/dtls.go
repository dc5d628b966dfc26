package transport

import (
	"container/list"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/logging"
	"github.com/pion/transport/v5/deadline"
	"golang.org/x/crypto/cryptobyte"
)

// DTLS defaults.
const (
	// DefaultDTLSHandshakeTimeout bounds a whole handshake, cookie exchange
	// included. Constrained devices are slow at public-key operations, so
	// the bound is generous; flooding is held off by the cookie exchange,
	// MaxUnverified and MaxPendingHandshakes.
	DefaultDTLSHandshakeTimeout = 10 * time.Second
	// DefaultDTLSMaxPending bounds the handshakes in progress at once
	// whose client has echoed its cookie.
	DefaultDTLSMaxPending = 256
	// DefaultDTLSMaxPendingPerIP bounds the handshakes in progress from one
	// IP address, so that one host cannot take every pending slot.
	DefaultDTLSMaxPendingPerIP = 8
	// DefaultDTLSIdleTimeout closes an association that has received
	// nothing for this long. MQTT-SN keep-alive (PINGREQ) keeps an active
	// client's association open; a sleeping client handshakes again when it
	// wakes.
	DefaultDTLSIdleTimeout = 10 * time.Minute
	// DefaultDTLSMaxAssociations bounds the associations, established or
	// with a pending handshake, that the listener holds.
	DefaultDTLSMaxAssociations = 10000
	// DefaultDTLSMaxUnverified bounds the handshakes waiting for their
	// client to echo its cookie.
	DefaultDTLSMaxUnverified = 1024
	// DefaultDTLSQueueLen bounds the decrypted packets waiting for ReadFrom.
	DefaultDTLSQueueLen = 1024

	// assocQueueLen bounds the records of one association waiting for its
	// DTLS state machine; a handshake flight is a handful of records.
	assocQueueLen = 64
	// maxDTLSPlaintext is the largest plaintext of a DTLS record (RFC 6347
	// §4.1 via RFC 5246 §6.2.1: 2^14 octets).
	maxDTLSPlaintext = 1 << 14
	// maxUDPDatagram is the largest UDP payload.
	maxUDPDatagram = 65535
)

// ErrNoAssociation is returned by DTLSConn.WriteTo for a peer that has no
// established DTLS association (never had one, or it was closed); the
// packet was not sent. DTLS has no broadcast either.
var ErrNoAssociation = errors.New("transport: no DTLS association with peer")

// IdentityKind tells how a DTLS peer proved its identity.
type IdentityKind uint8

// Ways a DTLS peer authenticates.
const (
	IdentityPSK         IdentityKind = iota + 1 // a pre-shared key; Identity is the PSK identity
	IdentityCertificate                         // an X.509 certificate; Identity is its subject CN
)

// String names the kind as it appears in logs and ACL files.
func (k IdentityKind) String() string {
	switch k {
	case IdentityPSK:
		return "psk"
	case IdentityCertificate:
		return "cert"
	}
	return "none"
}

// DTLSAddr is the address of one DTLS association: the peer's UDP address
// and the identity it proved in the handshake. It is comparable, so the
// gateway can key sessions by it; two associations from the same UDP
// address with different identities are different peers.
type DTLSAddr struct {
	AddrPort netip.AddrPort
	Kind     IdentityKind
	// Identity is the PSK identity or the certificate subject's common
	// name (the whole subject when the CN is empty).
	Identity string
}

// Network implements net.Addr.
func (DTLSAddr) Network() string { return "dtls" }

// PeerIdentity returns what the handshake proved: the PSK identity or the
// certificate subject. The gateway, which does not import this package,
// finds it through this method for access control.
func (a DTLSAddr) PeerIdentity() string { return a.Identity }

// String implements net.Addr: "psk:sensor-1@192.0.2.7:5000".
func (a DTLSAddr) String() string {
	return a.Kind.String() + ":" + a.Identity + "@" + a.AddrPort.String()
}

// DTLSOptions configures a DTLS listener. The zero value of a field
// selects its default. At least one of PSK and Certificates is required.
type DTLSOptions struct {
	// Network is "udp" (default), "udp4" or "udp6", as for UDPOptions.
	Network string
	// Addr is "host:port" to listen on, for example ":8883". Required.
	Addr string

	// PSK maps PSK identities to keys (see LoadPSKFile). With PSK set the
	// listener offers the PSK cipher suites.
	PSK map[string][]byte
	// PSKIdentityHint is sent to clients in PSK handshakes (optional).
	PSKIdentityHint string

	// Certificates are the server's certificate chains with their keys
	// (see LoadDTLSCertificates). With them the listener offers the ECDHE
	// certificate cipher suites.
	Certificates []tls.Certificate
	// ClientCAs, when set, makes a client certificate signed by one of
	// these CAs mandatory for certificate handshakes. PSK handshakes are
	// authenticated by their key and need no certificate.
	ClientCAs *x509.CertPool

	// HandshakeTimeout bounds each handshake (default 10s).
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes bounds the handshakes in progress whose client
	// has echoed the cookie of its HelloVerifyRequest, and so receives at
	// its address; a ClientHello beyond it is dropped and counted
	// (default 256). The client sends it again, and may find a slot then.
	MaxPendingHandshakes int
	// MaxPendingPerIP bounds those handshakes per IP address (default 8).
	MaxPendingPerIP int
	// MaxAssociations bounds the associations held at once, pending ones
	// included; a ClientHello beyond it is dropped and counted (default
	// 10000).
	MaxAssociations int
	// MaxUnverified bounds the handshakes waiting for their client to
	// echo its cookie. They hold no pending slot; when they are this many,
	// a new one replaces the oldest, so that spoofed ClientHellos, which
	// are never answered, cannot keep a real client out (default 1024).
	MaxUnverified int
	// IdleTimeout closes an established association that has received
	// nothing for this long (default 10m).
	IdleTimeout time.Duration
	// QueueLen bounds the decrypted packets not yet read by ReadFrom;
	// packets beyond it are dropped and counted (default 1024).
	QueueLen int
	// MTU is the largest datagram the listener sends during handshakes;
	// longer flights are fragmented (default 1200, pion's default).
	MTU int

	// Admit, if set, is asked before a datagram from an unknown sender
	// may start a handshake; false drops it and counts it. It is called
	// from the read loop and must not block: a per-address rate limiter
	// fits here.
	Admit func(netip.AddrPort) bool
	// Logger receives handshake failures and association reports
	// (default: discard).
	Logger *slog.Logger
}

// Validate reports the first option that cannot work, wrapping
// ErrInvalidOptions.
func (o DTLSOptions) Validate() error {
	switch o.Network {
	case "", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("%w: DTLS network %q (want udp, udp4 or udp6)", ErrInvalidOptions, o.Network)
	}
	if o.Addr == "" {
		return fmt.Errorf("%w: DTLS listen address required", ErrInvalidOptions)
	}
	if len(o.PSK) == 0 && len(o.Certificates) == 0 {
		return fmt.Errorf("%w: DTLS needs pre-shared keys or a certificate", ErrInvalidOptions)
	}
	for id, key := range o.PSK {
		if err := checkPSK(id, key); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
	}
	for i, cert := range o.Certificates {
		if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
			return fmt.Errorf("%w: DTLS certificate %d lacks its chain or its private key", ErrInvalidOptions, i)
		}
	}
	if o.ClientCAs != nil && len(o.Certificates) == 0 {
		return fmt.Errorf("%w: DTLS client CAs need a server certificate", ErrInvalidOptions)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"handshake timeout", o.HandshakeTimeout}, {"idle timeout", o.IdleTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%w: DTLS %s %v is negative", ErrInvalidOptions, d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max pending handshakes", o.MaxPendingHandshakes}, {"max pending per IP", o.MaxPendingPerIP}, {"max associations", o.MaxAssociations}, {"max unverified", o.MaxUnverified}, {"queue length", o.QueueLen}, {"MTU", o.MTU}} {
		if n.v < 0 {
			return fmt.Errorf("%w: DTLS %s %d is negative", ErrInvalidOptions, n.name, n.v)
		}
	}
	if o.MTU != 0 && o.MTU < 256 {
		return fmt.Errorf("%w: DTLS MTU %d below 256", ErrInvalidOptions, o.MTU)
	}
	return nil
}

func (o *DTLSOptions) applyDefaults() {
	if o.Network == "" {
		o.Network = "udp"
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultDTLSHandshakeTimeout
	}
	if o.MaxPendingHandshakes == 0 {
		o.MaxPendingHandshakes = DefaultDTLSMaxPending
	}
	if o.MaxPendingPerIP == 0 {
		o.MaxPendingPerIP = DefaultDTLSMaxPendingPerIP
	}
	if o.MaxAssociations == 0 {
		o.MaxAssociations = DefaultDTLSMaxAssociations
	}
	if o.MaxUnverified == 0 {
		o.MaxUnverified = DefaultDTLSMaxUnverified
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultDTLSIdleTimeout
	}
	if o.QueueLen == 0 {
		o.QueueLen = DefaultDTLSQueueLen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// LoadDTLSCertificates reads a PEM certificate chain and its key, and
// optionally (caFile not empty) a PEM bundle of CAs that client
// certificates must chain to, for DTLSOptions.Certificates and ClientCAs.
func LoadDTLSCertificates(certFile, keyFile, caFile string) ([]tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: DTLS certificate %s / key %s: %w", ErrInvalidOptions, certFile, keyFile, err)
	}
	if caFile == "" {
		return []tls.Certificate{cert}, nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: DTLS client CA file: %w", ErrInvalidOptions, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("%w: DTLS client CA file %s holds no PEM certificate", ErrInvalidOptions, caFile)
	}
	return []tls.Certificate{cert}, pool, nil
}

// DTLSStats counts a DTLS listener's associations and traffic. Counters
// only grow; Associations and Pending are current values.
type DTLSStats struct {
	Associations      int    // established associations now
	Pending           int    // handshakes in progress now whose client echoed its cookie
	Unverified        int    // handshakes now waiting for their client to echo its cookie
	Handshakes        uint64 // handshakes completed
	HandshakeFailures uint64 // handshakes that failed or timed out after the cookie (wrong key, untrusted certificate)
	HandshakesDropped uint64 // ClientHellos refused: too many pending or associations, or Admit said no
	Unanswered        uint64 // HelloVerifyRequests whose cookie never came back (spoofed sources, lost datagrams)
	Evicted           uint64 // of those, the waits ended early to make room for newer ones
	CookieMismatch    uint64 // ClientHellos whose cookie is not the one sent to their address (forged, stale, replayed)
	Ignored           uint64 // datagrams from unknown senders that do not start a handshake
	Expired           uint64 // associations closed for idleness
	RecordErrors      uint64 // non-fatal errors pion reported on established associations (warning alerts)
	PacketsIn         uint64 // decrypted packets queued for ReadFrom
	PacketsOut        uint64 // packets encrypted and sent
	Overflow          uint64 // packets dropped because a queue was full
	Truncated         uint64 // packets cut to fit a ReadFrom buffer
}

// DTLSConn is a net.PacketConn over DTLS 1.2 on one UDP socket. Every DTLS
// association is one peer: ReadFrom returns one decrypted datagram and the
// association's DTLSAddr, WriteTo encrypts to the association of its
// address. Handshakes use cookie exchange (HelloVerifyRequest, RFC 6347
// §4.2.1). A handshake takes a pending slot, bounded in total and per IP
// address, only once its client has echoed the cookie, proving that it
// receives at its address; until then it is one of at most MaxUnverified
// waits, the oldest of which gives way to a new one. A flood of spoofed
// ClientHellos thus costs the listener small replies and a bounded amount
// of memory, and cannot hold the slots that real clients need.
//
// Why not stateless, as RFC 6347 suggests: pion/dtls makes the cookie
// exchange itself, with a random cookie kept in the connection's state;
// it cannot take over a handshake at a ClientHello carrying a cookie it
// did not issue (its server state machine starts at message_seq 0, and
// the Finished messages cover the ClientHello's cookie and message_seq,
// so the datagram cannot be rewritten for it). So the connection that
// will finish the handshake must exist from the first ClientHello on.
// What the listener decides on its own is when that connection counts
// as a pending handshake: when a ClientHello echoes the cookie pion sent
// to that address, which it reads from the HelloVerifyRequest on its way
// out.
//
// Goroutines: the read loop owns the UDP socket's read side and
// demultiplexes records by source address into each association's queue;
// each association has one goroutine that runs the handshake and then
// reads decrypted packets into the shared queue; a reaper closes idle
// associations. assocs, waiting, the counters of phases and every
// association's phase and cookie are guarded by mu.
type DTLSConn struct {
	opts       DTLSOptions
	udp        *net.UDPConn
	serverOpts []dtls.ServerOption
	ctx        context.Context // cancelled by Close; bounds handshakes
	cancel     context.CancelFunc
	stopAF     func() bool

	in           chan inPacket
	readDeadline *deadline.Deadline

	mu          sync.Mutex
	assocs      map[netip.AddrPort]*association // guarded by mu
	waiting     list.List                       // of *association in phaseCookie, oldest first; guarded by mu
	pending     int                             // guarded by mu
	pendingIP   map[netip.Addr]int              // guarded by mu
	established int                             // guarded by mu
	closed      bool                            // guarded by mu

	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}

	handshakes, failures, dropped, ignored, expired atomic.Uint64
	recordErrors, unanswered, evicted, mismatch     atomic.Uint64
	packetsIn, packetsOut, overflow, truncated      atomic.Uint64
}

type inPacket struct {
	data []byte
	from DTLSAddr
}

// association is one peer's DTLS state.
type association struct {
	raddr   netip.AddrPort
	pc      *assocConn
	conn    *dtls.Conn
	ctx     context.Context // bounds the handshake
	cancel  context.CancelFunc
	addr    DTLSAddr      // set once the handshake completes, before phaseEstablished
	phase   assocPhase    // guarded by DTLSConn.mu
	cookie  []byte        // of the HelloVerifyRequest sent; guarded by DTLSConn.mu
	waiting *list.Element // in DTLSConn.waiting while in phaseCookie; guarded by DTLSConn.mu
	lastIn  atomic.Int64  // unix nanoseconds of the last datagram received
	expired atomic.Bool
}

// assocPhase is where an association stands; each phase has its own bound.
type assocPhase uint8

const (
	// phaseCookie: a HelloVerifyRequest went out (or is about to); the
	// client has not yet shown that it receives at its address. No
	// pending slot; one of MaxUnverified waits.
	phaseCookie assocPhase = iota
	// phasePending: the client echoed its cookie; the handshake holds a
	// pending slot until it ends.
	phasePending
	phaseEstablished
	// phaseGone: removed and counted out.
	phaseGone
)

// ListenDTLS validates opts and opens the UDP socket. Cancelling ctx closes
// the listener.
func ListenDTLS(ctx context.Context, opts DTLSOptions) (*DTLSConn, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.applyDefaults()
	laddr, err := net.ResolveUDPAddr(opts.Network, opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: DTLS address %q: %w", ErrInvalidOptions, opts.Addr, err)
	}
	udp, err := net.ListenUDP(opts.Network, laddr)
	if err != nil {
		return nil, fmt.Errorf("transport: DTLS listen %s: %w", opts.Addr, err)
	}
	inner, cancel := context.WithCancel(context.Background())
	c := &DTLSConn{
		opts:         opts,
		udp:          udp,
		ctx:          inner,
		cancel:       cancel,
		in:           make(chan inPacket, opts.QueueLen),
		readDeadline: deadline.New(),
		assocs:       make(map[netip.AddrPort]*association),
		pendingIP:    make(map[netip.Addr]int),
		done:         make(chan struct{}),
	}
	c.serverOpts = c.serverOptions()
	// Build one server now, so that a certificate pion cannot use fails
	// ListenDTLS rather than every handshake.
	probe := &assocConn{owner: c, raddr: laddr, last: new(atomic.Int64), closed: make(chan struct{})}
	conn, err := dtls.ServerWithOptions(probe, laddr, c.serverOpts...)
	if err != nil {
		_ = udp.Close()
		cancel()
		return nil, fmt.Errorf("%w: DTLS: %w", ErrInvalidOptions, err)
	}
	_ = conn.Close()
	c.stopAF = context.AfterFunc(ctx, func() { _ = c.Close() })
	c.goroutine(c.readLoop)
	c.goroutine(c.reapLoop)
	return c, nil
}

// serverOptions builds the server configuration shared by all
// associations.
func (c *DTLSConn) serverOptions() []dtls.ServerOption {
	o := c.opts
	opts := []dtls.ServerOption{
		// Requested, not required: constrained DTLS stacks in sensors do
		// not all implement it, and the attacks it prevents need session
		// resumption or renegotiation, which this listener does not offer.
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithLoggerFactory(slogFactory{o.Logger}),
		// The handshake is bounded by HandshakeContext; pion's retransmit
		// timer starts here and backs off.
		dtls.WithFlightInterval(time.Second),
	}
	if o.MTU > 0 {
		opts = append(opts, dtls.WithMTU(o.MTU))
	}
	var suites []dtls.CipherSuiteID
	if len(o.Certificates) > 0 {
		suites = append(suites,
			dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, // CoAP and LwM2M devices
		)
		opts = append(opts, dtls.WithCertificates(o.Certificates...))
		if o.ClientCAs != nil {
			opts = append(opts, dtls.WithClientAuth(dtls.RequireAndVerifyClientCert), dtls.WithClientCAs(o.ClientCAs))
		}
	}
	if len(o.PSK) > 0 {
		suites = append(suites,
			dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
			dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
			dtls.TLS_PSK_WITH_AES_128_CCM,
			dtls.TLS_PSK_WITH_AES_128_CCM_8, // RFC 7925 profile of constrained devices
			dtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
			dtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
		)
		keys := o.PSK
		opts = append(opts, dtls.WithPSK(func(identity []byte) ([]byte, error) {
			key, ok := keys[string(identity)]
			if !ok {
				return nil, fmt.Errorf("transport: unknown PSK identity %q", identity)
			}
			return key, nil
		}))
		if o.PSKIdentityHint != "" {
			opts = append(opts, dtls.WithPSKIdentityHint([]byte(o.PSKIdentityHint)))
		}
	}
	return append(opts, dtls.WithCipherSuites(suites...))
}

// goroutine starts f as one of the listener's goroutines; Close waits for
// them.
func (c *DTLSConn) goroutine(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// readLoop owns the socket's read side. It copies each datagram out of the
// one read buffer before queueing it for its association.
func (c *DTLSConn) readLoop() {
	buf := make([]byte, maxUDPDatagram)
	for {
		n, from, err := c.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP-induced errors and the like concern one datagram only.
			c.opts.Logger.Debug("DTLS read", "err", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		c.dispatch(buf[:n], from)
	}
}

// dispatch hands one datagram to its association. A cookieless
// ClientHello from an unknown sender starts an unverified association;
// a ClientHello that echoes the cookie sent to its address moves it to a
// pending slot, if the limits allow.
func (c *DTLSConn) dispatch(p []byte, from netip.AddrPort) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	a, ok := c.assocs[from]
	switch {
	case !ok:
		cookie, hello := clientHelloCookie(p)
		switch {
		case !hello:
			c.mu.Unlock()
			c.ignored.Add(1)
			return
		case len(cookie) > 0:
			// No HelloVerifyRequest of ours waits for it: forged,
			// replayed, or its wait ended. pion can only start from a
			// ClientHello without a cookie; the client will not send one
			// again, and its handshake fails.
			c.mu.Unlock()
			c.mismatch.Add(1)
			return
		case c.opts.Admit != nil && !c.opts.Admit(from):
			c.mu.Unlock()
			c.dropped.Add(1)
			return
		}
		if c.waiting.Len() >= c.opts.MaxUnverified {
			c.evict(c.waiting.Front().Value.(*association))
		}
		a = c.newAssociation(from)
		if a == nil {
			c.mu.Unlock()
			c.failures.Add(1)
			return
		}
		c.assocs[from] = a
		a.waiting = c.waiting.PushBack(a)
		c.goroutine(func() { c.serve(a) })
	case a.phase == phaseCookie:
		cookie, hello := clientHelloCookie(p)
		switch {
		case !hello:
			// Nothing but a ClientHello can carry the handshake on
			// before the cookie comes back.
			c.mu.Unlock()
			c.ignored.Add(1)
			return
		case len(cookie) == 0:
			// The first ClientHello again: pion sends its
			// HelloVerifyRequest again.
		case a.cookie == nil || subtle.ConstantTimeCompare(cookie, a.cookie) != 1:
			// Handed on, pion would end the handshake of the real
			// client at this address.
			c.mu.Unlock()
			c.mismatch.Add(1)
			return
		case c.pending >= c.opts.MaxPendingHandshakes || c.pendingIP[from.Addr()] >= c.opts.MaxPendingPerIP ||
			c.pending+c.established >= c.opts.MaxAssociations:
			// The client sends this ClientHello again if it hears
			// nothing; a slot may be free by then.
			c.mu.Unlock()
			c.dropped.Add(1)
			return
		default:
			c.waiting.Remove(a.waiting)
			a.waiting = nil
			a.phase = phasePending
			c.pending++
			c.pendingIP[from.Addr()]++
		}
	}
	c.mu.Unlock()
	select {
	case a.pc.in <- append([]byte(nil), p...):
	default:
		c.overflow.Add(1)
	}
}

// evict ends the wait of a, the oldest unverified association, to make
// room for a new one; mu is held. The association's goroutine then sees
// its handshake cancelled and closes it.
func (c *DTLSConn) evict(a *association) {
	c.waiting.Remove(a.waiting)
	a.waiting = nil
	if c.assocs[a.raddr] == a {
		delete(c.assocs, a.raddr)
	}
	c.evicted.Add(1)
	a.cancel()
}

// noteCookie records the cookie of the HelloVerifyRequest sent on a.
func (c *DTLSConn) noteCookie(a *association, cookie []byte) {
	c.mu.Lock()
	if a.phase == phaseCookie {
		a.cookie = append(a.cookie[:0], cookie...)
	}
	c.mu.Unlock()
}

// isClientHello reports whether p starts with a DTLS handshake record of
// epoch 0 carrying a ClientHello, the only record that may open an
// association.
//
//	record:    ContentType (1) = 22, ProtocolVersion (2) = 0xFE.., Epoch (2) = 0,
//	           SequenceNumber (6), Length (2)                 RFC 6347 §4.1
//	handshake: HandshakeType (1) = 1 client_hello, ...        RFC 6347 §4.2.2
func isClientHello(p []byte) bool {
	const recordHeader = 13
	return len(p) > recordHeader && p[0] == 22 && p[1] == 0xFE && p[3] == 0 && p[4] == 0 && p[recordHeader] == 1
}

// clientHelloCookie returns the cookie of the ClientHello p starts with
// (empty if it has none); hello is false unless p starts with an epoch-0
// handshake record whose first message is a ClientHello, or its first
// fragment, that reaches through the cookie. ClientHellos are a few
// hundred octets, below any MTU DTLS runs over, so they are not
// fragmented in practice.
//
//	record:    ContentType (1) = 22, ProtocolVersion (2) = 0xFE.., Epoch (2) = 0,
//	           SequenceNumber (6), Length (2)                 RFC 6347 §4.1
//	handshake: HandshakeType (1) = 1, Length (3), message_seq (2),
//	           fragment_offset (3) = 0, fragment_length (3)   RFC 6347 §4.2.2
//	body:      client_version (2), random (32), session_id <0..32>,
//	           cookie <0..2^8-1>, ...                         RFC 6347 §4.2.1
func clientHelloCookie(p []byte) (cookie []byte, hello bool) {
	body, ok := handshakeBody(p, 1)
	var sessionID cryptobyte.String
	if !ok || !body.Skip(2+32) || !body.ReadUint8LengthPrefixed(&sessionID) || len(sessionID) > 32 ||
		!body.ReadUint8LengthPrefixed((*cryptobyte.String)(&cookie)) {
		return nil, false
	}
	return cookie, true
}

// helloVerifyCookie returns the cookie of the HelloVerifyRequest p starts
// with; ok is false if p does not start with one.
//
//	body: server_version (2), cookie <0..2^8-1>               RFC 6347 §4.2.1
func helloVerifyCookie(p []byte) (cookie []byte, ok bool) {
	body, ok := handshakeBody(p, 3)
	if !ok || !body.Skip(2) || !body.ReadUint8LengthPrefixed((*cryptobyte.String)(&cookie)) {
		return nil, false
	}
	return cookie, true
}

// handshakeBody returns the body, or first fragment of the body, of the
// handshake message of type typ that p starts with, in an epoch-0 record
// (see clientHelloCookie for the layout).
func handshakeBody(p []byte, typ uint8) (cryptobyte.String, bool) {
	s := cryptobyte.String(p)
	var (
		contentType, version, hsType uint8
		epoch                        uint16
		record, body                 cryptobyte.String
		length, offset, fragment     uint32
	)
	if !s.ReadUint8(&contentType) || contentType != 22 || !s.ReadUint8(&version) || version != 0xFE ||
		!s.Skip(1) || !s.ReadUint16(&epoch) || epoch != 0 || !s.Skip(6) || !s.ReadUint16LengthPrefixed(&record) {
		return nil, false
	}
	if !record.ReadUint8(&hsType) || hsType != typ || !record.ReadUint24(&length) || !record.Skip(2) ||
		!record.ReadUint24(&offset) || offset != 0 || !record.ReadUint24(&fragment) || fragment > length ||
		!record.ReadBytes((*[]byte)(&body), int(fragment)) {
		return nil, false
	}
	return body, true
}

// newAssociation prepares the DTLS state of a new peer; mu is held.
func (c *DTLSConn) newAssociation(from netip.AddrPort) *association {
	a := &association{raddr: from}
	a.pc = &assocConn{
		owner:        c,
		assoc:        a,
		raddr:        net.UDPAddrFromAddrPort(from),
		last:         &a.lastIn,
		in:           make(chan []byte, assocQueueLen),
		readDeadline: deadline.New(),
		closed:       make(chan struct{}),
	}
	conn, err := dtls.ServerWithOptions(a.pc, a.pc.raddr, c.serverOpts...)
	if err != nil {
		// ListenDTLS built a server with these options; this cannot fail.
		c.opts.Logger.Error("DTLS association", "peer", from, "err", err)
		return nil
	}
	a.conn = conn
	// The cookie exchange counts in the handshake's time.
	a.ctx, a.cancel = context.WithTimeout(c.ctx, c.opts.HandshakeTimeout)
	a.lastIn.Store(time.Now().UnixNano())
	return a
}

// serve runs one association: the handshake, then its decrypted packets
// into the shared queue, until the association ends.
func (c *DTLSConn) serve(a *association) {
	defer c.remove(a)
	err := a.conn.HandshakeContext(a.ctx)
	a.cancel()
	if err != nil {
		c.mu.Lock()
		unverified := a.phase == phaseCookie
		c.mu.Unlock()
		if unverified {
			// Spoofed, or the client gave up: not a failed handshake.
			c.unanswered.Add(1)
			c.opts.Logger.Debug("DTLS cookie never came back", "peer", a.raddr, "err", err)
			return
		}
		c.failures.Add(1)
		level := slog.LevelInfo
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// Unfinished handshakes are what floods leave behind; the
			// counter tells of them without flooding the log.
			level = slog.LevelDebug
		}
		c.opts.Logger.Log(context.Background(), level, "DTLS handshake failed", "peer", a.raddr, "err", err)
		return
	}
	addr, err := peerAddr(a.raddr, a.conn)
	if err != nil {
		c.failures.Add(1)
		c.opts.Logger.Info("DTLS handshake failed", "peer", a.raddr, "err", err)
		return
	}
	a.addr = addr
	c.mu.Lock()
	if a.phase == phasePending {
		c.unpend(a)
	} else if a.waiting != nil {
		// pion finished a handshake whose cookie the listener did not see
		// come back; it cannot, but the counters must stay true.
		c.waiting.Remove(a.waiting)
		a.waiting = nil
	}
	a.phase = phaseEstablished
	c.established++
	c.mu.Unlock()
	c.handshakes.Add(1)
	c.opts.Logger.Debug("DTLS association up", "peer", addr)

	buf := make([]byte, maxDTLSPlaintext)
	for {
		n, err := a.conn.Read(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			// close_notify, a fatal alert, or Close.
			if a.expired.Load() {
				c.opts.Logger.Debug("DTLS association idle", "peer", addr)
			}
			return
		}
		if err != nil {
			// A warning alert or a record that failed to decrypt: pion
			// keeps the association, and so must we, or anyone able to
			// spoof the peer's address could end it.
			c.recordErrors.Add(1)
			c.opts.Logger.Debug("DTLS record refused", "peer", addr, "err", err)
			continue
		}
		// Counted before it is handed on, so that whoever reads it (and
		// answers) sees it counted.
		c.packetsIn.Add(1)
		select {
		case c.in <- inPacket{data: append([]byte(nil), buf[:n]...), from: addr}:
		default:
			c.packetsIn.Add(^uint64(0))
			c.overflow.Add(1)
		}
	}
}

// peerAddr names the peer of an association by the identity it proved.
func peerAddr(ap netip.AddrPort, conn *dtls.Conn) (DTLSAddr, error) {
	st, ok := conn.ConnectionState()
	if !ok {
		return DTLSAddr{}, errors.New("transport: DTLS connection state unavailable")
	}
	if len(st.IdentityHint) > 0 {
		return DTLSAddr{AddrPort: ap, Kind: IdentityPSK, Identity: string(st.IdentityHint)}, nil
	}
	if len(st.PeerCertificates) > 0 {
		cert, err := x509.ParseCertificate(st.PeerCertificates[0])
		if err != nil {
			return DTLSAddr{}, fmt.Errorf("transport: DTLS peer certificate: %w", err)
		}
		id := cert.Subject.CommonName
		if id == "" {
			id = cert.Subject.String()
		}
		return DTLSAddr{AddrPort: ap, Kind: IdentityCertificate, Identity: id}, nil
	}
	// Without client CAs a certificate handshake leaves the client
	// anonymous; the gateway's allowlist then decides.
	return DTLSAddr{AddrPort: ap}, nil
}

// unpend releases a's pending slot; mu is held.
func (c *DTLSConn) unpend(a *association) {
	c.pending--
	ip := a.raddr.Addr()
	if c.pendingIP[ip] <= 1 {
		delete(c.pendingIP, ip)
	} else {
		c.pendingIP[ip]--
	}
}

// remove forgets a and closes it.
func (c *DTLSConn) remove(a *association) {
	c.mu.Lock()
	if c.assocs[a.raddr] == a {
		delete(c.assocs, a.raddr)
	}
	established := a.phase == phaseEstablished
	switch a.phase {
	case phaseCookie:
		if a.waiting != nil {
			c.waiting.Remove(a.waiting)
			a.waiting = nil
		}
	case phasePending:
		c.unpend(a)
	case phaseEstablished:
		c.established--
	}
	a.phase = phaseGone
	c.mu.Unlock()
	if established {
		c.opts.Logger.Debug("DTLS association closed", "peer", a.addr)
	}
	// pion closes a.pc itself once any close_notify has gone out; closing
	// a.pc here could lose the close_notify of a concurrent Close.
	_ = a.conn.Close()
}

// reapLoop closes associations that have been idle for IdleTimeout.
func (c *DTLSConn) reapLoop() {
	t := time.NewTicker(c.opts.IdleTimeout / 2)
	defer t.Stop()
	var idle []*association
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			limit := now.Add(-c.opts.IdleTimeout).UnixNano()
			c.mu.Lock()
			for _, a := range c.assocs {
				if a.phase == phaseEstablished && a.lastIn.Load() < limit {
					idle = append(idle, a)
				}
			}
			c.mu.Unlock()
			for i, a := range idle {
				a.expired.Store(true)
				c.expired.Add(1)
				// Closing sends close_notify; the association's goroutine
				// then sees its read fail and removes it.
				_ = a.conn.Close()
				idle[i] = nil
			}
			idle = idle[:0]
		}
	}
}

// ReadFrom implements net.PacketConn: it returns one decrypted packet and
// its sender's DTLSAddr. A packet longer than b is truncated and counted.
func (c *DTLSConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		n := copy(b, p.data)
		if n < len(p.data) {
			c.truncated.Add(1)
		}
		return n, p.from, nil
	case <-c.done:
		return 0, nil, c.opErr("read", net.ErrClosed)
	case <-c.readDeadline.Done():
		return 0, nil, c.opErr("read", os.ErrDeadlineExceeded)
	}
}

// WriteTo implements net.PacketConn: it encrypts b on the association of
// addr, a DTLSAddr from ReadFrom (or the peer's *net.UDPAddr). Without an
// established association it fails with ErrNoAssociation.
func (c *DTLSConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	var want *DTLSAddr
	switch a := addr.(type) {
	case DTLSAddr:
		ap, want = a.AddrPort, &a
	case *DTLSAddr:
		ap, want = a.AddrPort, a
	case *net.UDPAddr:
		ap = a.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	default:
		return 0, c.opErr("write", fmt.Errorf("%w: %T", ErrAddrType, addr))
	}
	c.mu.Lock()
	a := c.assocs[ap]
	est := a != nil && a.phase == phaseEstablished
	c.mu.Unlock()
	if !est {
		return 0, c.opErr("write", fmt.Errorf("%w: %s", ErrNoAssociation, addr))
	}
	if want != nil && *want != a.addr {
		// The association was replaced by another peer at the same UDP
		// address; the old peer is gone.
		return 0, c.opErr("write", fmt.Errorf("%w: %s", ErrNoAssociation, addr))
	}
	// Counted before it leaves, so that a peer that has it sees it
	// counted; taken back if it does not leave.
	c.packetsOut.Add(1)
	n, err := a.conn.Write(b)
	if err != nil {
		c.packetsOut.Add(^uint64(0))
		return n, c.opErr("write", err)
	}
	return n, nil
}

func (c *DTLSConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "dtls", Source: c.udp.LocalAddr(), Err: err}
}

// Close closes every association (sending close_notify) and the socket,
// and waits for the listener's goroutines. It is safe to call more than
// once. Blocked ReadFrom calls return an error matching net.ErrClosed.
func (c *DTLSConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.stopAF()
		c.mu.Lock()
		c.closed = true
		assocs := make([]*association, 0, len(c.assocs))
		for _, a := range c.assocs {
			assocs = append(assocs, a)
		}
		c.mu.Unlock()
		c.cancel() // ends handshakes in progress
		for _, a := range assocs {
			_ = a.conn.Close()
		}
		close(c.done)
		err = c.udp.Close()
		c.wg.Wait()
	})
	return err
}

// LocalAddr implements net.PacketConn.
func (c *DTLSConn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// SetDeadline implements net.PacketConn; only the read side has a deadline.
func (c *DTLSConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn; it also wakes blocked reads.
func (c *DTLSConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.Set(t)
	return nil
}

// SetWriteDeadline implements net.PacketConn. DTLS writes go straight to
// the UDP socket, which does not block, so there is nothing to bound.
func (c *DTLSConn) SetWriteDeadline(time.Time) error { return nil }

// Stats returns a snapshot of the listener's counters.
func (c *DTLSConn) Stats() DTLSStats {
	c.mu.Lock()
	pending, established, unverified := c.pending, c.established, c.waiting.Len()
	c.mu.Unlock()
	return DTLSStats{
		Associations:      established,
		Pending:           pending,
		Unverified:        unverified,
		Handshakes:        c.handshakes.Load(),
		HandshakeFailures: c.failures.Load(),
		HandshakesDropped: c.dropped.Load(),
		Unanswered:        c.unanswered.Load(),
		Evicted:           c.evicted.Load(),
		CookieMismatch:    c.mismatch.Load(),
		Ignored:           c.ignored.Load(),
		Expired:           c.expired.Load(),
		RecordErrors:      c.recordErrors.Load(),
		PacketsIn:         c.packetsIn.Load(),
		PacketsOut:        c.packetsOut.Load(),
		Overflow:          c.overflow.Load(),
		Truncated:         c.truncated.Load(),
	}
}

// assocConn is the datagram connection pion's state machine sees for one
// association: reads come from the queue the read loop fills, writes go
// to the shared socket.
type assocConn struct {
	owner        *DTLSConn
	assoc        *association // nil for ListenDTLS's probe
	raddr        *net.UDPAddr
	last         *atomic.Int64 // the association's lastIn
	in           chan []byte
	readDeadline *deadline.Deadline
	closeOnce    sync.Once
	closed       chan struct{}
}

func (p *assocConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-p.in:
		p.last.Store(time.Now().UnixNano())
		return copy(b, d), p.raddr, nil
	case <-p.closed:
		return 0, nil, net.ErrClosed
	case <-p.readDeadline.Done():
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (p *assocConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	if cookie, ok := helloVerifyCookie(b); ok && p.assoc != nil {
		// Noted before it leaves, so the client's answer finds it.
		p.owner.noteCookie(p.assoc, cookie)
	}
	return p.owner.udp.WriteToUDP(b, p.raddr)
}

func (p *assocConn) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

func (p *assocConn) LocalAddr() net.Addr                { return p.owner.udp.LocalAddr() }
func (p *assocConn) SetDeadline(t time.Time) error      { return p.SetReadDeadline(t) }
func (p *assocConn) SetReadDeadline(t time.Time) error  { p.readDeadline.Set(t); return nil }
func (p *assocConn) SetWriteDeadline(_ time.Time) error { return nil }

// slogFactory routes pion's log messages to slog: its trace and debug
// output at debug level.
type slogFactory struct{ l *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{f.l.With("dtls", scope)}
}

type slogLogger struct{ l *slog.Logger }

// levelTrace is below slog's debug level: pion traces every record.
const levelTrace = slog.LevelDebug - 4

func (s slogLogger) log(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	s.l.Log(ctx, level, format)
}

func (s slogLogger) Trace(msg string)                  { s.log(levelTrace, msg) }
func (s slogLogger) Tracef(format string, args ...any) { s.log(levelTrace, format, args...) }
func (s slogLogger) Debug(msg string)                  { s.log(slog.LevelDebug, msg) }
func (s slogLogger) Debugf(format string, args ...any) { s.log(slog.LevelDebug, format, args...) }
func (s slogLogger) Info(msg string)                   { s.log(slog.LevelInfo, msg) }
func (s slogLogger) Infof(format string, args ...any)  { s.log(slog.LevelInfo, format, args...) }
func (s slogLogger) Warn(msg string)                   { s.log(slog.LevelWarn, msg) }
func (s slogLogger) Warnf(format string, args ...any)  { s.log(slog.LevelWarn, format, args...) }
func (s slogLogger) Error(msg string)                  { s.log(slog.LevelError, msg) }
func (s slogLogger) Errorf(format string, args ...any) { s.log(slog.LevelError, format, args...) }
