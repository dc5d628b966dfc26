package mqttcore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/snwgw/snwgw/mqttcore/packet"
)

// Defaults applied by ListenerOptions for zero fields. They keep a Raspberry
// Pi safe: 10,000 idle connections cost well under 200 MiB.
const (
	DefaultMaxConnections    = 10000
	DefaultMaxPacketSize     = 1 << 20 // 1 MiB
	DefaultConnectTimeout    = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultCloseTimeout      = 2 * time.Second
	DefaultTopicAliasMaximum = 64
)

// ErrTLSConfig reports a certificate, key or CA file that cannot be used;
// the listener cannot start until the files are fixed.
var ErrTLSConfig = errors.New("mqttcore: invalid TLS configuration")

// ListenerOptions configure one MQTT listener (Broker.Serve). Zero fields
// take the defaults above.
type ListenerOptions struct {
	// Name identifies the listener in logs, such as "tcp :1883".
	Name string
	// MaxConnections bounds the connections open at once on this listener;
	// a connection beyond it is closed as soon as it is accepted.
	MaxConnections int
	// MaxPacketSize bounds every packet a client may send, fixed header
	// included; it is announced to MQTT 5 clients as Maximum Packet Size.
	// A larger packet closes the connection (v5 DISCONNECT 0x95).
	MaxPacketSize uint32
	// MaxKeepAlive caps the keep-alive of MQTT 5 clients in seconds: a
	// client asking for more, or for none, is told Server Keep Alive. 0
	// accepts what clients ask. MQTT 3.1.1 cannot be told, so 3.1.1 clients
	// keep their own value.
	MaxKeepAlive uint16
	// TopicAliasMaximum is the number of topic aliases an MQTT 5 client may
	// use towards the broker; a negative value turns them off.
	TopicAliasMaximum int
	// ConnectTimeout closes a connection whose CONNECT (and TLS handshake)
	// has not arrived in time.
	ConnectTimeout time.Duration
	// WriteTimeout is how long the broker waits for a client to take its
	// data. A client slower than that is disconnected; its session keeps
	// the messages not yet delivered (up to Options.MaxQueued, QoS 0 dropped
	// first), so a persistent session receives them when it returns.
	WriteTimeout time.Duration
	// CloseTimeout is how long a closing connection reads and discards what
	// the client still sends after the broker has shut its side, so that the
	// client sees an orderly close instead of a reset.
	CloseTimeout time.Duration
	// UseIdentityAsUsername makes the subject common name of the client's
	// verified TLS certificate its user name, in place of any user name
	// the client sends, and admits the client without a password
	// (ClientInfo.Authenticated), as Mosquitto's use_identity_as_username
	// does: the certificate is the credential, and the ACL's user sections
	// apply to it. It belongs on a TLS listener that requires client
	// certificates (LoadTLSConfig with a client CA). Serve cannot see the
	// TLS configuration of the listener it is given, so the rule is held
	// for each connection instead: a client without a verified
	// certificate, or whose certificate has no common name, is refused
	// (v5 CONNACK 0x87 not authorized, 3.1.1 return code 5).
	UseIdentityAsUsername bool
	// Admit, when set, decides at accept whether a connection from remote
	// is served at all: before the TLS handshake and the CONNECT, and so
	// before a password check, which is slow on purpose. A refused
	// connection is closed at once. It is called from the accept loop, so
	// it must be cheap; a per-address rate limit is what it is for.
	Admit func(remote net.Addr) bool
	// Logger receives the listener's diagnostics; nil takes the broker's.
	Logger *slog.Logger
}

func (o *ListenerOptions) ensureDefaults(b *Broker) {
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	if o.TopicAliasMaximum == 0 {
		o.TopicAliasMaximum = DefaultTopicAliasMaximum
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Logger == nil {
		o.Logger = b.log
	}
}

// Validate reports options that cannot work, after defaults are applied.
func (o *ListenerOptions) Validate() error {
	switch {
	case o.MaxConnections < 0:
		return fmt.Errorf("%w: MaxConnections %d is negative", ErrInvalidOptions, o.MaxConnections)
	case o.MaxPacketSize < 64 || o.MaxPacketSize > packet.MaxSize:
		// Below 64 bytes not even a CONNECT with a client id fits.
		return fmt.Errorf("%w: MaxPacketSize %d is outside 64..%d", ErrInvalidOptions, o.MaxPacketSize, packet.MaxSize)
	case o.TopicAliasMaximum > 65535:
		return fmt.Errorf("%w: TopicAliasMaximum %d is above 65535", ErrInvalidOptions, o.TopicAliasMaximum)
	case o.ConnectTimeout < 0 || o.WriteTimeout < 0 || o.CloseTimeout < 0:
		return fmt.Errorf("%w: negative timeout", ErrInvalidOptions)
	}
	return nil
}

// Listen opens a TCP listener on addr ("127.0.0.1:1883", "[::]:8883",
// ":1883") for Broker.Serve. network is "tcp", "tcp4" or "tcp6". With a
// tlsConfig the listener speaks TLS (see LoadTLSConfig).
func Listen(network, addr string, tlsConfig *tls.Config) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("%w: network %q is not tcp, tcp4 or tcp6", ErrInvalidOptions, network)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("mqttcore: listen on %s %s: %w", network, addr, err)
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	return l, nil
}

