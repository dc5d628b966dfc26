package simulator

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHistogramPercentilesWithinBucketError(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var values []time.Duration
	for range 100000 {
		// Log-uniform from 1 µs to 1 s, as latencies spread.
		v := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		values = append(values, v)
		h.Record(v)
	}
	slices.Sort(values)
	for _, p := range []float64{50, 90, 99, 99.9} {
		exact := values[int(p/100*float64(len(values)))-1]
		got := h.Percentile(p)
		assert.GreaterOrEqual(t, got, exact, "p%v never below the exact value", p)
		assert.LessOrEqual(t, float64(got), float64(exact)*(1+1.0/subBuckets)+1, "p%v within one bucket", p)
	}
	assert.Equal(t, values[len(values)-1], h.Max())
	assert.Equal(t, uint64(len(values)), h.Count())
}

func TestHistogramSmallAndEdgeValues(t *testing.T) {
	var h Histogram
	assert.Zero(t, h.Percentile(50), "empty")
	for _, v := range []time.Duration{0, 1, 15, 16, 17, -5} {
		h.Record(v)
	}
	assert.Equal(t, time.Duration(0), h.Percentile(1), "negative counts as zero")
	assert.Equal(t, time.Duration(17), h.Percentile(100))
	assert.Equal(t, time.Duration(17), h.Max())

	var big Histogram
	big.Record(time.Duration(1<<63 - 1))
	assert.Equal(t, time.Duration(1<<63-1), big.Percentile(50), "capped at the exact maximum")
}

func TestBucketsCoverEveryValue(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 15, 16, 31, 32, 33, 1000, 1 << 40, 1<<64 - 1} {
		i := bucketOf(v)
		assert.Less(t, i, numBuckets)
		assert.GreaterOrEqual(t, i, prev, "buckets grow with the value")
		assert.GreaterOrEqual(t, bucketTop(i), v, "a value is at most its bucket's top")
		if i > 0 {
			assert.Less(t, bucketTop(i-1), v, "and above the previous bucket's top")
		}
		prev = i
	}
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				a.Record(time.Duration(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	b.Record(time.Hour)
	b.Merge(&a)
	assert.Equal(t, uint64(4001), b.Count())
	assert.Equal(t, time.Hour, b.Max())
	s := a.Summary()
	assert.Equal(t, uint64(4000), s.Count)
	assert.InDelta(t, 2000, float64(s.P50), 2000/subBuckets+1)
	assert.LessOrEqual(t, s.P50, s.P90)
	assert.LessOrEqual(t, s.P90, s.P99)
	assert.LessOrEqual(t, s.P99, s.Max)
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i))
	}
}
