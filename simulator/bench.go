package simulator

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// BenchTarget is the gateway and broker a benchmark measures.
type BenchTarget struct {
	// Gateway is the MQTT-SN gateway's UDP address, host:port.
	Gateway string
	// Broker is the MQTT broker's address, host:port, where a subscriber
	// counts what the gateway delivered.
	Broker string
	// GatewayPID is the gateway's process, whose memory and CPU the idle
	// scenario reads from /proc; 0 reads this process's (a gateway
	// running in-process).
	GatewayPID int
}

// ErrBench: a benchmark could not run as asked.
var ErrBench = errors.New("simulator: benchmark")

// counter is an MQTT 3.1.1 subscriber that counts the QoS 0 messages on a
// filter and, when their payload starts with a send time, their latency.
// It reads the packets itself, into one reused buffer: a general client
// (paho allocates a few kilobytes for each message) cost a fifth of the
// CPU of an in-process ingest run and fell behind the broker, so the
// benchmark measured its subscriber instead of the gateway. It subscribes
// at QoS 0, so the broker delivers only QoS 0 and nothing is acknowledged.
//
// With more than one connection the subscription is shared
// ($share/{group}/{filter}, MQTT 5 §4.8.2, also taken by brokers from
// MQTT 3.1.1 clients): the broker hands each message to one member, so
// each is counted once, and no single session's queue and writer carry
// the whole rate.
type counter struct {
	conns   []net.Conn
	n       atomic.Uint64
	latency Histogram
	stamped bool
	wg      sync.WaitGroup
	once    sync.Once
	failed  atomic.Pointer[error] // why the read loop stopped, unless closed
	closing atomic.Bool
}

// Counter errors.
var (
	// ErrMQTTPacket: the broker sent a packet the counter cannot read; the
	// connection is unusable.
	ErrMQTTPacket = errors.New("simulator: malformed MQTT packet")
	// ErrMQTTRefused: the broker refused the counter's connection or
	// subscription.
	ErrMQTTRefused = errors.New("simulator: MQTT broker refused")
)

// MQTT 3.1.1 §2.2.1 control packet types, in the fixed header's high
// nibble.
const (
	mqttConnAck = 2
	mqttPublish = 3
	mqttSubAck  = 9
)

// maxCounterPacket bounds the one read buffer: bench payloads are a few
// bytes, and anything larger than this is not one of ours.
const maxCounterPacket = 1 << 20

// counterConns is how many connections share the counter's subscription:
// enough that one session's writer waiting for a core does not fill its
// queue, few enough to cost nothing at low rates.
const counterConns = 4

// newCounter subscribes to filter over conns connections sharing the
// subscription, or over one when the broker refuses the shared one.
func newCounter(ctx context.Context, broker, filter string, conns int, stamped bool) (*counter, error) {
	c, err := dialCounter(ctx, broker, filter, conns, stamped)
	if conns > 1 && errors.Is(err, ErrMQTTRefused) {
		c, err = dialCounter(ctx, broker, filter, 1, stamped)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: subscriber on %s: %w", ErrBench, broker, err)
	}
	return c, nil
}

func dialCounter(ctx context.Context, broker, filter string, conns int, stamped bool) (*counter, error) {
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	id := "snwgwbench" + strconv.FormatInt(time.Now().UnixNano()%1e12, 36) // ≤ 23 bytes with its suffix, §3.1.3.1
	if conns > 1 {
		filter = "$share/" + id + "/" + filter
	}
	c := &counter{stamped: stamped}
	for i := range max(conns, 1) {
		var d net.Dialer
		conn, err := d.DialContext(wctx, "tcp", broker)
		if err != nil {
			c.close()
			return nil, err
		}
		r := bufio.NewReaderSize(conn, 64<<10)
		if err := handshake(wctx, conn, r, id+"-"+strconv.Itoa(i), filter); err != nil {
			conn.Close()
			c.close()
			return nil, err
		}
		c.conns = append(c.conns, conn)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.readLoop(r)
		}()
	}
	return c, nil
}

