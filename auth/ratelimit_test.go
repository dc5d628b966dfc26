package auth

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateLimiterBucket(t *testing.T) {
	l, err := NewRateLimiter(2, 3, 10) // 2 per second, bursts of 3
	require.NoError(t, err)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		assert.True(t, l.Allow("10.0.0.1", t0), "burst %d", i)
	}
	assert.False(t, l.Allow("10.0.0.1", t0), "burst spent")
	assert.True(t, l.Allow("10.0.0.2", t0), "other keys have their own bucket")
	assert.False(t, l.Allow("10.0.0.1", t0.Add(400*time.Millisecond)), "0.8 tokens")
	assert.True(t, l.Allow("10.0.0.1", t0.Add(500*time.Millisecond)), "1 token after 0.5 s")
	assert.False(t, l.Allow("10.0.0.1", t0.Add(500*time.Millisecond)))
	// A long pause refills only up to the burst.
	t1 := t0.Add(time.Hour)
	for range 3 {
		assert.True(t, l.Allow("10.0.0.1", t1))
	}
	assert.False(t, l.Allow("10.0.0.1", t1))
	// A clock that steps back does not mint tokens.
	assert.False(t, l.Allow("10.0.0.1", t0))
	st := l.Stats()
	assert.Equal(t, uint64(8), st.Allowed)
	assert.Equal(t, uint64(5), st.Limited)
	assert.Equal(t, 2, st.Tracked)
}

func TestRateLimiterBounded(t *testing.T) {
	l, err := NewRateLimiter(1, 1, 100)
	require.NoError(t, err)
	now := time.Unix(0, 0)
	require.True(t, l.Allow("victim", now))
	require.False(t, l.Allow("victim", now))
	for i := range 1000 {
		l.Allow(strconv.Itoa(i), now)
	}
	st := l.Stats()
	assert.Equal(t, 100, st.Tracked)
	assert.Equal(t, uint64(901), st.Evicted)
	// The least recently used key was forgotten and starts afresh.
	assert.True(t, l.Allow("victim", now))
	// A recently used key is still limited.
	assert.False(t, l.Allow("999", now))
}

func TestNewRateLimiterInvalid(t *testing.T) {
	for _, tc := range []struct {
		rate         float64
		burst, track int
	}{{0, 1, 1}, {-1, 1, 1}, {1, 0, 1}, {1, 1, 0}} {
		_, err := NewRateLimiter(tc.rate, tc.burst, tc.track)
		assert.ErrorIs(t, err, ErrInvalidOptions)
	}
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	b.ReportAllocs()
	l, err := NewRateLimiter(1e9, 1000, 1024)
	require.NoError(b, err)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "192.0.2." + strconv.Itoa(i)
	}
	now := time.Unix(0, 0)
	i := 0
	for b.Loop() {
		l.Allow(keys[i&1023], now)
		i++
	}
}
