package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/snwgw/snwgw/mqttcore"
)

// Errors of a Bridge.
var (
	// ErrClosed is returned by Start after Close; create a new Bridge.
	ErrClosed = errors.New("bridge: closed")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("bridge: already started")
	// ErrMQTT311 reports an upstream broker that refused the MQTT 5
	// CONNECT as an MQTT 3.1.1 server does; the bridge keeps retrying, but
	// only an upstream broker with MQTT 5 enabled helps.
	ErrMQTT311 = errors.New("bridge: upstream speaks only MQTT 3.1.1; snwgw bridges need MQTT 5")
	// ErrLocalRefused reports that the local broker refused the bridge's
	// session or one of its subscriptions (see the broker's Authorizer).
	ErrLocalRefused = errors.New("bridge: local broker refused the bridge")
)

// MarkerProperty is the MQTT 5 user property that marks a message as
// forwarded by a bridge, so that it never goes back the way it came (see the
// package documentation on loops).
const MarkerProperty = "snwgw-bridge"

// State payloads published on Options.StateTopic.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// Stats is a snapshot of a bridge's counters.
type Stats struct {
	// Connected reports whether the upstream connection is up.
	Connected bool
	// ForwardedOut counts messages the upstream broker accepted (QoS 0:
	// written to it); ForwardedIn counts messages the local broker accepted.
	ForwardedOut int64
	ForwardedIn  int64
	// Queued is the number of QoS 1 and 2 messages waiting for upstream.
	Queued int
	// QueueDropped counts messages the queue policy discarded.
	QueueDropped int64
	// QoS0Dropped counts QoS 0 messages dropped while upstream was down.
	QoS0Dropped int64
	// Rejected counts messages refused by the upstream broker (PUBACK or
	// PUBREC reason code 0x80 or above) or by the local broker; they are
	// not retried.
	Rejected int64
	// Expired counts queued messages whose message expiry ran out before
	// they could be sent.
	Expired int64
	// Corrupt counts disk queue files set aside because they could not be
	// read; QueueErrors counts failed queue writes and removals (the
	// message then stays in memory only).
	Corrupt     int64
	QueueErrors int64
	// Connects counts successful upstream connections; ConnectFailures
	// counts failed attempts.
	Connects        int64
	ConnectFailures int64
}

// Bridge forwards between the local broker and one upstream broker.
// Create it with New, run it with Start, stop it with Close.
type Bridge struct {
	broker   *mqttcore.Broker
	opts     Options // defaults applied
	url      *url.URL
	log      *slog.Logger
	tls      *tls.Config
	password []byte
	q        *outQueue
	wake     chan struct{} // capacity 1: the local session has deliveries
	full     bool          // the queue was full at the last push; only the pump uses it

	mu        sync.Mutex
	started   bool
	closed    bool
	closeDone chan struct{}
	stop      context.CancelFunc          // ends the pump and the sender
	hangUp    context.CancelFunc          // ends autopaho
	cm        *autopaho.ConnectionManager // set by Start
	sess      *mqttcore.Session           // set by Start
	sniffed   *sniffConn                  // the latest connection attempt's

	wg   sync.WaitGroup
	link linkState
	// offlineAcked is set once the upstream broker has acknowledged the
	// offline state published by Close; disconnectPacket reads it.
	offlineAcked atomic.Bool
	hooks        hooks // set by tests only, before Start

	forwardedOut, forwardedIn, queueDropped, qos0Dropped atomic.Int64
	rejected, expired, corrupt, queueErrors              atomic.Int64
	connects, connectFailures                            atomic.Int64
}

// hooks are points at which tests of this package stop the bridge, to force
// an interleaving of Close with the setup after a connection. They are nil
// outside tests.
type hooks struct {
	// beforeOnline runs on the sender just before it publishes the online
	// state; ctx is the sender's.
	beforeOnline func(ctx context.Context)
	// afterOffline runs in Close after the offline publish, whose outcome
	// err is, and before the disconnect.
	afterOffline func(err error)
}

// New checks opts, reads the password file and the TLS files, and loads the
// disk queue if there is one. The bridge does nothing until Start.
func New(b *mqttcore.Broker, opts Options) (*Bridge, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no broker", ErrInvalidOptions)
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	u, _ := parseURL(opts.URL) // validated
	br := &Bridge{
		broker:    b,
		opts:      opts,
		url:       u,
		log:       opts.Logger,
		wake:      make(chan struct{}, 1),
		closeDone: make(chan struct{}),
	}
	if br.log == nil {
		br.log = slog.New(slog.DiscardHandler)
	}
	br.log = br.log.With("bridge", opts.Name)
	br.password = []byte(opts.Password)
	if opts.PasswordFile != "" {
		pw, err := os.ReadFile(opts.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: password file: %w", opts.Name, err)
		}
		br.password = []byte(strings.TrimRight(string(pw), "\r\n"))
	}
	if u.Scheme == "mqtts" || u.Scheme == "wss" {
		cfg, err := tlsConfig(opts.TLS)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", opts.Name, err)
		}
		if opts.TLS.InsecureSkipVerify {
			br.log.Warn("TLS certificate verification of the upstream broker is off: anyone on the path can read and change the traffic")
		}
		br.tls = cfg
	}
	if opts.Queue.Dir != "" {
		q, corrupt, err := openDiskQueue(opts.Queue.Dir)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", opts.Name, err)
		}
		if corrupt > 0 {
			br.corrupt.Add(int64(corrupt))
			br.log.Warn("disk queue files could not be read and were set aside", "count", corrupt, "dir", opts.Queue.Dir)
		}
		if n := len(q.entries); n > 0 {
			br.log.Info("disk queue restored", "messages", n)
		}
		br.q = q
	} else {
		br.q = newOutQueue()
	}
	br.link.changed = make(chan struct{})
	return br, nil
}

