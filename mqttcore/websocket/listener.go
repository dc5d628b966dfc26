package websocket

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gws "github.com/gorilla/websocket"
)

// Defaults applied by Options for zero fields.
const (
	// DefaultPath is where MQTT clients conventionally connect (Mosquitto,
	// EMQX, HiveMQ and the MQTT.js examples all use it).
	DefaultPath = "/mqtt"
	// DefaultMaxMessageSize is twice the broker's default maximum packet
	// size (1 MiB), so that a message may carry a packet of that size
	// together with others a client coalesced into it.
	DefaultMaxMessageSize = 2 << 20
	// DefaultHandshakeTimeout bounds the TLS handshake, the HTTP upgrade
	// request and the answer to it.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultReadBufferSize and DefaultWriteBufferSize are the frame
	// buffers of a connection. The write buffer is taken from a pool for
	// each message and given back after it, so an idle connection holds
	// only its read buffer.
	DefaultReadBufferSize  = 4096
	DefaultWriteBufferSize = 4096
)

// maxHeaderBytes bounds the upgrade request's headers: a handshake needs a
// few hundred bytes, a browser's cookies a few KiB.
const maxHeaderBytes = 16 << 10

// subprotocols are the WebSocket subprotocols the listener accepts, in its
// order of preference: "mqtt" (MQTT 3.1.1 and 5.0 §6) and "mqttv3.1", which
// MQTT 3.1 clients offer.
var subprotocols = []string{"mqtt", "mqttv3.1"}

// Errors of this package.
var (
	// ErrInvalidOptions reports Options that cannot work; fix the
	// configuration.
	ErrInvalidOptions = errors.New("websocket: invalid options")
	// ErrMessageTooLarge reports a message above Options.MaxMessageSize;
	// the connection was closed with status 1009.
	ErrMessageTooLarge = errors.New("websocket: message larger than the maximum message size")
	// ErrTextMessage reports a text message, which MQTT does not allow
	// [MQTT-6.0.0-1]; the connection was closed with status 1003.
	ErrTextMessage = errors.New("websocket: text message where MQTT needs binary")
)

// Options configure a WebSocket listener. Zero fields take the defaults
// above.
type Options struct {
	// Path is the one request path that upgrades; every other path is
	// answered with 404. It must start with "/".
	Path string
	// TLSConfig makes the listener speak wss (HTTPS); nil is plain ws. A
	// configuration that requires client certificates (such as
	// mqttcore.LoadTLSConfig with a client CA) requires them here too, and
	// the verified certificate is reported by Conn.ConnectionState. Its
	// NextProtos are replaced by "http/1.1": WebSocket upgrades HTTP/1.1.
	TLSConfig *tls.Config
	// CheckOrigin decides whether a handshake with the request's Origin
	// header is accepted (false: HTTP 403). nil accepts every origin; see
	// the package documentation for when to set it.
	CheckOrigin func(r *http.Request) bool
	// MaxMessageSize bounds each message a client sends, in bytes; a
	// larger message closes the connection (status 1009).
	MaxMessageSize int64
	// HandshakeTimeout bounds the TLS handshake, the upgrade request and
	// the answer; a client slower than that is disconnected.
	HandshakeTimeout time.Duration
	// ReadBufferSize and WriteBufferSize size each connection's frame
	// buffers, in bytes.
	ReadBufferSize  int
	WriteBufferSize int
	// Logger receives refused handshakes and HTTP server errors at debug
	// level; nil discards them.
	Logger *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.ReadBufferSize == 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.WriteBufferSize == 0 {
		o.WriteBufferSize = DefaultWriteBufferSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports options that cannot work, after defaults are applied.
func (o *Options) Validate() error {
	switch {
	case !strings.HasPrefix(o.Path, "/"):
		return fmt.Errorf("%w: path %q does not start with \"/\"", ErrInvalidOptions, o.Path)
	case o.MaxMessageSize < 0:
		return fmt.Errorf("%w: MaxMessageSize %d is negative", ErrInvalidOptions, o.MaxMessageSize)
	case o.HandshakeTimeout < 0:
		return fmt.Errorf("%w: HandshakeTimeout %s is negative", ErrInvalidOptions, o.HandshakeTimeout)
	case o.ReadBufferSize < 0 || o.WriteBufferSize < 0:
		return fmt.Errorf("%w: negative buffer size", ErrInvalidOptions)
	}
	return nil
}

// Listen opens a WebSocket listener on addr (":8083", "127.0.0.1:0",
// "[::]:8084") for mqttcore's Broker.Serve. network is "tcp", "tcp4" or
// "tcp6". The returned listener's Accept yields *Conn values; Close stops
// the HTTP server and waits for the handshakes under way, and leaves the
// connections already accepted to their owner.
func Listen(network, addr string, opts Options) (net.Listener, error) {
	opts.ensureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("%w: network %q is not tcp, tcp4 or tcp6", ErrInvalidOptions, network)
	}
	tl, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("websocket: listen on %s %s: %w", network, addr, err)
	}
	l := &listener{
		tl:     tl,
		opts:   opts,
		log:    opts.Logger,
		conns:  make(chan *Conn),
		done:   make(chan struct{}),
		failed: make(chan struct{}),
	}
	l.up = gws.Upgrader{
		HandshakeTimeout: opts.HandshakeTimeout,
		ReadBufferSize:   opts.ReadBufferSize,
		WriteBufferSize:  opts.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		Subprotocols:     subprotocols,
		CheckOrigin:      opts.CheckOrigin,
		Error:            l.refuse,
	}
	if l.up.CheckOrigin == nil {
		l.up.CheckOrigin = func(*http.Request) bool { return true }
	}
	var hl net.Listener = tl
	if opts.TLSConfig != nil {
		cfg := opts.TLSConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		hl = tls.NewListener(tl, cfg)
	}
	l.srv = &http.Server{
		Handler: l,
		// The server applies the shortest of these to the TLS handshake
		// too. An upgraded connection leaves them behind: the upgrade
		// clears its deadlines, and the broker sets its own.
		ReadHeaderTimeout: opts.HandshakeTimeout,
		ReadTimeout:       opts.HandshakeTimeout,
		WriteTimeout:      opts.HandshakeTimeout,
		IdleTimeout:       opts.HandshakeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		// No HTTP/2: WebSocket upgrades HTTP/1.1 only.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	l.goFunc(func() {
		err := l.srv.Serve(hl)
		if !errors.Is(err, http.ErrServerClosed) {
			l.serveErr = fmt.Errorf("websocket: serve on %s: %w", tl.Addr(), err)
			close(l.failed)
		}
	})
	return l, nil
}

