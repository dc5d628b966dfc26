package bridge

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The outage tests stream QoS 1 messages from MQTT-SN clients through the
// gateway, the broker and the bridge into a real mosquitto, stop mosquitto
// mid-stream, start it again and check that every message arrived, in order
// per publisher. mosquitto keeps the observer's persistent session across
// its restart (persistence on, stopped with SIGTERM), so what the observer
// sees is exactly what the bridge delivered.

const (
	publishers = 3
	// Between two messages of one publisher: a steady stream that lasts
	// long enough to be cut in the middle.
	publishPace = 3 * time.Millisecond
)

// upstreamWatch collects what persistent observers receive across restarts
// of mosquitto.
type upstreamWatch struct {
	t   *testing.T
	all []received
	ob  *observer
}

func (w *upstreamWatch) connect(addr string) {
	w.t.Helper()
	if old := w.ob; old != nil {
		// The previous connection is over once its client has shut down;
		// only then is everything it received in its channel.
		select {
		case <-old.cli.Done():
		case <-time.After(waitTime):
			w.t.Fatal("the previous observer connection never ended")
		}
	}
	ob := connectObserver(w.t, addr, observerOptions{clientID: "watcher", expiry: 3600, subscription: subs("site-a/#")})
	watchMu.Lock()
	defer watchMu.Unlock()
	if w.ob != nil {
		w.drain()
	}
	w.ob = ob
}

// drain moves what the current observer has received into all.
func (w *upstreamWatch) drain() {
	for {
		select {
		case r := <-w.ob.msgs:
			w.all = append(w.all, r)
		default:
			return
		}
	}
}

// waitCount waits until at least n distinct messages arrived (delivery is
// at least once: some may come twice).
func (w *upstreamWatch) waitCount(n int) {
	w.t.Helper()
	distinct := func() int {
		seen := map[string]bool{}
		for _, r := range w.snapshot() {
			seen[r.Payload] = true
		}
		return len(seen)
	}
	if !assert.Eventually(w.t, func() bool { return distinct() >= n }, 2*waitTime, 5*time.Millisecond) {
		w.t.Fatalf("upstream received %d distinct messages, want %d", distinct(), n)
	}
}

var watchMu sync.Mutex

func (w *upstreamWatch) snapshot() []received {
	watchMu.Lock()
	defer watchMu.Unlock()
	w.drain()
	return w.all
}

// checkStreams asserts that every publisher's messages 0..perPublisher-1
// arrived, in order: duplicates (at least once delivery) are allowed only
// as repeats of messages already seen.
func checkStreams(t *testing.T, got []received, perPublisher int) {
	t.Helper()
	next := make([]int, publishers)
	for _, r := range got {
		pub, seq, err := parseSeq(r.Payload)
		require.NoError(t, err)
		require.Less(t, pub, publishers)
		assert.Equal(t, fmt.Sprintf("site-a/sensors/p%d", pub), r.Topic)
		switch {
		case seq == next[pub]:
			next[pub]++
		case seq > next[pub]:
			t.Fatalf("publisher %d: message %d arrived before %d", pub, seq, next[pub])
		}
	}
	for pub, n := range next {
		assert.Equal(t, perPublisher, n, "publisher %d", pub)
	}
}

// stream publishes messages from..to-1 of every publisher through the
// MQTT-SN gateway at gw, paced, and reports the first error.
func stream(gw net.Addr, from, to int) <-chan error {
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for pub := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialSN(gw, fmt.Sprintf("sensor-%d", pub))
			if err != nil {
				errs <- err
				return
			}
			defer c.close()
			id, err := c.register(fmt.Sprintf("sensors/p%d", pub))
			if err != nil {
				errs <- err
				return
			}
			tick := time.NewTicker(publishPace)
			defer tick.Stop()
			for seq := from; seq < to; seq++ {
				if err := c.publishQoS1(id, []byte(seqPayload(pub, seq))); err != nil {
					errs <- fmt.Errorf("publisher %d message %d: %w", pub, seq, err)
					return
				}
				<-tick.C
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		wg.Wait()
		close(errs)
		done <- <-errs // nil when none
	}()
	return done
}

