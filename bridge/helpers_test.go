package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// waitTime bounds every wait of these tests; it is long because CI machines
// are slow, and it is never a measurement.
const waitTime = 30 * time.Second

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// mosquitto is a real mosquitto broker run by a test.
type mosquitto struct {
	t    testing.TB
	path string
	conf string
	port int
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startMosquitto runs mosquitto with a config of "listener PORT 127.0.0.1"
// followed by extra lines, on a spare port, and waits until it accepts
// connections. It is stopped when the test ends.
func startMosquitto(t testing.TB, extra ...string) *mosquitto {
	t.Helper()
	path := testpeer.Look(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	m := &mosquitto{t: t, path: path, port: freePort(t), log: filepath.Join(dir, "mosquitto.log")}
	lines := append([]string{fmt.Sprintf("listener %d 127.0.0.1", m.port)}, extra...)
	if os.Geteuid() == 0 {
		// mosquitto started as root drops to the user "mosquitto", who cannot
		// read the test's temporary files.
		lines = append(lines, "user root")
	}
	if !strings.Contains(strings.Join(extra, "\n"), "allow_anonymous") {
		lines = append(lines, "allow_anonymous true")
	}
	m.conf = filepath.Join(dir, "mosquitto.conf")
	require.NoError(t, os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	t.Cleanup(func() {
		if m.cmd != nil {
			m.kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(m.log)
			t.Logf("mosquitto log:\n%s", b)
		}
	})
	m.start()
	return m
}

func (m *mosquitto) start() {
	m.t.Helper()
	logf, err := os.OpenFile(m.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	require.NoError(m.t, err)
	args := []string{"-c", m.conf}
	if _, bench := m.t.(*testing.B); !bench {
		args = append(args, "-v") // every packet in the log shown on failure
	}
	m.cmd = exec.Command(m.path, args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	require.NoError(m.t, m.cmd.Start())
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}(m.cmd, m.done)
	m.waitListening(m.port)
}

// waitListening polls until port accepts a TCP connection, or fails.
func (m *mosquitto) waitListening(port int) {
	m.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(waitTime)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-m.done:
			m.t.Fatalf("mosquitto exited before listening on %s", addr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto never listened on %s", addr)
		}
	}
}

// stop ends mosquitto with SIGTERM, which saves its persistence file.
func (m *mosquitto) stop() { m.signal(syscall.SIGTERM) }

// kill ends mosquitto with SIGKILL.
func (m *mosquitto) kill() { m.signal(syscall.SIGKILL) }

func (m *mosquitto) signal(sig syscall.Signal) {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(waitTime):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

func (m *mosquitto) url() string  { return fmt.Sprintf("mqtt://127.0.0.1:%d", m.port) }
func (m *mosquitto) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

// received is one message an observer got.
type received struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	User    map[string]string
}

// observer is an MQTT 5 client of the upstream broker that records what
// it receives, standing in for the upstream consumers.
type observer struct {
	cli  *paho.Client
	msgs chan received
}

type observerOptions struct {
	clientID     string
	cleanStart   bool
	expiry       uint32
	username     string
	password     string
	dial         func() (net.Conn, error)
	subscription []paho.SubscribeOptions
}

// newObserver connects to addr and subscribes to filters at QoS 2.
func newObserver(t testing.TB, addr string, filters ...string) *observer {
	t.Helper()
	o := observerOptions{clientID: fmt.Sprintf("observer-%d", time.Now().UnixNano()), cleanStart: true}
	for _, f := range filters {
		o.subscription = append(o.subscription, paho.SubscribeOptions{Topic: f, QoS: 2, RetainAsPublished: true})
	}
	return connectObserver(t, addr, o)
}

func connectObserver(t testing.TB, addr string, o observerOptions) *observer {
	t.Helper()
	dial := o.dial
	if dial == nil {
		dial = func() (net.Conn, error) { return net.DialTimeout("tcp", addr, waitTime) }
	}
	conn, err := dial()
	require.NoError(t, err)
	ob := &observer{msgs: make(chan received, 100000)}
	ob.cli = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			r := received{Topic: pr.Packet.Topic, Payload: string(pr.Packet.Payload), QoS: pr.Packet.QoS, Retain: pr.Packet.Retain, User: map[string]string{}}
			if pr.Packet.Properties != nil {
				for _, u := range pr.Packet.Properties.User {
					r.User[u.Key] = u.Value
				}
			}
			select {
			case ob.msgs <- r:
			default: // the test fails on the count it sees
			}
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	cp := &paho.Connect{ClientID: o.clientID, CleanStart: o.cleanStart, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &o.expiry}}
	if o.username != "" {
		cp.Username, cp.UsernameFlag = o.username, true
		cp.Password, cp.PasswordFlag = []byte(o.password), true
	}
	ca, err := ob.cli.Connect(ctx, cp)
	require.NoError(t, err)
	require.Equal(t, byte(0), ca.ReasonCode)
	if len(o.subscription) > 0 {
		_, err = ob.cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: o.subscription})
		require.NoError(t, err)
	}
	t.Cleanup(func() { ob.close() })
	return ob
}

