package mqttcore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLogLimit(t *testing.T) {
	l := newLogLimit(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for range 3 {
		ok, n := l.allow(t0)
		assert.True(t, ok)
		assert.Zero(t, n)
	}
	for range 100 {
		ok, _ := l.allow(t0)
		assert.False(t, ok, "a flood gets no more than the burst")
	}
	ok, _ := l.allow(t0.Add(10 * time.Second))
	assert.False(t, ok, "half a token back")
	ok, n := l.allow(t0.Add(20 * time.Second))
	assert.True(t, ok, "one token back after a third of the period")
	assert.Equal(t, 101, n, "the line says how many were left out")
	ok, n = l.allow(t0.Add(time.Hour))
	assert.True(t, ok)
	assert.Zero(t, n)
}

func TestLogLimitZeroValue(t *testing.T) {
	var l logLimit
	t0 := time.Unix(1000, 0)
	for range logLimitBurst {
		ok, _ := l.allow(t0)
		assert.True(t, ok)
	}
	ok, _ := l.allow(t0)
	assert.False(t, ok)
}
