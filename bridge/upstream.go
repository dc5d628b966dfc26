package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// backoff is the wait before connection attempt n (0: the first after a
// connection was lost, which is immediate): ConnectRetryMin doubling up to
// ConnectRetryMax, each drawn between half and all of it, so that many
// gateways losing one upstream cluster do not all return in step.
func (b *Bridge) backoff(attempt int) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d := b.opts.ConnectRetryMax
	if attempt-1 < 32 {
		if v := b.opts.ConnectRetryMin << (attempt - 1); v > 0 && v < d {
			d = v
		}
	}
	return d/2 + rand.N(d/2+1)
}

func (b *Bridge) dial(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ConnectTimeout)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	if u.Scheme == "mqtts" {
		d := tls.Dialer{Config: cfg.TlsCfg}
		c, err = d.DialContext(ctx, "tcp", u.Host)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	s := &sniffConn{Conn: c}
	b.mu.Lock()
	b.sniffed = s
	b.mu.Unlock()
	return packets.NewThreadSafeConn(s), nil
}

// sniffConn keeps the first bytes a server sends: its CONNACK.
type sniffConn struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if need := 4 - len(c.first); need > 0 && n > 0 {
		c.first = append(c.first, p[:min(n, need)]...)
	}
	c.mu.Unlock()
	return n, err
}

// isMQTT311Connack reports whether b starts with an MQTT 3.1.1 CONNACK
// refusing the protocol version: type 2, remaining length 2 (an MQTT 5
// CONNACK always has a property length too), return code 0x01
// "unacceptable protocol version" (MQTT 3.1.1 §3.2.2.3).
func isMQTT311Connack(b []byte) bool {
	return len(b) == 4 && b[0] == 0x20 && b[1] == 0x02 && b[3] == 0x01
}

func (b *Bridge) onConnectError(err error) {
	b.connectFailures.Add(1)
	b.mu.Lock()
	s := b.sniffed
	b.sniffed = nil
	b.mu.Unlock()
	var first []byte
	if s != nil {
		s.mu.Lock()
		first = s.first
		s.mu.Unlock()
	}
	var ce *autopaho.ConnackError
	if isMQTT311Connack(first) || (errors.As(err, &ce) && ce.ReasonCode == 0x84) { // 0x84: Unsupported Protocol Version
		b.log.Error(fmt.Sprintf("upstream %s speaks only MQTT 3.1.1; snwgw bridges need MQTT 5: enable MQTT 5 on that broker", b.url.Redacted()),
			"err", ErrMQTT311)
		return
	}
	b.log.Warn("upstream connection attempt failed", "url", b.url.Redacted(), "err", err)
}

func (b *Bridge) onConnectionUp(_ *autopaho.ConnectionManager, ca *paho.Connack) {
	b.connects.Add(1)
	b.log.Info("upstream connected", "url", b.url.Redacted(), "session_present", ca.SessionPresent)
	b.link.set(true)
}

func (b *Bridge) onConnectionDown() bool {
	b.log.Warn("upstream connection lost; queueing", "url", b.url.Redacted())
	b.link.set(false)
	return true
}

// disconnectPacket builds the DISCONNECT with which autopaho ends the
// upstream connection, on Close or when Start's context ends. Unless Close
// has the acknowledgement of the offline state, it asks the upstream broker
// to publish the will (MQTT 5 §3.14.2.1, reason code 0x04 "Disconnect with
// Will Message"): the retained state may still be online (a setup cut short
// by Close, an online sent again from the session on a reconnection during
// Close), and a normal DISCONNECT would discard the will that corrects it.
// The broker publishes the will after everything sent before the
// DISCONNECT, so it comes after any such online.
func (b *Bridge) disconnectPacket() *paho.Disconnect {
	if b.offlineAcked.Load() {
		return &paho.Disconnect{ReasonCode: packets.DisconnectNormalDisconnection}
	}
	return &paho.Disconnect{ReasonCode: packets.DisconnectDisconnectWithWillMessage}
}

// linkState is the upstream connection as the bridge's goroutines see it:
// whether it is up, a generation that grows with every connection, and a
// channel closed (and replaced) on every change.
type linkState struct {
	mu      sync.Mutex
	up      bool
	gen     uint64
	changed chan struct{}
}

func (l *linkState) set(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up = up
	if up {
		l.gen++
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *linkState) get() (up bool, gen uint64, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up, l.gen, l.changed
}