func (ob *observer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = ob.cli.Disconnect(&paho.Disconnect{})
	<-ctxDone(ctx, ob.cli.Done())
}

func ctxDone(ctx context.Context, ch <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		select {
		case <-ch:
		case <-ctx.Done():
		}
		close(out)
	}()
	return out
}

// publish publishes from the observer's client (the upstream side).
func (ob *observer) publish(t testing.TB, topic, payload string, qos byte, retain bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	_, err := ob.cli.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
	require.NoError(t, err)
}

// next waits for the next message whose topic passes keep.
func (ob *observer) next(t testing.TB, keep func(received) bool) received {
	t.Helper()
	timeout := time.After(waitTime)
	for {
		select {
		case r := <-ob.msgs:
			if keep == nil || keep(r) {
				return r
			}
		case <-timeout:
			t.Fatalf("observer: no message in %v", waitTime)
			return received{}
		}
	}
}

func topicIs(topic string) func(received) bool {
	return func(r received) bool { return r.Topic == topic }
}

// localClient is an in-process client of the local broker.
type localClient struct {
	sess *mqttcore.Session
	msgs chan mqttcore.Delivery
	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func (c *localClient) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *localClient) Disconnected(mqttcore.ReasonCode) {}

// newLocalClient connects a session to the broker, subscribed to filters,
// that acknowledges and records every delivery.
func newLocalClient(t testing.TB, b *mqttcore.Broker, id string, filters ...string) *localClient {
	t.Helper()
	c := &localClient{msgs: make(chan mqttcore.Delivery, 100000), wake: make(chan struct{}, 1), done: make(chan struct{})}
	sess, _, err := b.Connect(mqttcore.ConnectOptions{ClientID: id, CleanStart: true, Consumer: c})
	require.NoError(t, err)
	c.sess = sess
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.done:
				return
			case <-c.wake:
			}
			for {
				d, ok := sess.Next()
				if !ok {
					break
				}
				switch {
				case d.Release:
					_ = sess.Complete(d.PacketID)
					continue
				case d.QoS == 1:
					_ = sess.Ack(d.PacketID)
				case d.QoS == 2:
					_ = sess.Received(d.PacketID)
					_ = sess.Complete(d.PacketID)
				}
				c.msgs <- d
			}
		}
	}()
	for _, f := range filters {
		codes, err := sess.Subscribe(mqttcore.Subscription{Filter: f, QoS: 2, RetainAsPublished: true})
		require.NoError(t, err)
		require.Less(t, byte(codes[0]), byte(0x80))
	}
	t.Cleanup(func() {
		close(c.done)
		c.wg.Wait()
		_ = sess.Disconnect(mqttcore.DisconnectOptions{})
	})
	return c
}

func (c *localClient) publish(t testing.TB, topic, payload string, qos byte, retain bool) {
	t.Helper()
	require.NoError(t, c.sess.Publish(mqttcore.Message{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}))
}

func (c *localClient) next(t testing.TB) mqttcore.Delivery {
	t.Helper()
	select {
	case d := <-c.msgs:
		return d
	case <-time.After(waitTime):
		t.Fatalf("local client: no message in %v", waitTime)
		return mqttcore.Delivery{}
	}
}

// newBroker starts a broker core that is closed when the test ends.
func newBroker(t testing.TB) *mqttcore.Broker {
	t.Helper()
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1, MaxQueued: 100000})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// startBridge creates and starts a bridge with fast reconnects and closes it
// when the test ends.
func startBridge(t testing.TB, b *mqttcore.Broker, opts Options) *Bridge {
	t.Helper()
	if opts.ConnectRetryMin == 0 {
		opts.ConnectRetryMin, opts.ConnectRetryMax = 20*time.Millisecond, 200*time.Millisecond
	}
	if opts.ClientID == "" {
		opts.ClientID = "gw-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	br, err := New(b, opts)
	require.NoError(t, err)
	require.NoError(t, br.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		_ = br.Close(ctx)
	})
	return br
}

func waitConnected(t testing.TB, br *Bridge) {
	t.Helper()
	require.Eventually(t, func() bool { return br.Stats().Connected }, waitTime, 5*time.Millisecond, "bridge never connected")
}

// testLogger writes the bridge's log to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// logSink is a slog.Handler that hands every record's message and
// attributes to a channel, for tests that wait for a log line.
type logSink struct{ lines chan string }

func (s logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s logSink) WithGroup(string) slog.Handler            { return s }
func (s logSink) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	select {
	case s.lines <- line:
	default:
	}
	return nil
}

