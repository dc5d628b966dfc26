package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/mqttload"
	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttcore/packet"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// The crash tests run the real binary as a child process and kill it with
// SIGKILL, the way a power cut or the OOM killer ends it: nothing of the
// process's shutdown path runs, so only what is on disk survives.

// generation tells clients that a new server is up: up returns a channel
// closed when the current server is ready.
type generation struct {
	mu sync.Mutex
	ch chan struct{}
}

func newGeneration() *generation { return &generation{ch: make(chan struct{})} }

func (g *generation) up() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ch
}

func (g *generation) ready() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.ch)
}

func (g *generation) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ch = make(chan struct{})
}

// ledger records what the broker acknowledged to the publishers and
// counts acknowledgements, so the test can kill the server after a number
// of them rather than after a guessed time.
type ledger struct {
	mu       sync.Mutex
	acked    map[string]int    // payload → QoS of the acknowledged message
	retained map[string]int    // retained topic → last acknowledged value
	commands map[string]string // acknowledged commands to sleeping sensors: payload → topic
	count    int               // acknowledgements so far
	waiters  map[int]chan bool // wake at count ≥ key
}

func newLedger() *ledger {
	return &ledger{acked: map[string]int{}, retained: map[string]int{}, commands: map[string]string{}, waiters: map[int]chan bool{}}
}

// ack records an acknowledged message; an empty payload counts one
// without recording it (a retained value, recorded by ackRetained).
func (l *ledger) ack(payload string, qos int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if payload != "" {
		l.acked[payload] = qos
	}
	l.count++
	for n, ch := range l.waiters {
		if l.count >= n {
			close(ch)
			delete(l.waiters, n)
		}
	}
}

func (l *ledger) ackCommand(topic, payload string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commands[payload] = topic
}

func (l *ledger) ackRetained(topic string, v int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retained[topic] = max(l.retained[topic], v)
}

// after returns a channel closed once n more acknowledgements have come.
func (l *ledger) after(n int) <-chan bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan bool)
	l.waiters[l.count+n] = ch
	return ch
}

// mqttPublisher is a reliable MQTT 3.1.1 publisher with a persistent
// session: after a reconnect it repeats every unacknowledged PUBLISH with
// DUP and every unanswered PUBREL (MQTT 3.1.1 §4.4), as a real client must.
type mqttPublisher struct {
	id, addr string
	qos      byte
	gen      *generation
	led      *ledger
	window   int
	// commands, if set, makes this a publisher of commands to sleeping
	// sensors: message n goes to commands[n%len], and it stops after limit.
	commands []string
	limit    int

	next     int                 // messages published so far
	inflight map[uint16]*pending // by packet id
	nextID   uint16
}

type pending struct {
	p        *packet.PublishPacket
	received bool // PUBREC came: only PUBREL remains
	retained int  // the value of a retained publication, -1 otherwise
}

func (p *mqttPublisher) run(ctx context.Context) error {
	p.inflight = map[uint16]*pending{}
	for ctx.Err() == nil {
		select {
		case <-p.gen.up():
		case <-ctx.Done():
			return nil
		}
		if err := p.session(ctx); err != nil && ctx.Err() == nil && !isConnErr(err) {
			return err
		}
	}
	return nil
}

func isConnErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// mqttConn is a raw MQTT 3.1.1 connection of the crash test's own clients,
// closed when ctx ends.
type mqttConn struct {
	nc   net.Conn
	br   *bufio.Reader
	stop func() bool
}

// dialMQTT connects and sends CONNECT with a persistent session; the
// caller reads the CONNACK.
func dialMQTT(ctx context.Context, addr, id string) (*mqttConn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &mqttConn{nc: nc, br: bufio.NewReader(nc), stop: context.AfterFunc(ctx, func() { nc.Close() })}
	if err := c.write(&packet.ConnectPacket{ClientID: id, KeepAlive: 60}); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *mqttConn) write(pk packet.Packet) error {
	b, err := packet.Append(nil, pk, packet.V311)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(b)
	return err
}

func (c *mqttConn) close() {
	c.stop()
	_ = c.nc.Close()
}

