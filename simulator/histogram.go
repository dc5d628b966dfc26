package simulator

import (
	"math/bits"
	"sync"
	"time"
)

// Histogram buckets: values below subBuckets each have their own bucket;
// above, every power of two is split into subBuckets equal parts, so a
// recorded value is known to within 1/subBuckets (6.25 %) whatever its
// magnitude, in a fixed 8 KiB however many values are recorded.
const (
	subBits    = 4
	subBuckets = 1 << subBits
	numBuckets = (64-subBits)*subBuckets + subBuckets
)

// Histogram records durations in logarithmic buckets, in the manner of HDR
// histograms: memory is fixed, and percentiles are accurate to 6.25 %.
// The maximum is kept exactly. It is safe for concurrent use.
type Histogram struct {
	mu     sync.Mutex
	counts [numBuckets]uint64
	total  uint64
	max    time.Duration
}

// bucketOf returns the bucket of a non-negative value.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // shift that leaves subBits+1 bits
	sub := (v >> uint(e)) & (subBuckets - 1)
	return (e+1)*subBuckets + int(sub)
}

// bucketTop returns the largest value that falls in bucket i.
func bucketTop(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i/subBuckets - 1
	sub := uint64(i % subBuckets)
	return ((subBuckets+sub+1)<<uint(e) - 1)
}

// Record adds one value; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	i := bucketOf(uint64(d))
	h.mu.Lock()
	h.counts[i]++
	h.total++
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts, total, mx := o.counts, o.total, o.max
	o.mu.Unlock()
	h.mu.Lock()
	for i, c := range counts {
		h.counts[i] += c
	}
	h.total += total
	h.max = max(h.max, mx)
	h.mu.Unlock()
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// Max returns the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.max
}

// Percentile returns the value below which p percent of the recorded
// values fall (the top of its bucket, never more than Max), or 0 when
// nothing was recorded.
func (h *Histogram) Percentile(p float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total == 0 {
		return 0
	}
	rank := uint64(p / 100 * float64(h.total))
	if float64(rank) < p/100*float64(h.total) {
		rank++ // ceiling: the value at this rank or above
	}
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketTop(i)), h.max)
		}
	}
	return h.max
}

// Latency is a summary of a Histogram.
type Latency struct {
	Count uint64        `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns the count, median, 90th and 99th percentiles and maximum.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.Count(),
		P50:   h.Percentile(50),
		P90:   h.Percentile(90),
		P99:   h.Percentile(99),
		Max:   h.Max(),
	}
}
