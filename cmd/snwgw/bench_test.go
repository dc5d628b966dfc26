package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchSmall runs every scenario at a small size against our own
// gateway, started in-process, and checks the JSON figures hang together.
func TestBenchSmall(t *testing.T) {
	var out bytes.Buffer
	err := runBench(t.Context(), []string{
		"--ingest-clients", "10", "--ingest-start", "200", "--ingest-max", "400", "--ingest-step", "300ms",
		"--qos-clients", "4", "--qos-duration", "300ms",
		"--connects", "200", "--idle-clients", "200", "--idle-measure", "200ms", "--wake-clients", "50",
		"--rate", "300", "--latency-clients", "3", "--latency-duration", "300ms", "--timeout", "20s", "--json",
	}, nil, &out, &bytes.Buffer{})
	require.NoError(t, err)
	var r map[string]map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &r), out.String())
	for _, s := range benchScenarios {
		assert.Contains(t, r, s)
	}
	assert.EqualValues(t, 200, r["connect"]["accepted"])
	assert.EqualValues(t, 200, r["idle"]["connected"])
	assert.EqualValues(t, 50, r["wake"]["delivered"])
	assert.Positive(t, r["qos1"]["messages"])
	assert.Positive(t, r["qos2"]["messages"])
	assert.Positive(t, r["latency"]["delivered"])
}

func TestBenchTable(t *testing.T) {
	var out bytes.Buffer
	err := runBench(t.Context(), []string{"--scenarios", "connect,qos1", "--connects", "50", "--qos-clients", "2", "--qos-duration", "100ms"}, nil, &out, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "connect storm")
	assert.Regexp(t, `50\s+50\s+0\s`, out.String())
	assert.Contains(t, out.String(), "QoS 1, 2 clients")
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"--scenarios", "nope"}, {"--gateway", "127.0.0.1:1883"}, {"extra"}} {
		err := runBench(t.Context(), args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		assert.ErrorAs(t, err, new(usageError), "%q", args)
	}
}
