package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/simulator"
)

// fastGateway runs serve with short retransmission timers, so a lossy
// run's gateway-to-device retries happen within the test.
func fastGateway(t *testing.T) *server {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[gateway]\nretry_interval = \"200ms\"\nretry_count = 8\nadvertise_interval = \"-1s\"\n"), 0o600))
	srv, _ := startServe(t, "--config", cfg, "--udp", "127.0.0.1:0")
	return srv
}

func TestExampleFleetFileLoads(t *testing.T) {
	f, err := simulator.LoadFleet("../../examples/fleet.toml")
	require.NoError(t, err)
	assert.Len(t, f.Groups, 4)
	_, err = simulator.New(f)
	require.NoError(t, err)
}

func TestSimEveryProfileJSON(t *testing.T) {
	srv := fastGateway(t)
	args := append(gatewayFlags(t, srv),
		"--env", "2", "--event", "2", "--sleepy", "2", "--bulb", "2", "-q", "2",
		"--messages", "4", "--interval", "30ms", "--jitter", "10ms", "--commands", "10ms",
		"--loss", "10", "--dup", "5", "--retry", "50ms", "--retries", "12",
		"--check-mqttsn", "--grace", "20s", "--seed", "3", "--json")
	var out, errOut bytes.Buffer
	require.NoError(t, runSim(t.Context(), args, nil, &out, &errOut), "stderr:\n%s", errOut.String())
	var r simulator.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &r), out.String())
	assert.True(t, r.Checked)
	assert.Empty(t, r.Failures)
	require.Len(t, r.Profiles, 4)
	for _, p := range r.Profiles {
		assert.Equal(t, 2, p.Devices, p.Profile)
		assert.Positive(t, p.Sent, p.Profile)
		assert.Zero(t, p.Lost, p.Profile)
		assert.Zero(t, p.Duplicated, p.Profile)
		assert.Equal(t, p.Acknowledged, p.Delivered, p.Profile)
	}
	assert.Positive(t, r.Up.Dropped)
	assert.NotContains(t, errOut.String(), "\r", "no progress line when stderr is not a terminal")
	assert.Contains(t, errOut.String(), "bulb command rejected", "out-of-range commands are logged")
}

func TestSimFleetFileWithOverrides(t *testing.T) {
	srv := fastGateway(t)
	file := filepath.Join(t.TempDir(), "fleet.toml")
	require.NoError(t, os.WriteFile(file, []byte(`
messages = 3
[link]
udp = "192.0.2.1:1883" # replaced by -h and -p
[check]
mqttsn = true
[[group]]
profile = "env"
count = 3
interval = "20ms"
qos = 0
`), 0o600))
	var out bytes.Buffer
	err := runSim(t.Context(), append(gatewayFlags(t, srv), "--config", file, "-q", "1"), nil, &out, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "guarantees: held")
	assert.Regexp(t, `env\s+3\s+9\s+9\s+0\s+9\s+0\s+0`, out.String())
}

func TestSimUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("[[group]]\nprofile = \"env\"\ncolour = 3\n"), 0o600))
	for _, args := range [][]string{
		{},                              // no devices
		{"--env", "1", "-q", "5"},       // bad QoS
		{"--env", "1", "--loss", "150"}, // bad impairment
		{"--sleepy", "1", "-q", "-1"},   // QoS -1 needs no session
		{"--env", "1", "--framing", "slip", "--serial", "/dev/null"},
		{"--env", "1", "extra"},
	} {
		err := runSim(t.Context(), args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		assert.ErrorAs(t, err, new(usageError), "sim %q", args)
	}
	err := runSim(t.Context(), []string{"--config", bad}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown key "group.colour"`)
}

// TestProgressLineOnTerminal draws the progress line on a terminal only.
func TestProgressLineOnTerminal(t *testing.T) {
	master, slave, err := pty.Open()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	assert.True(t, isTerminal(slave))
	assert.False(t, isTerminal(&bytes.Buffer{}))
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f), "a regular file is not a terminal")

	s, err := simulator.New(simulator.Fleet{Link: simulator.Link{UDP: "127.0.0.1:1"}, Messages: 1,
		Groups: []simulator.Group{{Profile: simulator.Environment, Count: 3, Interval: time.Second}}})
	require.NoError(t, err)
	stop := startProgress(s, slave, 10*time.Millisecond)
	require.NoError(t, master.SetReadDeadline(time.Now().Add(10*time.Second))) // a guard, not a synchronisation
	var got strings.Builder
	buf := make([]byte, 512)
	for !strings.Contains(got.String(), "errors 0") {
		n, err := master.Read(buf)
		require.NoError(t, err)
		got.Write(buf[:n])
	}
	stop()
	assert.True(t, strings.HasPrefix(got.String(), "\r"), "the line redraws itself")
	assert.Contains(t, got.String(), "devices 3 (connected 0, asleep 0)")
}