// session runs one connection until it fails or ctx ends.
func (p *mqttPublisher) session(ctx context.Context) error {
	c, err := dialMQTT(ctx, p.addr, p.id)
	if err != nil {
		return err
	}
	defer c.close()
	br, write := c.br, c.write
	pk, err := packet.Read(br, packet.V311, 0)
	if err != nil {
		return err
	}
	if ack, ok := pk.(*packet.ConnackPacket); !ok || ack.ReasonCode != packet.Success {
		return fmt.Errorf("%s: CONNACK %v", p.id, pk)
	}
	// Repeat what is unacknowledged, oldest first.
	for _, id := range sortedIDs(p.inflight) {
		f := p.inflight[id]
		if f.received {
			err = write(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: id})
		} else {
			f.p.DUP = true
			err = write(f.p)
		}
		if err != nil {
			return err
		}
	}
	for {
		for len(p.inflight) < p.window && (p.limit == 0 || p.next < p.limit) {
			if err := p.publishNext(write); err != nil {
				return err
			}
		}
		pk, err := packet.Read(br, packet.V311, 0)
		if err != nil {
			return err
		}
		a, ok := pk.(*packet.AckPacket)
		if !ok {
			return fmt.Errorf("%s: unexpected %v", p.id, pk)
		}
		f := p.inflight[a.PacketID]
		if f == nil {
			continue // an acknowledgement repeated after a reconnect
		}
		switch a.PacketType {
		case packet.Puback, packet.Pubrec:
			if !f.received {
				f.received = true
				switch {
				case f.retained >= 0:
					p.led.ackRetained(f.p.Topic, f.retained)
					p.led.ack("", 1)
				case p.commands != nil:
					p.led.ackCommand(f.p.Topic, string(f.p.Payload))
				default:
					p.led.ack(string(f.p.Payload), int(f.p.QoS))
				}
			}
			if a.PacketType == packet.Puback {
				delete(p.inflight, a.PacketID)
			} else if err := write(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: a.PacketID}); err != nil {
				return err
			}
		case packet.Pubcomp:
			delete(p.inflight, a.PacketID)
		}
	}
}

func (p *mqttPublisher) publishNext(write func(packet.Packet) error) error {
	p.next++
	for {
		p.nextID++
		if p.nextID == 0 {
			p.nextID = 1
		}
		if p.inflight[p.nextID] == nil {
			break
		}
	}
	f := &pending{retained: -1, p: &packet.PublishPacket{QoS: p.qos, PacketID: p.nextID,
		Topic: "load/" + p.id, Payload: fmt.Appendf(nil, "%s-%d", p.id, p.next)}}
	if p.commands != nil {
		f.p.Topic = p.commands[p.next%len(p.commands)]
	} else if p.qos == 1 && p.next%10 == 0 {
		// Every tenth message sets one of four retained values instead.
		f.retained = p.next
		f.p.Topic = fmt.Sprintf("ret/%s/%d", p.id, p.next/10%4)
		f.p.Retain = true
		f.p.Payload = strconv.AppendInt(nil, int64(p.next), 10)
	}
	p.inflight[p.nextID] = f
	return write(f.p)
}

