package simulator

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
)

// The benchmark scenarios at small sizes against our gateway: each must
// run and report consistent figures. Speed is not asserted.

func benchTarget(t *testing.T) BenchTarget {
	t.Helper()
	gw := startGateway(t, nil)
	return BenchTarget{Gateway: gw.addr.String(), Broker: gw.mqtt}
}

func TestBenchIngest(t *testing.T) {
	r, err := BenchIngest(t.Context(), benchTarget(t), IngestOptions{Clients: 10, StartRate: 200, MaxRate: 500, Step: 300 * time.Millisecond})
	require.NoError(t, err)
	require.NotEmpty(t, r.Steps)
	assert.Equal(t, 10, r.Clients)
	first := r.Steps[0]
	assert.Equal(t, 200, first.Offered)
	assert.Positive(t, first.Sent)
	assert.LessOrEqual(t, first.Delivered, first.Sent)
	if first.Lossless() {
		assert.Positive(t, r.MaxLossless)
	}
}

func TestBenchQoS(t *testing.T) {
	tg := benchTarget(t)
	for _, q := range []mqttsn.QoS{mqttsn.QoS1, mqttsn.QoS2} {
		r, err := BenchQoS(t.Context(), tg, QoSOptions{Clients: 5, QoS: q, Duration: 300 * time.Millisecond})
		require.NoError(t, err)
		assert.Positive(t, r.Messages)
		assert.Zero(t, r.Errors)
		assert.Equal(t, r.Messages, r.Latency.Count)
		assert.Positive(t, r.Rate)
	}
	_, err := BenchQoS(t.Context(), tg, QoSOptions{QoS: mqttsn.QoS0})
	assert.ErrorIs(t, err, ErrBench)
}

func TestBenchConnectStorm(t *testing.T) {
	r, err := BenchConnectStorm(t.Context(), benchTarget(t), 300, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, 300, r.Sent)
	assert.Equal(t, 300, r.Accepted)
	assert.Zero(t, r.Rejected)
	assert.Positive(t, r.Elapsed)
}

func TestBenchIdle(t *testing.T) {
	r, err := BenchIdle(t.Context(), benchTarget(t), 200, 10*time.Second, 200*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 200, r.Connected)
	assert.True(t, r.InProcess)
	assert.Positive(t, r.RSSAfter)
	assert.GreaterOrEqual(t, r.CPUPercent, 0.0)
}

func TestBenchWakeStorm(t *testing.T) {
	r, err := BenchWakeStorm(t.Context(), benchTarget(t), 100, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, 100, r.Woken)
	assert.Equal(t, 100, r.Delivered, "every buffered message was delivered on waking")
	assert.Positive(t, r.Elapsed)
}

func TestBenchLatency(t *testing.T) {
	r, err := BenchLatency(t.Context(), benchTarget(t), 500, 5, 300*time.Millisecond)
	require.NoError(t, err)
	assert.Positive(t, r.Sent)
	assert.Equal(t, r.Delivered, r.Latency.Count)
	assert.LessOrEqual(t, r.Latency.P50, r.Latency.P99)
	assert.LessOrEqual(t, r.Latency.P99, r.Latency.Max)
}

var ingestRate = flag.Int("ingest-rate", 90000, "BenchmarkIngestRate: offered QoS 0 rate, msg/s")

// BenchmarkIngestRate runs the ingest scenario at one rate (-ingest-rate,
// 5 s, 1,000 clients) against our gateway in-process and reports where
// messages were lost: before the broker (sent but never published by the
// gateway: dropped at its socket or by the gateway), at the broker
// (dropped at the counting subscriber's queue), and in total. Run it once
// (-benchtime 1x), with -cpuprofile to see where the CPU goes.
func BenchmarkIngestRate(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		gw := startGateway(b, nil)
		r, err := BenchIngest(b.Context(), BenchTarget{Gateway: gw.addr.String(), Broker: gw.mqtt},
			IngestOptions{StartRate: *ingestRate, MaxRate: *ingestRate, Step: 5 * time.Second})
		require.NoError(b, err)
		require.Len(b, r.Steps, 1)
		st, published := r.Steps[0], gw.gw.Stats().Published
		b.ReportMetric(st.Achieved, "sent/s")
		b.ReportMetric(float64(st.Sent-st.Delivered), "lost")
		b.ReportMetric(float64(st.Sent-min(published, st.Sent)), "gateway-lost")
		b.ReportMetric(float64(gw.broker.Stats().MessagesDropped), "broker-drops")
	}
}
