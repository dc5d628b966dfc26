package bridge

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/snwgw/snwgw/mqttcore"
)

// BenchmarkUpstream measures forwarding from the local broker to a real
// mosquitto over loopback, as a subscriber of mosquitto receives them (at
// QoS 0 it would see losses as a missing count, and the run would time out).
//
//	go test -run '^$' -bench Upstream -benchtime 20000x ./bridge
func BenchmarkUpstream(b *testing.B) {
	for _, bc := range []struct {
		name string
		qos  byte
		disk bool
	}{
		{"qos0", 0, false},
		{"qos1", 1, false},
		{"qos1-disk", 1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := startMosquitto(b)
			broker := newBroker(b)
			opts := Options{
				Name: "bench", URL: m.url(), Logger: nil,
				Rules: []Rule{{LocalFilter: "bench/#", Direction: DirectionOut, QoS: 1, RemotePrefix: "gw/"}},
			}
			opts.Logger = slogNew(logSink{lines: make(chan string)})
			if bc.disk {
				opts.Queue.Dir = filepath.Join(b.TempDir(), "q")
			}
			br := startBridge(b, broker, opts)
			waitConnected(b, br)
			pub := newLocalClient(b, broker, "bench-pub")
			up := newObserver(b, m.addr(), "gw/#")
			payload := []byte(`{"t":21.5,"h":40}`)
			const window = 1000 // messages between the publisher and the observer at most
			timeout := time.After(10 * time.Minute)
			arrived := func() {
				select {
				case <-up.msgs:
				case <-timeout:
					b.Fatal("messages stopped arriving")
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i >= window {
					arrived()
				}
				if err := pub.sess.Publish(mqttcore.Message{Topic: "bench/t", Payload: payload, QoS: bc.qos}); err != nil {
					b.Fatal(err)
				}
			}
			for range min(b.N, window) {
				arrived()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			if d := br.Stats().QoS0Dropped; d > 0 {
				b.Fatalf("%d QoS 0 messages dropped", d)
			}
		})
	}
}
