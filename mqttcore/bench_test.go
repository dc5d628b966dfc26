package mqttcore

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchTrie builds the subscriptions of a fleet: clients devices spread over
// 100 sites, each with 10 filters (exact, '+' and '#'), plus a few
// dashboards subscribed to wide wildcards.
func benchTrie(clients int) *trie {
	tr := new(trie)
	for c := range clients {
		s := &session{id: fmt.Sprint(c)}
		site := c % 100
		for _, f := range []string{
			"site/%d/dev/%d/cmd",
			"site/%d/dev/%d/cmd/+",
			"site/%d/dev/%d/config/#",
			"site/%d/dev/%d/ota",
			"site/%d/dev/%d/+/set",
			"site/%d/dev/%d/time",
			"site/%d/dev/%d/alarm/+/ack",
			"site/%d/dev/%d/led",
			"site/%d/dev/%d/relay/+",
			"site/%d/dev/%d/reboot",
		} {
			tr.subscribe("", fmt.Sprintf(f, site, c), subscriber{s: s, qos: 1})
		}
	}
	for d := range 10 {
		s := &session{id: fmt.Sprint("dash", d)}
		tr.subscribe("", "site/+/dev/+/status", subscriber{s: s})
		tr.subscribe("", fmt.Sprintf("site/%d/#", d), subscriber{s: s})
	}
	return tr
}

// BenchmarkMatch matches device topics against 100,000 filters of 10,000
// clients.
func BenchmarkMatch(b *testing.B) {
	tr := benchTrie(10000)
	topics := []string{
		"site/3/dev/1203/cmd",         // one exact subscriber, one dashboard
		"site/42/dev/4242/status",     // dashboards only
		"site/7/dev/7/config/net/dns", // '#'
		"site/99/dev/9999/relay/2",    // '+'
		"other/topic/nobody/wants",
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		m := tr.match(topics[i%len(topics)], nil)
		n += len(m.targets)
		m.release()
	}
	if n == 0 {
		b.Fatal("nothing matched")
	}
}

// BenchmarkFanout publishes through the in-process API to 100 subscribers,
// which pull and acknowledge every delivery.
func BenchmarkFanout(b *testing.B) {
	for qos := range byte(3) {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			br, err := New(&Options{SysInterval: -1})
			require.NoError(b, err)
			require.NoError(b, br.Start(b.Context()))
			defer br.Close(b.Context())
			subs := make([]*Session, 100)
			for i := range subs {
				subs[i], _, err = br.Connect(ConnectOptions{ClientID: fmt.Sprint("sub", i), Consumer: newConsumer()})
				require.NoError(b, err)
				_, err = subs[i].Subscribe(Subscription{Filter: "bench/+", QoS: qos})
				require.NoError(b, err)
			}
			pub, _, err := br.Connect(ConnectOptions{ClientID: "pub", Consumer: newConsumer()})
			require.NoError(b, err)
			msg := Message{Topic: "bench/x", Payload: make([]byte, 64), QoS: qos}
			b.ReportAllocs()
			b.ResetTimer()
			deliveries := 0
			for b.Loop() {
				if err := pub.Publish(msg); err != nil {
					b.Fatal(err)
				}
				for _, s := range subs {
					d, ok := s.Next()
					if !ok {
						b.Fatal("no delivery")
					}
					deliveries++
					switch qos {
					case 1:
						err = s.Ack(d.PacketID)
					case 2:
						if err = s.Received(d.PacketID); err == nil {
							err = s.Complete(d.PacketID)
						}
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(deliveries)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkIdleSessions measures the memory of 100,000 connected, idle
// in-process sessions, each with one subscription of its own — the
// gateway's shape. "persistent" sessions (expiry > 0) also have a record in
// the default MemoryStore; "clean" ones are never stored.
func BenchmarkIdleSessions(b *testing.B) {
	for _, bc := range []struct {
		name   string
		expiry uint32
	}{{"persistent", 3600}, {"clean", 0}} {
		b.Run(bc.name, func(b *testing.B) { benchIdleSessions(b, bc.expiry) })
	}
}

func benchIdleSessions(b *testing.B, expiry uint32) {
	const n = 100000
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		br, err := New(&Options{SysInterval: -1})
		require.NoError(b, err)
		require.NoError(b, br.Start(b.Context()))
		consumer := newConsumer()
		ids := make([]string, n)
		filters := make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprintf("sensor-%06d", i)
			filters[i] = fmt.Sprintf("sensors/%06d/cmd", i)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		sessions := make([]*Session, n)
		for i := range n {
			s, _, err := br.Connect(ConnectOptions{ClientID: ids[i], SessionExpiry: expiry, Consumer: consumer})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Subscribe(Subscription{Filter: filters[i], QoS: 1}); err != nil {
				b.Fatal(err)
			}
			sessions[i] = s
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		// The slice of handles is the benchmark's, not the broker's.
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n-8, "bytes/session")
		runtime.KeepAlive(sessions)
		require.NoError(b, br.Close(b.Context()))
		b.StartTimer()
	}
}

// readAll is an Authorizer other than AllowAll that allows everything, so
// the broker pays for the per-delivery read check and nothing else.
type readAll struct{ AllowAll }

// BenchmarkFanoutAuthorized is BenchmarkFanout/qos1 with an Authorizer
// that the broker must ask about every delivery: the difference is the
// cost of the read check itself.
func BenchmarkFanoutAuthorized(b *testing.B) {
	br, err := New(&Options{SysInterval: -1, Authorizer: readAll{}})
	require.NoError(b, err)
	require.NoError(b, br.Start(b.Context()))
	defer br.Close(b.Context())
	subs := make([]*Session, 100)
	for i := range subs {
		subs[i], _, err = br.Connect(ConnectOptions{ClientID: fmt.Sprint("sub", i), Consumer: newConsumer()})
		require.NoError(b, err)
		_, err = subs[i].Subscribe(Subscription{Filter: "bench/+", QoS: 1})
		require.NoError(b, err)
	}
	pub, _, err := br.Connect(ConnectOptions{ClientID: "pub", Consumer: newConsumer()})
	require.NoError(b, err)
	msg := Message{Topic: "bench/x", Payload: make([]byte, 64), QoS: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := pub.Publish(msg); err != nil {
			b.Fatal(err)
		}
		for _, s := range subs {
			d, ok := s.Next()
			if !ok {
				b.Fatal("no delivery")
			}
			if err := s.Ack(d.PacketID); err != nil {
				b.Fatal(err)
			}
		}
	}
}
