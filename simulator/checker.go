package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/bits"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// MaxTrackedSeq bounds the sequence numbers tracked per device (a bit each,
// so at most 512 KiB per device); later messages are not checked.
const MaxTrackedSeq = 1 << 22

// seqSet is a set of sequence numbers from 1, one bit each.
type seqSet struct{ words []uint64 }

// add adds seq and reports whether it was new. Numbers beyond MaxTrackedSeq
// are never recorded.
func (s *seqSet) add(seq uint64) bool {
	if seq == 0 || seq > MaxTrackedSeq {
		return false
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	if int(w) >= len(s.words) {
		s.words = append(s.words, make([]uint64, int(w)+1-len(s.words))...)
	}
	if s.words[w]&bit != 0 {
		return false
	}
	s.words[w] |= bit
	return true
}

func (s *seqSet) has(seq uint64) bool {
	w := seq / 64
	return int(w) < len(s.words) && s.words[w]&(1<<(seq%64)) != 0
}

// missing counts the members of s not in o.
func (s *seqSet) missing(o *seqSet) uint64 {
	var n int
	for i, w := range s.words {
		if i < len(o.words) {
			w &^= o.words[i]
		}
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// tracked is what the checker saw of one device's topic.
type tracked struct {
	d      *device
	seen   seqSet
	dups   uint64
	expect *seqSet // the device's sentOK, once it has finished
}

// checker subscribes on the far side and matches what arrives against what
// the devices sent, by topic and "seq".
type checker struct {
	start int64 // messages stamped earlier belong to an earlier run

	mu       sync.Mutex
	topics   map[string]*tracked // only with mu
	missing  uint64              // expected messages not yet seen, once settling
	settling bool
	update   chan struct{} // signalled (without blocking) when missing drops

	sn       *client.Client
	cm       *autopaho.ConnectionManager
	cmCancel context.CancelFunc
}

func newChecker(start time.Time) *checker {
	return &checker{start: start.UnixNano(), topics: make(map[string]*tracked), update: make(chan struct{}, 1)}
}

// watch registers a device's data topic; before the devices start.
func (c *checker) watch(d *device) {
	c.mu.Lock()
	c.topics[d.topic] = &tracked{d: d}
	c.mu.Unlock()
}

// stamp is the part of a payload the checker reads.
type stamp struct {
	Seq uint64 `json:"seq"`
	TS  int64  `json:"ts"`
}

// observe records a message that arrived at now.
func (c *checker) observe(topic string, payload []byte, now time.Time) {
	c.mu.Lock()
	t := c.topics[topic]
	c.mu.Unlock()
	if t == nil {
		return // commands, or messages of other publishers
	}
	var st stamp
	if json.Unmarshal(payload, &st) != nil || st.Seq == 0 || st.TS < c.start {
		return // not a message of this run, such as an older retained state
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.seen.add(st.Seq) {
		if t.seen.has(st.Seq) {
			t.dups++
		}
		return
	}
	t.d.st.deliveryLatency.Record(now.Sub(time.Unix(0, st.TS)))
	if c.settling && t.expect != nil && t.expect.has(st.Seq) {
		c.missing--
		if c.missing == 0 {
			select {
			case c.update <- struct{}{}:
			default:
			}
		}
	}
}

// settle waits until every message the devices sent successfully has been
// seen, or grace has passed, or ctx ends.
func (c *checker) settle(ctx context.Context, devices []*device, grace time.Duration) {
	c.mu.Lock()
	for _, d := range devices {
		t := c.topics[d.topic]
		if t == nil {
			continue
		}
		t.expect = &d.sentOK
		c.missing += d.sentOK.missing(&t.seen)
	}
	c.settling = true
	done := c.missing == 0
	c.mu.Unlock()
	if done {
		return
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.update:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// account writes delivered, lost and duplicated counts into the profiles.
func (c *checker) account(devices []*device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range devices {
		t := c.topics[d.topic]
		if t == nil {
			continue
		}
		lost := d.sentOK.missing(&t.seen)
		d.st.delivered.Add(uint64(popcount(&t.seen)))
		d.st.lost.Add(lost)
		d.st.duplicated.Add(t.dups)
		switch d.g.QoS {
		case mqttsn.QoS1:
			d.st.lostQoS1.Add(lost)
		case mqttsn.QoS2:
			d.st.lostQoS2.Add(lost)
			d.st.dupQoS2.Add(t.dups)
		}
	}
}

func popcount(s *seqSet) int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// subscribeMQTT subscribes to filters at QoS 2 on an MQTT broker with
// MQTT 5, and returns once the subscription is acknowledged.
func (c *checker) subscribeMQTT(ctx context.Context, broker string, filters []string, log *slog.Logger) error {
	if !strings.Contains(broker, "://") {
		broker = "mqtt://" + broker
	}
	u, err := url.Parse(broker)
	if err != nil {
		return fmt.Errorf("simulator: checker broker address: %w", err)
	}
	subs := make([]paho.SubscribeOptions, len(filters))
	for i, f := range filters {
		subs[i] = paho.SubscribeOptions{Topic: f, QoS: 2}
	}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         60, // a reconnect resumes without loss
		ConnectTimeout:                10 * time.Second,
		OnConnectError:                func(err error) { log.Warn("checker connect", "broker", broker, "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID: fmt.Sprintf("snwgw-sim-checker-%d", c.start),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					c.observe(pr.Packet.Topic, pr.Packet.Payload, time.Now())
					return true, nil
				},
			},
		},
	}
	cmCtx, cmCancel := context.WithCancel(context.WithoutCancel(ctx))
	cm, err := autopaho.NewConnection(cmCtx, cfg)
	if err != nil {
		cmCancel()
		return fmt.Errorf("simulator: checker: %w", err)
	}
	c.cm, c.cmCancel = cm, cmCancel
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cm.AwaitConnection(wctx); err != nil {
		c.close()
		return fmt.Errorf("simulator: checker: no connection to %s: %w", broker, err)
	}
	if _, err := cm.Subscribe(wctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		c.close()
		return fmt.Errorf("simulator: checker subscribe: %w", err)
	}
	return nil
}

// close ends the checker's session.
func (c *checker) close() {
	if c.sn != nil {
		disconnect(c.sn)
		c.sn.Close()
	}
	if c.cm != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.cm.Disconnect(ctx)
		c.cmCancel() // ends the connection manager even if it never connected
		<-c.cm.Done()
	}
}