func sortedIDs(m map[uint16]*pending) []uint16 {
	// Packet ids wrap, but a test run publishes far fewer than 65535.
	ids := make([]uint16, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// snPublisher is an MQTT-SN sensor publishing at QoS 1 or 2 through the
// gateway with the simulator's client. A message whose Publish returned nil
// was acknowledged; one that failed when the gateway went away may or may
// not have arrived, and is not sent again (a new MsgId would make it a new
// message).
func snPublisher(ctx context.Context, gw *net.UDPAddr, id string, qos mqttsn.QoS, g *generation, led *ledger) error {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	c, err := snclient.Dial(conn, gw, snclient.Options{ClientID: id, KeepAlive: time.Minute,
		RetryInterval: 200 * time.Millisecond, RetryCount: 10})
	if err != nil {
		return err
	}
	defer c.Close()
	n := 0
	for ctx.Err() == nil {
		if st := c.State(); st != snclient.StateActive {
			select {
			case <-g.up():
			case <-ctx.Done():
				return nil
			}
			if err := c.Connect(ctx); err != nil {
				continue
			}
		}
		n++
		payload := fmt.Sprintf("%s-%d", id, n)
		err := c.Publish(ctx, snclient.Message{Topic: snclient.TopicName("load/" + id), QoS: qos, Payload: []byte(payload)})
		if err == nil {
			led.ack(payload, int(qos))
		}
	}
	return nil
}

// sleeper is an MQTT-SN sensor asleep for the whole test, subscribed to
// its command topic: the gateway buffers its commands, and it collects
// them by waking with PINGREQ(ClientId) at the end, from a gateway that
// has been restarted many times since it went to sleep.
type sleeper struct {
	c     *snclient.Client
	topic string
	mu    sync.Mutex
	got   map[string]int
}

func startSleeper(t *testing.T, gw *net.UDPAddr, id string) *sleeper {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &sleeper{topic: "cmd/" + id, got: map[string]int{}}
	s.c, err = snclient.Dial(conn, gw, snclient.Options{ClientID: id, KeepAlive: time.Minute,
		RetryInterval: 200 * time.Millisecond, RetryCount: 10,
		Handler: func(m snclient.Message) {
			s.mu.Lock()
			s.got[string(m.Payload)]++
			s.mu.Unlock()
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.c.Close() })
	ctx := t.Context()
	require.NoError(t, s.c.Connect(ctx))
	_, _, err = s.c.Subscribe(ctx, snclient.TopicName(s.topic), mqttsn.QoS1)
	require.NoError(t, err)
	require.NoError(t, s.c.Sleep(ctx, time.Hour))
	return s
}

// subscriber is mosquitto_sub with a persistent session, an independent
// MQTT client that reconnects by itself across the restarts. It judges
// QoS 1 only: libmosquitto (2.0.11, Debian 12) keeps a copy of every QoS 2
// PUBLISH it receives, DUP or not, and hands the oldest copy of an id to
// the application at each PUBREL. The PUBLISH, PUBLISH(DUP), PUBREL,
// PUBREL that MQTT 3.1.1 §4.4 asks of a server restarted twice at the wrong
// moments therefore makes it print a message twice, and a stale copy left
// behind takes the place of the next message sent under that id, which it
// then never prints (§4.3.3 forbids both of the receiver). The judge below
// keeps the receiver's side of §4.3.3 and judges QoS 1 and 2.
type subscriber struct {
	mu   sync.Mutex
	log  []string       // mosquitto_sub's lines other than messages, for a failure report
	got  map[string]int // payload → times received
	cond chan struct{}  // closed and replaced on every line
}

func startSubscriber(t *testing.T, addr string) *subscriber {
	t.Helper()
	bin := testpeer.Look(t, "mosquitto_sub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(addr)
	// stdbuf: mosquitto_sub's debug lines are block-buffered on a pipe.
	stdbuf := testpeer.Look(t, "stdbuf", "coreutils")
	cmd := exec.Command(stdbuf, "-oL", bin, "-h", host, "-p", port, "-i", "crash-sub", "-c", "-q", "2", "-t", "load/#", "-d", "-v")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := newSubscriber()
	subscribed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(subscribed) })
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			if !strings.HasPrefix(line, "load/") && !strings.Contains(line, "PUBLISH") && !strings.Contains(line, "PUB") {
				s.log = append(s.log, line)
			}
			s.mu.Unlock()
			if strings.Contains(line, "received SUBACK") {
				once()
			}
			// Messages are "TOPIC PAYLOAD" lines among -d's "Client ..." lines.
			if topic, payload, ok := strings.Cut(line, " "); ok && strings.HasPrefix(topic, "load/") {
				s.add(payload)
			}
		}
		s.mu.Lock()
		s.log = append(s.log, "(mosquitto_sub ended)")
		s.mu.Unlock()
	}()
	select {
	case <-subscribed:
	case <-time.After(30 * time.Second):
		t.Fatal("mosquitto_sub did not subscribe")
	}
	return s
}

// judge is a persistent MQTT 3.1.1 subscriber that keeps the receiver's
// rules of §4.3.3 across reconnects: a QoS 2 message is counted when its
// PUBLISH first arrives, its packet id is remembered until PUBREL, and a
// PUBLISH with a remembered id is acknowledged without being counted.
type judge struct {
	addr    string
	gen     *generation
	sub     *subscriber       // counts what arrives; shares its waitFor
	pending map[uint16]string // packet id → payload, until PUBREL
	skipped []string          // QoS 2 PUBLISHes not counted, for a failure report
}

func (j *judge) run(ctx context.Context, subscribed chan<- struct{}) error {
	j.pending = map[uint16]string{}
	for ctx.Err() == nil {
		select {
		case <-j.gen.up():
		case <-ctx.Done():
			return nil
		}
		if err := j.session(ctx, subscribed); err != nil && ctx.Err() == nil && !isConnErr(err) {
			return err
		}
		subscribed = nil
	}
	return nil
}

