package mqttcore

import (
	"sync"
	"time"
)

// logLimit is a token bucket for log lines that a peer can cause at will,
// such as failed logins: a flood of them must not fill the disk, yet the
// first ones, and a count of those left out, must reach the operator.
type logLimit struct {
	mu         sync.Mutex
	tokens     float64
	burst      float64
	rate       float64 // tokens per second
	last       time.Time
	suppressed int
}

func newLogLimit(burst int, per time.Duration) *logLimit {
	return &logLimit{tokens: float64(burst), burst: float64(burst), rate: float64(burst) / per.Seconds()}
}

// allow takes a token at now. When it reports true, suppressed is the
// number of lines refused since the last one allowed, for that line to
// mention.
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		if dt := now.Sub(l.last).Seconds(); dt > 0 {
			l.tokens = min(l.burst, l.tokens+dt*l.rate)
		}
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
