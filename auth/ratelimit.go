package auth

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// RateLimiter is a token bucket per key (an address, usually), for
// CONNECT attempts and for datagrams from senders the gateway does not
// know yet. It tracks at most maxTracked keys: beyond that the key used
// least recently is forgotten, and starts again with a full bucket when
// it returns. That keeps memory bounded under a flood of spoofed
// addresses at the price of forgetting the oldest offenders first. It is
// safe for concurrent use.
type RateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int

	mu    sync.Mutex
	keys  map[string]*list.Element // guarded by mu
	lru   list.List                // of *bucket, most recent first; guarded by mu
	stats RateLimiterStats         // guarded by mu
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// RateLimiterStats counts a limiter's decisions.
type RateLimiterStats struct {
	Allowed uint64
	Limited uint64
	Evicted uint64 // keys forgotten to make room
	Tracked int    // keys tracked now
}

// NewRateLimiter returns a limiter allowing each key rate events per
// second on average and bursts of up to burst events, tracking up to
// maxTracked keys.
func NewRateLimiter(rate float64, burst, maxTracked int) (*RateLimiter, error) {
	if !(rate > 0) || burst < 1 || maxTracked < 1 {
		return nil, fmt.Errorf("%w: rate limiter needs a positive rate, burst and key limit (got %v, %d, %d)",
			ErrInvalidOptions, rate, burst, maxTracked)
	}
	l := &RateLimiter{rate: rate, burst: float64(burst), max: maxTracked, keys: make(map[string]*list.Element)}
	l.lru.Init()
	return l, nil
}

// Allow takes a token from key's bucket at time now and reports whether
// there was one.
func (l *RateLimiter) Allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.keys[key]; ok {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = min(l.burst, b.tokens+dt*l.rate)
			b.last = now
		}
	} else {
		if l.lru.Len() >= l.max {
			oldest := l.lru.Back()
			delete(l.keys, oldest.Value.(*bucket).key)
			l.lru.Remove(oldest)
			l.stats.Evicted++
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.keys[key] = l.lru.PushFront(b)
	}
	if b.tokens < 1 {
		l.stats.Limited++
		return false
	}
	b.tokens--
	l.stats.Allowed++
	return true
}

// Stats returns the limiter's counters.
func (l *RateLimiter) Stats() RateLimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Tracked = l.lru.Len()
	return s
}