func (j *judge) session(ctx context.Context, subscribed chan<- struct{}) error {
	c, err := dialMQTT(ctx, j.addr, "crash-judge")
	if err != nil {
		return err
	}
	defer c.close()
	br, write := c.br, c.write
	if err := write(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "load/#", QoS: 2}}}); err != nil {
		return err
	}
	for {
		pk, err := packet.Read(br, packet.V311, 0)
		if err != nil {
			return err
		}
		switch p := pk.(type) {
		case *packet.SubackPacket:
			if subscribed != nil {
				close(subscribed)
				subscribed = nil
			}
		case *packet.PublishPacket:
			held, pending := j.pending[p.PacketID]
			if p.QoS < 2 || !pending {
				j.sub.add(string(p.Payload))
			} else {
				j.sub.mu.Lock()
				j.skipped = append(j.skipped, fmt.Sprintf("%s (DUP %v, id %d, held for %s)", p.Payload, p.DUP, p.PacketID, held))
				j.sub.mu.Unlock()
			}
			switch p.QoS {
			case 1:
				err = write(&packet.AckPacket{PacketType: packet.Puback, PacketID: p.PacketID})
			case 2:
				if !pending {
					j.pending[p.PacketID] = string(p.Payload)
				}
				err = write(&packet.AckPacket{PacketType: packet.Pubrec, PacketID: p.PacketID})
			}
		case *packet.AckPacket:
			if p.PacketType == packet.Pubrel {
				delete(j.pending, p.PacketID)
				err = write(&packet.AckPacket{PacketType: packet.Pubcomp, PacketID: p.PacketID})
			}
		}
		if err != nil {
			return err
		}
	}
}

func newSubscriber() *subscriber {
	return &subscriber{got: map[string]int{}, cond: make(chan struct{})}
}

func (s *subscriber) add(payload string) {
	s.mu.Lock()
	s.got[payload]++
	close(s.cond)
	s.cond = make(chan struct{})
	s.mu.Unlock()
}

// waitFor waits until every payload in want has arrived, or the deadline.
func (s *subscriber) waitFor(want map[string]int, deadline time.Duration) []string {
	timeout := time.After(deadline)
	for {
		s.mu.Lock()
		var missing []string
		for p := range want {
			if s.got[p] == 0 {
				missing = append(missing, p)
			}
		}
		cond := s.cond
		s.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-cond:
		case <-timeout:
			return missing
		}
	}
}