// tlsConfig builds the client side of TLS from PEM files.
func tlsConfig(o TLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // explicit option, warned about
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate %s: %w", o.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Start connects the bridge's session to the local broker, subscribes it to
// the local filters of the out rules and starts the upstream connection,
// which is retried until it succeeds. The bridge runs until Close, or until
// ctx ends (Close must still be called); then the upstream connection ends
// with the will, so the state upstream becomes offline.
func (b *Bridge) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrClosed
	case b.started:
		return ErrStarted
	}
	sess, _, err := b.broker.Connect(mqttcore.ConnectOptions{
		ClientID:       "snwgw-bridge-" + b.opts.Name,
		SessionExpiry:  uint32(b.opts.SessionExpiry / time.Second),
		ReceiveMaximum: 65535,
		Consumer:       (*consumer)(b),
		// An MQTT client taking this id over would stop the bridge for good.
		Internal: true,
	})
	if err != nil {
		return fmt.Errorf("bridge %s: local session: %w", b.opts.Name, err)
	}
	var subs []mqttcore.Subscription
	for _, r := range b.opts.Rules {
		if r.out() {
			subs = append(subs, mqttcore.Subscription{
				Filter:            r.LocalFilter,
				QoS:               r.QoS,
				NoLocal:           true,
				RetainAsPublished: true,
				RetainHandling:    retainHandling(r.Retain),
			})
		}
	}
	if len(subs) > 0 {
		codes, err := sess.Subscribe(subs...)
		if err == nil {
			for i, c := range codes {
				if c >= 0x80 {
					err = fmt.Errorf("%w: subscription to %q: %v", ErrLocalRefused, subs[i].Filter, c)
					break
				}
			}
		}
		if err != nil {
			_ = sess.Disconnect(mqttcore.DisconnectOptions{})
			return fmt.Errorf("bridge %s: local subscribe: %w", b.opts.Name, err)
		}
	}

	// autopaho's context outlives the pump's and the sender's, so that Close
	// can stop them and still publish the offline state.
	connCtx, hangUp := context.WithCancel(ctx)
	runCtx, stop := context.WithCancel(connCtx)
	b.sess = sess // before autopaho starts: the in direction uses it
	cm, err := autopaho.NewConnection(connCtx, b.clientConfig())
	if err != nil {
		stop()
		hangUp()
		_ = sess.Disconnect(mqttcore.DisconnectOptions{})
		return fmt.Errorf("bridge %s: %w", b.opts.Name, err)
	}
	b.started, b.cm, b.stop, b.hangUp = true, cm, stop, hangUp
	b.goFunc(func() { b.pump(runCtx) })
	b.goFunc(func() { b.sender(runCtx) })
	b.log.Info("bridge started", "url", b.url.Redacted(), "client_id", b.opts.ClientID, "queued", b.q.len())
	return nil
}

// retainHandling sends retained messages on subscribe only to rules that
// pass the RETAIN flag, and only for a new subscription (MQTT 5 §3.8.3.1).
func retainHandling(retain bool) byte {
	if retain {
		return 1
	}
	return 2
}

// goFunc runs f on a goroutine counted by b.wg, added before it starts.
func (b *Bridge) goFunc(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

func (b *Bridge) clientConfig() autopaho.ClientConfig {
	secs := uint32(b.opts.SessionExpiry / time.Second)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{b.url},
		TlsCfg:                        b.tls,
		KeepAlive:                     uint16(b.opts.KeepAlive / time.Second),
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         secs,
		ReconnectBackoff:              b.backoff,
		ConnectTimeout:                b.opts.ConnectTimeout,
		ConnectUsername:               b.opts.Username,
		ConnectPassword:               b.password,
		WillMessage: &paho.WillMessage{
			Topic:   b.opts.StateTopic,
			Payload: []byte(StateOffline),
			QoS:     1,
			Retain:  true,
		},
		DisconnectPacketBuilder: b.disconnectPacket,
		OnConnectionUp:          b.onConnectionUp,
		OnConnectionDown:        b.onConnectionDown,
		OnConnectError:          b.onConnectError,
		ClientConfig: paho.ClientConfig{
			ClientID:          b.opts.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){b.onPublishReceived},
			PacketTimeout:     b.opts.PublishTimeout,
			OnServerDisconnect: func(d *paho.Disconnect) {
				b.log.Warn("upstream broker disconnected the bridge", "reason", d.ReasonCode, "text", disconnectReason(d))
			},
		},
	}
	if b.url.Scheme == "mqtt" || b.url.Scheme == "mqtts" {
		// Dialling here lets the bridge see the raw CONNACK, which is how an
		// MQTT 3.1.1 server is told apart (see onConnectError). autopaho
		// dials WebSockets itself.
		cfg.AttemptConnection = b.dial
	}
	return cfg
}