// LoadTLSConfig builds the server side of TLS from PEM files: a certificate
// (chain) and its key, and optionally a CA bundle, which makes the listener
// require client certificates signed by one of its CAs. Errors wrap
// ErrTLSConfig and name the file.
func LoadTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: a certificate file and a key file are both required", ErrTLSConfig)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s with key %s: %w", ErrTLSConfig, certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client CA file: %w", ErrTLSConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: client CA file %s holds no PEM certificate", ErrTLSConfig, clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Serve accepts MQTT 3.1.1 and 5.0 connections on l, a TCP listener or a
// tls.Listener, and serves each with a reader and a writer goroutine. It
// blocks until l is closed (it then returns nil) or the broker is closed
// (ErrClosed), and in both cases disconnects its clients (v5: DISCONNECT
// 0x8B, server shutting down) and waits for their goroutines before it
// returns. Serve closes l.
func (b *Broker) Serve(l net.Listener, opts ListenerOptions) error {
	opts.ensureDefaults(b)
	if err := opts.Validate(); err != nil {
		_ = l.Close()
		return err
	}
	if opts.Name == "" {
		opts.Name = l.Addr().Network() + " " + l.Addr().String()
	}
	ls := &listener{b: b, l: l, opts: opts, log: opts.Logger.With("listener", opts.Name), conns: make(map[*wireConn]struct{})}
	brokerDone, err := b.closed()
	if err != nil {
		_ = l.Close()
		return err
	}
	served := make(chan struct{}) // closed when the accept loop has ended
	ls.goFunc(func() {
		select {
		case <-brokerDone:
			ls.brokerClosing()
		case <-served:
		}
	})
	ls.log.Info("mqtt listening")
	err = ls.acceptLoop()
	close(served)
	_ = l.Close()
	ls.shutdown()
	ls.wg.Wait()
	ls.log.Info("mqtt listener stopped")
	return err
}

// closed returns a channel that is closed when the broker closes, or an
// error if it is not running.
func (b *Broker) closed() (<-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateNew:
		return nil, ErrNotStarted
	case stateClosed:
		return nil, ErrClosed
	}
	return b.done, nil
}

// listener is one Serve call: its connections and their goroutines.
type listener struct {
	b    *Broker
	l    net.Listener
	opts ListenerOptions
	log  *slog.Logger
	wg   sync.WaitGroup

	mu            sync.Mutex
	conns         map[*wireConn]struct{}
	stopping      bool
	brokerStopped bool
}

// goFunc runs f on a goroutine Serve waits for; Add precedes go, so it
// cannot race Wait.
func (ls *listener) goFunc(f func()) {
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		f()
	}()
}

func (ls *listener) acceptLoop() error {
	var backoff time.Duration
	for {
		nc, err := ls.l.Accept()
		if err != nil {
			ls.mu.Lock()
			brokerStopped := ls.brokerStopped
			ls.mu.Unlock()
			switch {
			case brokerStopped:
				return ErrClosed
			case errors.Is(err, net.ErrClosed):
				return nil
			case isTemporary(err):
				// Out of file descriptors and the like: wait for connections
				// to end instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				ls.log.Warn("accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("mqttcore: accept on %s: %w", ls.opts.Name, err)
		}
		backoff = 0
		if ls.opts.Admit != nil && !ls.opts.Admit(nc.RemoteAddr()) {
			ls.log.Debug("connection refused by admission rules", "remote", nc.RemoteAddr())
			_ = nc.Close()
			continue
		}
		c := newWireConn(ls, nc)
		if !ls.add(c) {
			ls.log.Warn("connection refused: too many connections", "remote", nc.RemoteAddr(), "max", ls.opts.MaxConnections)
			_ = nc.Close()
			continue
		}
		ls.goFunc(c.serve)
		ls.goFunc(c.writeLoop)
	}
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// add registers c unless the listener is full or stopping.
func (ls *listener) add(c *wireConn) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopping || len(ls.conns) >= ls.opts.MaxConnections {
		return false
	}
	ls.conns[c] = struct{}{}
	return true
}

func (ls *listener) remove(c *wireConn) {
	ls.mu.Lock()
	delete(ls.conns, c)
	ls.mu.Unlock()
}

// brokerClosing runs when the broker closes: stop accepting. The connections
// are told by the engine themselves (Consumer.Disconnected).
func (ls *listener) brokerClosing() {
	ls.mu.Lock()
	ls.brokerStopped = true
	ls.mu.Unlock()
	_ = ls.l.Close()
}

// shutdown asks every connection to end with "server shutting down".
func (ls *listener) shutdown() {
	ls.mu.Lock()
	ls.stopping = true
	conns := make([]*wireConn, 0, len(ls.conns))
	for c := range ls.conns {
		conns = append(conns, c)
	}
	ls.mu.Unlock()
	for _, c := range conns {
		c.Disconnected(ReasonServerShuttingDown)
	}
}