// TestCrashLosesNothingAcknowledged kills the server with SIGKILL at 20
// points under load — MQTT publishers at QoS 1 and 2 with persistent
// sessions, MQTT-SN sensors at QoS 1 and 2, retained values, commands to
// four sleeping MQTT-SN sensors, and a persistent mosquitto_sub —
// restarting it each time, then checks that every acknowledged message
// reached the subscriber, that no QoS 2 message arrived twice, that every
// sleeping sensor collects its commands with PINGREQ(ClientId) and no new
// CONNECT, and that every retained topic holds its last acknowledged value
// or a later one.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	bin := snwgwBinary(t)
	testpeer.Look(t, "mosquitto_sub", "mosquitto-clients")
	port, err := mqttload.SparePort()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dataDir := t.TempDir()
	// The subscriber is away for a second at every restart (its reconnect
	// delay) while four publishers go on: the queue bound must not be what
	// drops messages here.
	conf := filepath.Join(dataDir, "gateway.toml")
	require.NoError(t, os.WriteFile(conf, []byte("[broker]\nmax_queued = 1000000\n[gateway]\nsleep_buffer = 1000\n"), 0o600))
	args := []string{"--config", conf, "--mqtt", addr, "--udp", addr, "--data-dir", dataDir}
	srv := startChild(t, bin, args...)
	defer func() { _ = srv.kill(syscall.SIGKILL) }()

	sub := startSubscriber(t, addr)
	g, led := newGeneration(), newLedger()
	g.ready()
	ctx, cancel := context.WithCancel(context.Background())
	jd := &judge{addr: addr, gen: g, sub: newSubscriber()}
	judged := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	spawn := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	// The judge runs until the checks are done, after the publishers stop.
	jctx, jcancel := context.WithCancel(context.Background())
	jdone := make(chan error, 1)
	go func() { jdone <- jd.run(jctx, judged) }()
	defer func() {
		jcancel()
		assert.NoError(t, <-jdone, "judge")
	}()
	select {
	case <-judged:
	case err := <-jdone:
		t.Fatalf("judge: %v", err)
	}
	for _, p := range []*mqttPublisher{
		{id: "pub1", qos: 1, window: 32},
		{id: "pub2", qos: 2, window: 32},
	} {
		p.addr, p.gen, p.led = addr, g, led
		spawn(func() error { return p.run(ctx) })
	}
	udp := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	var sleepers []*sleeper
	var topics []string
	for i := range 4 {
		sl := startSleeper(t, udp, fmt.Sprintf("sleeper%d", i))
		sleepers = append(sleepers, sl)
		topics = append(topics, sl.topic)
	}
	cmds := &mqttPublisher{id: "cmds", qos: 1, window: 1, commands: topics, limit: 200, addr: addr, gen: g, led: led}
	spawn(func() error { return cmds.run(ctx) })
	spawn(func() error { return snPublisher(ctx, udp, "sn1", mqttsn.QoS1, g, led) })
	spawn(func() error { return snPublisher(ctx, udp, "sn2", mqttsn.QoS2, g, led) })

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const kills = 20
	for i := range kills {
		// A kill point: after a random number of acknowledgements, so the
		// server always dies with messages in every stage of their flows.
		select {
		case <-led.after(20 + rng.IntN(400)):
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(time.Minute):
			t.Fatalf("kill %d: no progress in a minute; log:\n%s", i, srv.logs)
		}
		g.down()
		err := srv.kill(syscall.SIGKILL)
		require.Error(t, err, "killed")
		srv = startChild(t, bin, args...)
		g.ready()
	}
	select {
	case <-led.after(50): // the last server works too
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(time.Minute):
		t.Fatalf("no progress after the last restart; log:\n%s", srv.logs)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	led.mu.Lock()
	acked := led.acked
	led.mu.Unlock()
	qos1 := map[string]int{}
	for p, q := range acked {
		if q == 1 {
			qos1[p] = q
		}
	}
	want := acked
	for name, s := range map[string]*subscriber{"mosquitto_sub": sub, "judge": jd.sub} {
		want := want
		if s == sub {
			want = qos1
		}
		missing := s.waitFor(want, time.Minute)
		byPublisher := map[string]int{}
		for _, p := range missing {
			byPublisher[p[:strings.IndexByte(p, '-')]]++
		}
		if !assert.Empty(t, missing[:min(len(missing), 20)], "%s: acknowledged messages lost (%d of %d, by publisher %v, the first 20 shown)",
			name, len(missing), len(want), byPublisher) {
			s.mu.Lock()
			if s == sub {
				t.Logf("mosquitto_sub's connection lines:\n%s", strings.Join(s.log[max(0, len(s.log)-40):], "\n"))
			} else {
				sub.mu.Lock()
				for _, p := range missing {
					t.Logf("%s: mosquitto_sub received it %d times", p, sub.got[p])
				}
				sub.mu.Unlock()
				for _, sk := range jd.skipped {
					if held := sk[strings.LastIndex(sk, " ")+1 : len(sk)-1]; !strings.HasPrefix(sk, held+" ") {
						t.Logf("the judge took %s for a repeat", sk)
					}
				}
			}
			s.mu.Unlock()
		}
	}
	jd.sub.mu.Lock()
	for p, n := range jd.sub.got {
		if strings.HasPrefix(p, "pub2-") || strings.HasPrefix(p, "sn2-") {
			assert.Equal(t, 1, n, "QoS 2 message %s delivered %d times", p, n)
		}
	}
	t.Logf("%d kills; %d messages acknowledged, %d distinct received", kills, len(want), len(jd.sub.got))
	jd.sub.mu.Unlock()

	// Sleeping sensors: each wakes once, from the last server, and
	// collects every command acknowledged while it slept.
	led.mu.Lock()
	commands := led.commands
	led.mu.Unlock()
	require.NotEmpty(t, commands)
	for _, sl := range sleepers {
		require.NoError(t, sl.c.Wake(t.Context()), "%s wakes", sl.topic)
	}
	for payload, topic := range commands {
		for _, sl := range sleepers {
			if sl.topic == topic {
				sl.mu.Lock()
				assert.NotZero(t, sl.got[payload], "command %s to the sleeping %s", payload, topic)
				sl.mu.Unlock()
			}
		}
	}

	// Retained values: each topic holds its last acknowledged value or a
	// later one (a publication in flight at a kill may have been taken).
	led.mu.Lock()
	retained := led.retained
	led.mu.Unlock()
	require.NotEmpty(t, retained)
	got := readRetained(t, addr, "ret/#", len(retained))
	for topic, v := range retained {
		n, err := strconv.Atoi(got[topic])
		require.NoError(t, err, "retained %s: %q", topic, got[topic])
		assert.GreaterOrEqual(t, n, v, "retained %s", topic)
	}
}

// readRetained subscribes with mosquitto_sub and returns the first n
// retained messages by topic.
func readRetained(t *testing.T, addr, filter string, n int) map[string]string {
	t.Helper()
	bin := testpeer.Look(t, "mosquitto_sub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(bin, "-h", host, "-p", port, "-t", filter, "-v", "--retained-only", "-C", strconv.Itoa(n), "-W", "30").Output()
	require.NoError(t, err, "mosquitto_sub: %s", out)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		topic, payload, _ := strings.Cut(line, " ")
		got[topic] = payload
	}
	return got
}
