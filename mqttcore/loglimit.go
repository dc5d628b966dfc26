package mqttcore

import (
	"sync"
	"time"
)

// Failed-login lines: twenty a minute show an attack and who is behind it.
const (
	logLimitBurst = 20
	logLimitPer   = time.Minute
)

// logLimit is a token bucket for log lines that a peer can cause at will,
// such as failed logins: a flood of them must not fill the disk, yet the
// first ones, and a count of those left out, must reach the operator. The
// zero value allows logLimitBurst lines a logLimitPer.
type logLimit struct {
	mu         sync.Mutex
	tokens     float64
	burst      float64
	rate       float64 // tokens per second
	last       time.Time
	suppressed int
}

func newLogLimit(burst int, per time.Duration) *logLimit {
	l := new(logLimit)
	l.setBudget(burst, per)
	return l
}

func (l *logLimit) setBudget(burst int, per time.Duration) {
	l.tokens, l.burst, l.rate = float64(burst), float64(burst), float64(burst)/per.Seconds()
}

// allow takes a token at now. When it reports true, suppressed is the
// number of lines refused since the last one allowed, for that line to
// mention.
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate == 0 {
		l.setBudget(logLimitBurst, logLimitPer)
	}
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