// handshake connects and subscribes, reading the answers on the caller's
// goroutine before the read loop starts.
func handshake(ctx context.Context, conn net.Conn, r *bufio.Reader, id, filter string) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	// CONNECT, §3.1: protocol name "MQTT", level 4, flags (clean session),
	// keep alive 0 (off, §3.1.2.10: the counter only reads, and lives as
	// long as one scenario), client identifier.
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0}
	body = appendMQTTString(body, id)
	pkt := appendMQTTHeader(nil, 0x10, len(body))
	pkt = append(pkt, body...)
	// SUBSCRIBE, §3.8: packet identifier 1, the filter, requested QoS 0.
	body = appendMQTTString([]byte{0, 1}, filter)
	body = append(body, 0)
	pkt = appendMQTTHeader(pkt, 0x82, len(body))
	pkt = append(pkt, body...)
	if _, err := conn.Write(pkt); err != nil {
		return err
	}
	var buf []byte
	for _, want := range []byte{mqttConnAck, mqttSubAck} {
		h, b, err := readMQTTPacket(r, buf)
		if err != nil {
			return err
		}
		buf = b
		switch {
		case h>>4 != want:
			return fmt.Errorf("%w: packet type %d, want %d", ErrMQTTPacket, h>>4, want)
		case want == mqttConnAck && (len(b) != 2 || b[1] != 0): // §3.2.2.3
			return fmt.Errorf("%w: CONNACK %x", ErrMQTTRefused, b)
		case want == mqttSubAck && (len(b) != 3 || b[2] > 2): // §3.9.3: 0x80 is failure
			return fmt.Errorf("%w: SUBACK %x for %s", ErrMQTTRefused, b, filter)
		}
	}
	return nil
}

func appendMQTTHeader(b []byte, first byte, n int) []byte {
	b = append(b, first)
	for { // remaining length, §2.2.3: 7 bits a byte, high bit for more
		if n < 0x80 {
			return append(b, byte(n))
		}
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
}

func appendMQTTString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// readMQTTPacket reads one MQTT control packet into buf, grown as needed
// up to maxCounterPacket, and returns its first byte and body (valid until
// the next call with the same buf).
func readMQTTPacket(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, buf, err
	}
	// Remaining length, §2.2.3: at most four bytes.
	n := 0
	for i := 0; ; i++ {
		if i == 4 {
			return 0, buf, fmt.Errorf("%w: remaining length over four bytes", ErrMQTTPacket)
		}
		b, err := r.ReadByte()
		if err != nil {
			return 0, buf, noEOF(err)
		}
		n |= int(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			break
		}
	}
	if n > maxCounterPacket {
		return 0, buf, fmt.Errorf("%w: %d-byte packet", ErrMQTTPacket, n)
	}
	if cap(buf) < n {
		buf = make([]byte, n, max(n, 2*cap(buf)))
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, buf, noEOF(err)
	}
	return h, buf, nil
}

// noEOF reports a connection closed inside a packet as such.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// publishPayload returns the payload of a PUBLISH body, §3.3: topic name
// (2-byte length + bytes), a packet identifier when QoS > 0, payload.
func publishPayload(flags byte, body []byte) ([]byte, error) {
	qos := flags >> 1 & 3
	if qos == 3 { // §3.3.1.2
		return nil, fmt.Errorf("%w: PUBLISH with QoS 3", ErrMQTTPacket)
	}
	if len(body) < 2 {
		return nil, fmt.Errorf("%w: PUBLISH without topic", ErrMQTTPacket)
	}
	off := 2 + int(binary.BigEndian.Uint16(body))
	if qos > 0 {
		off += 2
	}
	if off > len(body) {
		return nil, fmt.Errorf("%w: PUBLISH topic beyond its body", ErrMQTTPacket)
	}
	return body[off:], nil
}

// readLoop counts PUBLISH packets until the connection closes or breaks.
func (c *counter) readLoop(r *bufio.Reader) {
	var buf []byte
	for {
		h, b, err := readMQTTPacket(r, buf)
		buf = b
		if err == nil {
			err = c.count(h, b)
		}
		if err != nil {
			if !c.closing.Load() {
				c.failed.Store(&err)
			}
			return
		}
	}
}