func disconnectReason(d *paho.Disconnect) string {
	if d.Properties != nil {
		return d.Properties.ReasonString
	}
	return ""
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	up, _, _ := b.link.get()
	return Stats{
		Connected:       up,
		ForwardedOut:    b.forwardedOut.Load(),
		ForwardedIn:     b.forwardedIn.Load(),
		Queued:          b.q.len(),
		QueueDropped:    b.queueDropped.Load(),
		QoS0Dropped:     b.qos0Dropped.Load(),
		Rejected:        b.rejected.Load(),
		Expired:         b.expired.Load(),
		Corrupt:         b.corrupt.Load(),
		QueueErrors:     b.queueErrors.Load(),
		Connects:        b.connects.Load(),
		ConnectFailures: b.connectFailures.Load(),
	}
}

// Close ends the bridge and leaves the retained state upstream offline. It
// stops the bridge's goroutines, then publishes the offline state and waits
// for the upstream broker's acknowledgement (bounded by ctx and
// PublishTimeout), and disconnects. With the acknowledgement the DISCONNECT
// is a normal one, which discards the will; without it (the link is or goes
// down, the broker refuses the message, time runs out) the DISCONNECT asks
// for the will, or the connection is already gone, and either way the
// upstream broker publishes the offline will. Close then stops autopaho and
// ends the local session, which keeps what the memory queue had not sent for
// SessionExpiry. It waits for all of that or for ctx, and is idempotent: a
// second call waits for the first.
func (b *Bridge) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		select {
		case <-b.closeDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()
	defer close(b.closeDone)
	if !started {
		return nil
	}

	var errs []error
	// The sender, which alone publishes online, stops first, and offline is
	// published only once it has returned: an online it wrote is then ahead
	// of offline on the connection, or in paho's session store, which sends
	// unacknowledged messages again in their original order after a
	// reconnection (MQTT 5 §4.6). Either way online cannot land after
	// offline.
	b.stop()
	if err := wait(ctx, b.wg.Wait); err != nil {
		errs = append(errs, err)
	} else {
		up, _, _ := b.link.get()
		err := b.publishOffline(ctx)
		if err != nil && up {
			b.log.Warn("upstream broker did not acknowledge the offline state; disconnecting with the will", "err", err)
		}
		if h := b.hooks.afterOffline; h != nil {
			h(err)
		}
	}
	// autopaho sends the DISCONNECT that disconnectPacket builds, if a
	// connection is up by now.
	if err := b.cm.Disconnect(ctx); err != nil && !errors.Is(err, autopaho.ConnectionDownError) {
		errs = append(errs, fmt.Errorf("disconnect: %w", err))
	}
	b.hangUp()
	if err := wait(ctx, func() { <-b.cm.Done() }); err != nil {
		errs = append(errs, err)
	}
	if err := b.sess.Disconnect(mqttcore.DisconnectOptions{}); err != nil && !errors.Is(err, mqttcore.ErrSessionClosed) {
		errs = append(errs, fmt.Errorf("local session: %w", err))
	}
	b.log.Info("bridge closed", "queued", b.q.len())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bridge %s: close: %w", b.opts.Name, err)
	}
	return nil
}

// publishOffline publishes the offline state, waits for the upstream
// broker's acknowledgement and records it for disconnectPacket. The wait
// ends early when the link goes down: the connection is gone without a
// DISCONNECT, so the upstream broker has published the will.
func (b *Bridge) publishOffline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, _, changed := b.link.get()
	watching := make(chan struct{})
	b.goFunc(func() {
		defer close(watching)
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			var up bool
			if up, _, changed = b.link.get(); !up {
				cancel()
				return
			}
		}
	})
	_, err := b.publishState(ctx, StateOffline)
	cancel()
	<-watching
	if err != nil {
		return fmt.Errorf("publish offline state: %w", err)
	}
	b.offlineAcked.Store(true)
	return nil
}

// wait runs f, which blocks until something has finished, and returns when
// it does or when ctx ends. In the second case f's goroutine returns later,
// when what it waits for finishes.
func wait(ctx context.Context, f func()) error {
	done := make(chan struct{})
	go func() {
		f()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