// listener is a net.Listener whose connections come from the HTTP server's
// handler goroutines, handed over one at a time through conns.
type listener struct {
	tl   net.Listener // the TCP listener, for Addr
	srv  *http.Server
	up   gws.Upgrader
	opts Options
	log  *slog.Logger

	conns    chan *Conn    // unbuffered: a handler hands its conn to Accept
	done     chan struct{} // closed by Close
	failed   chan struct{} // closed when the HTTP server stopped on its own
	serveErr error         // why it stopped; written before failed is closed

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the HTTP server and the handlers under way
	mu        sync.Mutex     // guards closed against wg.Add
	closed    bool
}

// goFunc runs f on a goroutine Close waits for; Add precedes go.
func (l *listener) goFunc(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// enter counts a handler in, unless the listener is closed.
func (l *listener) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// Accept waits for the next upgraded connection; it returns an error
// wrapping net.ErrClosed once the listener is closed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "websocket", Addr: l.tl.Addr(), Err: net.ErrClosed}
	case <-l.failed:
		return nil, l.serveErr
	}
}

// Close stops the HTTP server, closing the socket and every connection
// that has not been upgraded, and waits for the handshakes under way to
// end. It is idempotent; connections already accepted stay open.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.done)
		l.closeErr = l.srv.Close()
	})
	l.wg.Wait()
	return l.closeErr
}

// Addr returns the address the listener is bound to.
func (l *listener) Addr() net.Addr { return l.tl.Addr() }

// ServeHTTP upgrades a request on the configured path and hands the
// connection to Accept.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.enter() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer l.wg.Done()
	if r.URL.Path != l.opts.Path {
		l.log.Debug("websocket handshake refused: unknown path", "remote", r.RemoteAddr, "path", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	// MQTT 5 §6 [MQTT-6.0.0-3]: the client MUST offer "mqtt". Without an
	// MQTT subprotocol the peer is not an MQTT client (or is one that
	// would not know what it connected to), so it is refused before the
	// upgrade instead of being given a connection with no protocol.
	if !slices.ContainsFunc(gws.Subprotocols(r), func(p string) bool { return slices.Contains(subprotocols, p) }) {
		l.refuse(w, r, http.StatusBadRequest, fmt.Errorf("no MQTT subprotocol offered (want one of %s)", strings.Join(subprotocols, ", ")))
		return
	}
	ws, err := l.up.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the client (through refuse) or closed it.
		l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newConn(ws, r.TLS, l.opts.MaxMessageSize)
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// refuse answers a handshake that cannot be upgraded; it is also the
// Upgrader's error handler.
func (l *listener) refuse(w http.ResponseWriter, r *http.Request, status int, reason error) {
	l.log.Debug("websocket handshake refused", "remote", r.RemoteAddr, "status", status, "err", reason)
	w.Header().Set("Sec-WebSocket-Version", "13")
	http.Error(w, reason.Error(), status)
}