// count takes one packet from the broker.
func (c *counter) count(h byte, body []byte) error {
	switch h >> 4 {
	case mqttPublish:
		p, err := publishPayload(h&0x0f, body)
		if err != nil {
			return err
		}
		if h>>1&3 != 0 {
			return fmt.Errorf("%w: QoS %d PUBLISH on a QoS 0 subscription", ErrMQTTPacket, h>>1&3)
		}
		if c.stamped && len(p) >= 8 {
			sent := int64(binary.BigEndian.Uint64(p))
			c.latency.Record(time.Duration(time.Now().UnixNano() - sent))
		}
		c.n.Add(1)
	default:
		return fmt.Errorf("%w: unexpected packet type %d", ErrMQTTPacket, h>>4)
	}
	return nil
}

// err reports why the counter stopped counting before it was closed.
func (c *counter) err() error {
	if p := c.failed.Load(); p != nil {
		return fmt.Errorf("%w: subscriber: %w", ErrBench, *p)
	}
	return nil
}

// settle waits until want messages arrived, or none arrived for quiet.
func (c *counter) settle(ctx context.Context, want uint64, quiet time.Duration) uint64 {
	t := time.NewTicker(quiet / 5)
	defer t.Stop()
	last, since := c.n.Load(), time.Now()
	for {
		n := c.n.Load()
		if n >= want || ctx.Err() != nil || c.failed.Load() != nil {
			return n
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return n
		}
		<-t.C
	}
}

// close disconnects (DISCONNECT, §3.14) and waits for the read loops.
func (c *counter) close() {
	c.once.Do(func() {
		c.closing.Store(true)
		for _, conn := range c.conns {
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Write([]byte{0xe0, 0})
			conn.Close()
		}
		c.wg.Wait()
	})
}

// benchClients connects n MQTT-SN clients, each on its own socket, in
// parallel batches.
func benchClients(ctx context.Context, gateway, prefix string, n int, opts client.Options) ([]*client.Client, error) {
	gw, err := net.ResolveUDPAddr("udp", gateway)
	if err != nil {
		return nil, fmt.Errorf("%w: gateway address: %w", ErrBench, err)
	}
	clients := make([]*client.Client, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // connects in flight
	for i := range n {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: gw.IP})
		if err != nil {
			closeClients(clients)
			return nil, fmt.Errorf("%w: socket %d: %w", ErrBench, i, err)
		}
		o := opts
		o.ClientID = fmt.Sprintf("%s%d", prefix, i)
		o.MaxPacketSize = 2048
		c, err := client.Dial(conn, gw, o)
		if err != nil {
			conn.Close()
			closeClients(clients)
			return nil, err
		}
		clients[i] = c
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.Connect(ctx); err != nil {
				errs <- fmt.Errorf("%w: connect %s: %w", ErrBench, o.ClientID, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeClients(clients)
		return nil, err
	}
	return clients, nil
}

func closeClients(cs []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.State() == client.StateActive {
				disconnect(c)
			}
			c.Close()
		}()
	}
	wg.Wait()
}

// IngestOptions configure BenchIngest.
type IngestOptions struct {
	Clients   int           // publishing clients (default 1000)
	StartRate int           // first offered rate, msg/s (default 10,000)
	MaxRate   int           // last rate tried (default 1,000,000)
	Factor    float64       // rate multiplier between steps (default 1.5)
	Step      time.Duration // length of each step (default 2 s)
}

// IngestStep is one offered rate.
type IngestStep struct {
	Offered   int     `json:"offered_per_s"`
	Achieved  float64 `json:"achieved_per_s"` // what the generator managed to send
	Sent      uint64  `json:"sent"`
	Delivered uint64  `json:"delivered"`
}

// Lossless reports whether every message sent arrived.
func (s IngestStep) Lossless() bool { return s.Delivered >= s.Sent }

// IngestResult is the outcome of BenchIngest.
type IngestResult struct {
	Clients     int          `json:"clients"`
	Steps       []IngestStep `json:"steps"`
	MaxLossless float64      `json:"max_lossless_per_s"` // highest achieved rate without loss
}