// proxy forwards TCP connections to target while open; cut closes every
// connection abruptly, which is what the upstream broker sees when a
// gateway dies: no DISCONNECT, the socket just ends.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	open  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, open: true, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setOpen(false)
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "mqtt://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		open := p.open
		p.mu.Unlock()
		if !open {
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, waitTime)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Add(1)
			go func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}(pair[0], pair[1])
		}
	}
}

func (p *proxy) setOpen(open bool) {
	p.mu.Lock()
	p.open = open
	p.mu.Unlock()
}

// cut closes every proxied connection at once.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset, not a polite close
		}
		_ = c.Close()
	}
}

// snClient is a minimal MQTT-SN 1.2 client over loopback UDP: CONNECT,
// REGISTER and QoS 1 PUBLISH, each waiting for its answer.
type snClient struct {
	conn  *net.UDPConn
	gw    net.Addr
	msgID uint16
	buf   []byte
}

func dialSN(gw net.Addr, clientID string) (*snClient, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	c := &snClient{conn: conn, gw: gw, buf: make([]byte, 2048)}
	ack, err := c.request(&mqttsn.Connect{CleanSession: true, Duration: 60, ClientID: clientID}, func(p mqttsn.Packet) bool {
		_, ok := p.(*mqttsn.ConnAck)
		return ok
	})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if rc := ack.(*mqttsn.ConnAck).ReturnCode; rc != mqttsn.Accepted {
		_ = conn.Close()
		return nil, fmt.Errorf("connect: %w", rc)
	}
	return c, nil
}

func (c *snClient) close() {
	b, _ := mqttsn.Append(nil, &mqttsn.Disconnect{})
	_, _ = c.conn.WriteTo(b, c.gw)
	_ = c.conn.Close()
}

// request sends p and waits for the answer accepted by want, sending p
// again (as MQTT-SN's T_retry asks) when none comes.
func (c *snClient) request(p mqttsn.Packet, want func(mqttsn.Packet) bool) (mqttsn.Packet, error) {
	out, err := mqttsn.Append(nil, p)
	if err != nil {
		return nil, err
	}
	for try := 0; try < 5; try++ {
		if _, err := c.conn.WriteTo(out, c.gw); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_ = c.conn.SetReadDeadline(deadline)
			n, _, err := c.conn.ReadFrom(c.buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, err
			}
			in, err := mqttsn.Parse(c.buf[:n])
			if err == nil && want(in) {
				return in, nil
			}
		}
		if pub, ok := p.(*mqttsn.Publish); ok {
			pub.DUP = true
			if out, err = mqttsn.Append(nil, pub); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("mqtt-sn: no answer")
}

func (c *snClient) register(topic string) (uint16, error) {
	c.msgID++
	id := c.msgID
	p, err := c.request(&mqttsn.Register{MsgID: id, TopicName: topic}, func(p mqttsn.Packet) bool {
		a, ok := p.(*mqttsn.RegAck)
		return ok && a.MsgID == id
	})
	if err != nil {
		return 0, err
	}
	if rc := p.(*mqttsn.RegAck).ReturnCode; rc != mqttsn.Accepted {
		return 0, fmt.Errorf("register: %w", rc)
	}
	return p.(*mqttsn.RegAck).TopicID, nil
}

func (c *snClient) publishQoS1(topicID uint16, data []byte) error {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	id := c.msgID
	p, err := c.request(&mqttsn.Publish{QoS: 1, TopicIDType: mqttsn.TopicNormal, TopicID: topicID, MsgID: id, Data: data},
		func(p mqttsn.Packet) bool {
			a, ok := p.(*mqttsn.PubAck)
			return ok && a.MsgID == id
		})
	if err != nil {
		return err
	}
	if rc := p.(*mqttsn.PubAck).ReturnCode; rc != mqttsn.Accepted {
		return fmt.Errorf("publish: %w", rc)
	}
	return nil
}

// newGateway serves MQTT-SN on a loopback UDP port in front of b.
func newGateway(t testing.TB, b *mqttcore.Broker) (*gateway.Gateway, net.Addr) {
	t.Helper()
	g, err := gateway.New(b, &gateway.Options{})
	require.NoError(t, err)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, g.Serve(gateway.Link{Name: "udp", Conn: conn}))
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g, conn.LocalAddr()
}

// seqPayload and parseSeq put a publisher and a sequence number in a payload.
func seqPayload(pub, seq int) string { return fmt.Sprintf("%d:%d", pub, seq) }

func parseSeq(s string) (pub, seq int, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("payload %q", s)
	}
	if pub, err = strconv.Atoi(a); err == nil {
		seq, err = strconv.Atoi(b)
	}
	return pub, seq, err
}

func subs(filters ...string) []paho.SubscribeOptions {
	var s []paho.SubscribeOptions
	for _, f := range filters {
		s = append(s, paho.SubscribeOptions{Topic: f, QoS: 2})
	}
	return s
}

func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