func waitStream(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * waitTime):
		t.Fatal("publishers did not finish")
	}
}

func outageMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	return startMosquitto(t, "persistence true", "persistence_location "+t.TempDir()+"/", "max_queued_messages 100000")
}

var outageRules = []Rule{{LocalFilter: "sensors/#", Direction: DirectionOut, QoS: 1, RemotePrefix: "site-a/"}}

// TestOutage stops mosquitto in the middle of the stream; the memory queue
// holds what arrives meanwhile.
func TestOutage(t *testing.T) {
	const perPublisher = 300
	m := outageMosquitto(t)
	w := &upstreamWatch{t: t}
	w.connect(m.addr())
	b := newBroker(t)
	br := startBridge(t, b, Options{Name: "site", URL: m.url(), Rules: outageRules})
	waitConnected(t, br)
	_, gw := newGateway(t, b)

	done := stream(gw, 0, perPublisher)
	w.waitCount(100)
	m.stop()
	// Messages keep coming while upstream is away: they wait in the queue.
	// The bridge learns of the loss when its connection fails, which on a
	// busy machine may be after 50 messages have queued up behind the
	// publish in flight; both must come, in either order.
	require.Eventually(t, func() bool {
		s := br.Stats()
		return s.Queued >= 50 && !s.Connected
	}, waitTime, time.Millisecond, "50 messages queued while the bridge knows upstream is away")
	m.start()
	w.connect(m.addr())
	waitStream(t, done)
	w.waitCount(publishers * perPublisher)
	checkStreams(t, w.snapshot(), perPublisher)

	s := br.Stats()
	assert.Zero(t, s.QueueDropped)
	assert.GreaterOrEqual(t, s.ForwardedOut, int64(publishers*perPublisher))
	assert.GreaterOrEqual(t, s.Connects, int64(2))
}

// TestOutageRestartDiskQueue also restarts the gateway (broker, gateway and
// bridge) while upstream is away: the disk queue carries what was waiting.
func TestOutageRestartDiskQueue(t *testing.T) {
	const perPublisher = 300
	const half = perPublisher / 2
	m := outageMosquitto(t)
	w := &upstreamWatch{t: t}
	w.connect(m.addr())
	dir := filepath.Join(t.TempDir(), "queue")
	opts := Options{Name: "site", URL: m.url(), ClientID: "gw-disk", Rules: outageRules, Queue: QueueOptions{Dir: dir}}

	b1 := newBroker(t)
	br1 := startBridge(t, b1, opts)
	waitConnected(t, br1)
	g1, gw1 := newGateway(t, b1)
	done := stream(gw1, 0, half)
	w.waitCount(60)
	m.stop()
	waitStream(t, done)
	// Everything the gateway acknowledged is in the bridge's hands.
	require.Eventually(t, func() bool {
		s := br1.Stats()
		return s.ForwardedOut+int64(s.Queued) == publishers*half
	}, waitTime, time.Millisecond)
	queued := br1.Stats().Queued
	require.Positive(t, queued)

	// The gateway restarts.
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	require.NoError(t, br1.Close(ctx))
	require.NoError(t, g1.Close(ctx))
	require.NoError(t, b1.Close(ctx))
	files, err := filepath.Glob(filepath.Join(dir, "*"+queueSuffix))
	require.NoError(t, err)
	assert.Len(t, files, queued, "one file per queued message")

	b2 := newBroker(t)
	br2, err := New(b2, opts)
	require.NoError(t, err)
	assert.Equal(t, queued, br2.Stats().Queued, "the queue is restored from disk")
	opts.ConnectRetryMin, opts.ConnectRetryMax = 20*time.Millisecond, 200*time.Millisecond
	br2 = startBridge(t, b2, opts)
	_, gw2 := newGateway(t, b2)
	done = stream(gw2, half, perPublisher)
	m.start()
	w.connect(m.addr())
	waitStream(t, done)
	w.waitCount(publishers * perPublisher)
	checkStreams(t, w.snapshot(), perPublisher)
	require.Eventually(t, func() bool { return br2.Stats().Queued == 0 }, waitTime, time.Millisecond)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left, "sent messages leave the disk")
}