// BenchIngest has Clients publish QoS 0 on registered topics at stepped-up
// rates while an MQTT subscriber counts, until a step loses messages or the
// generator cannot reach the offered rate.
func BenchIngest(ctx context.Context, t BenchTarget, o IngestOptions) (*IngestResult, error) {
	o.Clients = orDefault(o.Clients, 1000)
	o.StartRate = orDefault(o.StartRate, 10000)
	o.MaxRate = orDefault(o.MaxRate, 1000000)
	if o.Factor <= 1 {
		o.Factor = 1.5
	}
	if o.Step <= 0 {
		o.Step = 2 * time.Second
	}
	cnt, err := newCounter(ctx, t.Broker, "bench/ingest/#", counterConns, false)
	if err != nil {
		return nil, err
	}
	defer cnt.close()
	clients, err := benchClients(ctx, t.Gateway, "ingest-", o.Clients, client.Options{KeepAlive: 5 * time.Minute, CleanSession: true})
	if err != nil {
		return nil, err
	}
	defer closeClients(clients)
	topics := make([]client.Topic, len(clients))
	for i, c := range clients {
		name := "bench/ingest/" + strconv.Itoa(i)
		id, err := c.Register(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%w: register %s: %w", ErrBench, name, err)
		}
		topics[i] = client.Topic{Kind: mqttsn.TopicNormal, ID: id}
	}
	r := &IngestResult{Clients: o.Clients}
	payload := []byte("21.5")
	for rate := float64(o.StartRate); rate <= float64(o.MaxRate) && ctx.Err() == nil; rate *= o.Factor {
		before := cnt.n.Load()
		sent, elapsed := pace(ctx, int(rate), o.Step, clients, func(i int, c *client.Client) error {
			return c.Publish(ctx, client.Message{Topic: topics[i], Payload: payload, QoS: mqttsn.QoS0})
		})
		got := cnt.settle(ctx, before+sent, time.Second) - before
		if err := cnt.err(); err != nil {
			return nil, err
		}
		st := IngestStep{Offered: int(rate), Achieved: float64(sent) / elapsed.Seconds(), Sent: sent, Delivered: got}
		r.Steps = append(r.Steps, st)
		if !st.Lossless() {
			break
		}
		r.MaxLossless = max(r.MaxLossless, st.Achieved)
		if st.Achieved < 0.9*rate {
			break // the generator is the limit now
		}
	}
	return r, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// pace sends at rate msg/s for d, round robin over clients, from one
// worker per two hundred and fifty clients (at least two). It returns
// what was sent and how long it took.
func pace(ctx context.Context, rate int, d time.Duration, clients []*client.Client, send func(int, *client.Client) error) (uint64, time.Duration) {
	workers := max(2, min(8, len(clients)/250))
	workers = min(workers, len(clients))
	var sent atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			share := float64(rate) / float64(workers)
			var n uint64
			next := w
			for {
				el := time.Since(start)
				if el >= d || ctx.Err() != nil {
					break
				}
				due := uint64(el.Seconds() * share)
				if n >= due {
					time.Sleep(200 * time.Microsecond) // ahead of schedule
					continue
				}
				for ; n < due; n++ {
					if send(next, clients[next]) == nil {
						sent.Add(1)
					}
					next += workers
					if next >= len(clients) {
						next = w
					}
				}
			}
		}()
	}
	wg.Wait()
	return sent.Load(), time.Since(start)
}

// QoSOptions configure BenchQoS.
type QoSOptions struct {
	Clients  int           // concurrent clients, one message in flight each (default 100)
	QoS      mqttsn.QoS    // 1 or 2
	Duration time.Duration // default 5 s
}

// QoSResult is the outcome of BenchQoS.
type QoSResult struct {
	QoS      mqttsn.QoS `json:"qos"`
	Clients  int        `json:"clients"`
	Messages uint64     `json:"messages"`
	Errors   uint64     `json:"errors"`
	Rate     float64    `json:"per_s"`
	Latency  Latency    `json:"latency"` // PUBLISH to PUBACK or PUBCOMP
}

// BenchQoS has Clients publish as fast as their acknowledgements allow.
func BenchQoS(ctx context.Context, t BenchTarget, o QoSOptions) (*QoSResult, error) {
	o.Clients = orDefault(o.Clients, 100)
	if o.QoS != mqttsn.QoS1 && o.QoS != mqttsn.QoS2 {
		return nil, fmt.Errorf("%w: QoS %d is not 1 or 2", ErrBench, o.QoS)
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	clients, err := benchClients(ctx, t.Gateway, fmt.Sprintf("qos%d-", o.QoS), o.Clients, client.Options{KeepAlive: 5 * time.Minute, CleanSession: true})
	if err != nil {
		return nil, err
	}
	defer closeClients(clients)
	r := &QoSResult{QoS: o.QoS, Clients: o.Clients}
	var h Histogram
	var msgs, errs atomic.Uint64
	rctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clients {
		topic := client.TopicName(fmt.Sprintf("bench/qos/%d", i))
		if _, err := c.Register(ctx, topic.Name); err != nil {
			return nil, fmt.Errorf("%w: register: %w", ErrBench, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil {
				t0 := time.Now()
				err := c.Publish(rctx, client.Message{Topic: topic, Payload: []byte("x"), QoS: o.QoS})
				switch {
				case err == nil:
					h.Record(time.Since(t0))
					msgs.Add(1)
				case rctx.Err() == nil:
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	r.Messages, r.Errors = msgs.Load(), errs.Load()
	r.Rate = float64(r.Messages) / el.Seconds()
	r.Latency = h.Summary()
	return r, nil
}

// swarm plays many MQTT-SN clients without a goroutine or socket each:
// they sit behind one socket as the nodes of a forwarder (MQTT-SN 1.2
// §5.5), named prefix0, prefix1, …, and one read loop hands what the
// gateway sends them to handle.
type swarm struct {
	conns  []*net.UDPConn // node i uses conns[i%len(conns)]
	gw     *net.UDPAddr
	prefix string
	handle func(node int, p mqttsn.Packet)
	wg     sync.WaitGroup
	mu     sync.Mutex // serialises writes and their buffers
	buf    []byte
	ebuf   []byte
}

// nodesPerSocket keeps a burst of answers to one socket within what a
// default-sized receive buffer holds.
const nodesPerSocket = 128

func newSwarm(gateway, prefix string, nodes int, handle func(int, mqttsn.Packet)) (*swarm, error) {
	gw, err := net.ResolveUDPAddr("udp", gateway)
	if err != nil {
		return nil, fmt.Errorf("%w: gateway address: %w", ErrBench, err)
	}
	s := &swarm{gw: gw, prefix: prefix, handle: handle}
	for range min(max(1, nodes/nodesPerSocket), 256) {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: gw.IP})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%w: %w", ErrBench, err)
		}
		_ = conn.SetReadBuffer(8 << 20)
		s.conns = append(s.conns, conn)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.readLoop(conn)
		}()
	}
	return s, nil
}

func (s *swarm) node(i int) []byte { return []byte(s.prefix + strconv.Itoa(i)) }

func (s *swarm) send(i int, p mqttsn.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.buf, err = mqttsn.Append(s.buf[:0], p); err != nil {
		return err
	}
	e := mqttsn.Encapsulated{NodeID: s.node(i), Message: s.buf}
	if s.ebuf, err = e.AppendTo(s.ebuf[:0]); err != nil {
		return err
	}
	_, err = s.conns[i%len(s.conns)].WriteToUDP(s.ebuf, s.gw)
	return err
}

func (s *swarm) readLoop(conn *net.UDPConn) {
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		p, err := mqttsn.Parse(buf[:n])
		if err != nil {
			continue
		}
		e, ok := p.(*mqttsn.Encapsulated)
		if !ok || !strings.HasPrefix(string(e.NodeID), s.prefix) {
			continue
		}
		i, err := strconv.Atoi(string(e.NodeID[len(s.prefix):]))
		if err != nil {
			continue
		}
		inner, err := mqttsn.Parse(e.Message)
		if err != nil {
			continue
		}
		s.handle(i, inner)
	}
}

func (s *swarm) close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// StormResult is the outcome of BenchConnectStorm.
type StormResult struct {
	Sent     int           `json:"sent"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
	Elapsed  time.Duration `json:"elapsed_ns"` // first CONNECT to last CONNACK
	Rate     float64       `json:"connacks_per_s"`
}

// BenchConnectStorm sends n CONNECTs back to back and counts the CONNACKs
// that arrive within timeout.
func BenchConnectStorm(ctx context.Context, t BenchTarget, n int, timeout time.Duration) (*StormResult, error) {
	n = orDefault(n, 10000)
	var accepted, rejected atomic.Int64
	var last atomic.Int64
	seen := make([]atomic.Bool, n)
	done := make(chan struct{})
	var once sync.Once
	s, err := newSwarm(t.Gateway, fmt.Sprintf("storm%d-", time.Now().UnixNano()%1e6), n, func(i int, p mqttsn.Packet) {
		ack, ok := p.(*mqttsn.ConnAck)
		if !ok || i < 0 || i >= n || seen[i].Swap(true) {
			return
		}
		if ack.ReturnCode == mqttsn.Accepted {
			accepted.Add(1)
		} else {
			rejected.Add(1)
		}
		last.Store(time.Now().UnixNano())
		if accepted.Load()+rejected.Load() == int64(n) {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	start := time.Now()
	for i := range n {
		if err := s.send(i, &mqttsn.Connect{ClientID: string(s.node(i)), Duration: 300, CleanSession: true}); err != nil {
			return nil, fmt.Errorf("%w: send CONNECT: %w", ErrBench, err)
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
	r := &StormResult{Sent: n, Accepted: int(accepted.Load()), Rejected: int(rejected.Load())}
	if l := last.Load(); l > 0 {
		r.Elapsed = time.Unix(0, l).Sub(start)
		r.Rate = float64(r.Accepted+r.Rejected) / r.Elapsed.Seconds()
	}
	for i := range n {
		if seen[i].Load() {
			_ = s.send(i, &mqttsn.Disconnect{})
		}
	}
	return r, nil
}

// IdleResult is the outcome of BenchIdle.
type IdleResult struct {
	Clients        int     `json:"clients"`
	Connected      int     `json:"connected"`
	RSSBefore      uint64  `json:"rss_before_bytes"`
	RSSAfter       uint64  `json:"rss_after_bytes"`
	BytesPerClient float64 `json:"bytes_per_client"`
	CPUPercent     float64 `json:"cpu_percent"` // of one core, while idle with keep-alive pings
	InProcess      bool    `json:"in_process"`  // RSS includes the generator
}

// BenchIdle connects n clients, a window of them at a time, keeps them
// alive with PINGREQs for measure, and reads the gateway's resident memory
// and CPU time.
func BenchIdle(ctx context.Context, t BenchTarget, n int, keepAlive, measure time.Duration) (*IdleResult, error) {
	n = orDefault(n, 100000)
	if keepAlive <= 0 {
		keepAlive = time.Minute
	}
	if measure <= 0 {
		measure = 10 * time.Second
	}
	pid := t.GatewayPID
	if pid == 0 {
		pid = os.Getpid()
	}
	r := &IdleResult{Clients: n, InProcess: t.GatewayPID == 0}
	before, err := readRSS(pid)
	if err != nil {
		return nil, err
	}
	r.RSSBefore = before
	const window = 2000
	sem := make(chan struct{}, window)
	var connected atomic.Int64
	seen := make([]atomic.Bool, n)
	s, err := newSwarm(t.Gateway, fmt.Sprintf("idle%d-", time.Now().UnixNano()%1e6), min(n, 32*nodesPerSocket), func(i int, p mqttsn.Packet) {
		if _, ok := p.(*mqttsn.ConnAck); ok && i >= 0 && i < n && !seen[i].Swap(true) {
			connected.Add(1)
			<-sem
		}
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	ka := uint16(keepAlive / time.Second)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-time.After(5 * time.Second): // CONNACKs lost: go on without them
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := s.send(i, &mqttsn.Connect{ClientID: string(s.node(i)), Duration: ka, CleanSession: true}); err != nil {
			return nil, fmt.Errorf("%w: send CONNECT: %w", ErrBench, err)
		}
	}
	// Keep-alive: every client pings once per half keep-alive, spread.
	cpu0, err := readCPU(pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	perTick := max(1, int(float64(n)*float64(10*time.Millisecond)/float64(keepAlive/2)))
	tick := time.NewTicker(10 * time.Millisecond)
	next := 0
	for time.Since(start) < measure && ctx.Err() == nil {
		<-tick.C
		for range perTick {
			_ = s.send(next, &mqttsn.PingReq{})
			next = (next + 1) % n
		}
	}
	tick.Stop()
	el := time.Since(start)
	cpu1, err := readCPU(pid)
	if err != nil {
		return nil, err
	}
	r.CPUPercent = 100 * (cpu1 - cpu0).Seconds() / el.Seconds()
	if r.RSSAfter, err = readRSS(pid); err != nil {
		return nil, err
	}
	r.Connected = int(connected.Load())
	if r.Connected > 0 && r.RSSAfter > r.RSSBefore {
		r.BytesPerClient = float64(r.RSSAfter-r.RSSBefore) / float64(r.Connected)
	}
	for i := range n {
		_ = s.send(i, &mqttsn.Disconnect{})
	}
	return r, nil
}

// readRSS returns a process's resident memory from /proc.
func readRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: memory of process %d: %w", ErrBench, pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: VmRSS %q: %w", ErrBench, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%w: no VmRSS for process %d", ErrBench, pid)
}

// readCPU returns a process's user and system time from /proc, in the
// kernel's 100 Hz ticks.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: CPU of process %d: %w", ErrBench, pid, err)
	}
	// The command name may hold spaces; fields are counted after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: short /proc/%d/stat", ErrBench, pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: /proc/%d/stat fields", ErrBench, pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// WakeResult is the outcome of BenchWakeStorm.
type WakeResult struct {
	Clients   int           `json:"clients"`
	Buffered  int           `json:"buffered"`  // messages published while they slept
	Delivered int           `json:"delivered"` // messages received on waking
	Woken     int           `json:"woken"`     // clients whose PINGRESP arrived
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// BenchWakeStorm puts n clients to sleep, each subscribed to its own topic,
// publishes one QoS 1 message to every topic, then wakes them all at once
// and times until every PINGRESP arrived.
func BenchWakeStorm(ctx context.Context, t BenchTarget, n int, timeout time.Duration) (*WakeResult, error) {
	n = orDefault(n, 10000)
	prefix := fmt.Sprintf("wake%d-", time.Now().UnixNano()%1e6)
	type nodeState struct{ connack, suback, slept, woke, got atomic.Bool }
	st := make([]nodeState, n)
	var phase atomic.Int64
	var count atomic.Int64
	progress := make(chan struct{}, 1)
	signal := func() {
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	var s *swarm
	s, err := newSwarm(t.Gateway, prefix, n, func(i int, p mqttsn.Packet) {
		if i < 0 || i >= n {
			return
		}
		var first bool
		switch p := p.(type) {
		case *mqttsn.ConnAck:
			first = !st[i].connack.Swap(true)
		case *mqttsn.SubAck:
			first = !st[i].suback.Swap(true)
		case *mqttsn.Disconnect:
			first = phase.Load() == 2 && !st[i].slept.Swap(true)
		case *mqttsn.Publish:
			if p.QoS == mqttsn.QoS1 {
				_ = s.send(i, &mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
			}
			st[i].got.Store(true)
			return
		case *mqttsn.PingResp:
			first = phase.Load() == 3 && !st[i].woke.Swap(true)
		}
		if first && count.Add(1) == int64(n) {
			signal()
		}
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	// each phase: send to every node not yet answered, until all answered
	step := func(ph int64, send func(i int) error, answered func(i int) bool) error {
		phase.Store(ph)
		count.Store(0)
		for i := range n {
			if answered(i) {
				count.Add(1)
			}
		}
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			for i := range n {
				if !answered(i) {
					if err := send(i); err != nil {
						return err
					}
				}
				if i%500 == 499 {
					time.Sleep(time.Millisecond) // a window, so the gateway's queue keeps up
				}
			}
			t := time.NewTimer(time.Second)
			select {
			case <-progress:
			case <-t.C:
			}
			t.Stop()
			if count.Load() >= int64(n) {
				return nil
			}
		}
		return fmt.Errorf("%w: phase %d: %d of %d clients answered", ErrBench, ph, count.Load(), n)
	}
	topic := func(i int) string { return "bench/wake/" + prefix + strconv.Itoa(i) }
	if err := step(0, func(i int) error {
		return s.send(i, &mqttsn.Connect{ClientID: prefix + strconv.Itoa(i), Duration: 600, CleanSession: true})
	}, func(i int) bool { return st[i].connack.Load() }); err != nil {
		return nil, err
	}
	if err := step(1, func(i int) error {
		return s.send(i, &mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: topic(i)})
	}, func(i int) bool { return st[i].suback.Load() }); err != nil {
		return nil, err
	}
	if err := step(2, func(i int) error { return s.send(i, &mqttsn.Disconnect{HasDuration: true, Duration: 3600}) },
		func(i int) bool { return st[i].slept.Load() }); err != nil {
		return nil, err
	}
	// Publish one message for each sleeper through an MQTT-SN client.
	pubs, err := benchClients(ctx, t.Gateway, prefix+"pub-", 1, client.Options{KeepAlive: 5 * time.Minute, CleanSession: true, MaxTopics: n + 16})
	if err != nil {
		return nil, err
	}
	defer closeClients(pubs)
	for i := range n {
		if err := pubs[0].Publish(ctx, client.Message{Topic: client.TopicName(topic(i)), Payload: []byte("cmd"), QoS: mqttsn.QoS1}); err != nil {
			return nil, fmt.Errorf("%w: publish for sleeper %d: %w", ErrBench, i, err)
		}
	}
	r := &WakeResult{Clients: n, Buffered: n}
	start := time.Now()
	err = step(3, func(i int) error { return s.send(i, &mqttsn.PingReq{ClientID: prefix + strconv.Itoa(i)}) },
		func(i int) bool { return st[i].woke.Load() })
	r.Elapsed = time.Since(start)
	for i := range n {
		if st[i].got.Load() {
			r.Delivered++
		}
		if st[i].woke.Load() {
			r.Woken++
		}
		_ = s.send(i, &mqttsn.Disconnect{})
	}
	if err != nil {
		return r, err
	}
	return r, nil
}

// LatencyResult is the outcome of BenchLatency.
type LatencyResult struct {
	Rate      int     `json:"rate_per_s"`
	Sent      uint64  `json:"sent"`
	Delivered uint64  `json:"delivered"`
	Latency   Latency `json:"latency"` // MQTT-SN PUBLISH sent to MQTT PUBLISH received
}

// BenchLatency publishes QoS 0 at a fixed rate from clients and measures
// end-to-end latency at an MQTT subscriber.
func BenchLatency(ctx context.Context, t BenchTarget, rate, clients int, d time.Duration) (*LatencyResult, error) {
	rate = orDefault(rate, 10000)
	clients = orDefault(clients, 100)
	if d <= 0 {
		d = 5 * time.Second
	}
	cnt, err := newCounter(ctx, t.Broker, "bench/latency/#", counterConns, true)
	if err != nil {
		return nil, err
	}
	defer cnt.close()
	cs, err := benchClients(ctx, t.Gateway, "latency-", clients, client.Options{KeepAlive: 5 * time.Minute, CleanSession: true})
	if err != nil {
		return nil, err
	}
	defer closeClients(cs)
	topics := make([]client.Topic, len(cs))
	for i, c := range cs {
		id, err := c.Register(ctx, "bench/latency/"+strconv.Itoa(i))
		if err != nil {
			return nil, fmt.Errorf("%w: register: %w", ErrBench, err)
		}
		topics[i] = client.Topic{Kind: mqttsn.TopicNormal, ID: id}
	}
	sent, _ := pace(ctx, rate, d, cs, func(i int, c *client.Client) error {
		payload := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(time.Now().UnixNano()))
		return c.Publish(ctx, client.Message{Topic: topics[i], Payload: payload, QoS: mqttsn.QoS0})
	})
	got := cnt.settle(ctx, sent, time.Second)
	if err := cnt.err(); err != nil {
		return nil, err
	}
	return &LatencyResult{Rate: rate, Sent: sent, Delivered: got, Latency: cnt.latency.Summary()}, nil
}
