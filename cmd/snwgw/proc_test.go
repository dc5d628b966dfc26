package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/mqttload"
	"github.com/snwgw/snwgw/internal/testpeer"
)

// Tests that run the real binary as a child process: restarts, signals and
// crashes, which no in-process test can show.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// snwgwBinary builds the binary once per test run.
func snwgwBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "snwgw-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "snwgw")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// child is one run of `snwgw serve`.
type child struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error // the exit status, once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every log line
}

// waitLog returns the first log line that contains want, or fails the
// test if the child exits or a minute passes (a hung binary only).
func (c *child) waitLog(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		for _, l := range strings.Split(c.logs.String(), "\n") {
			if strings.Contains(l, want) {
				return l
			}
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("serve logged no %q; log:\n%s", want, c.logs)
		}
	}
}

// startChild runs serve with args and returns once its MQTT and MQTT-SN
// listeners are up.
func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, append([]string{"serve"}, args...)...), logs: &syncBuffer{},
		done: make(chan error, 1), changed: make(chan struct{})}
	stderr, err := c.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, c.cmd.Start())
	// A failing test must not leave a server running.
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		var mqtt, sn, closed bool
		for sc.Scan() {
			line := sc.Text()
			c.logs.Write([]byte(line + "\n"))
			c.mu.Lock()
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
			mqtt = mqtt || strings.Contains(line, `msg="mqtt listening"`)
			sn = sn || strings.Contains(line, `msg="mqtt-sn listening"`)
			if mqtt && sn && !closed {
				close(ready)
				closed = true
			}
		}
		c.done <- c.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-c.done:
		c.done <- err
		t.Fatalf("serve exited before it was ready (%v); log:\n%s", err, c.logs)
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		t.Fatalf("serve not ready within a minute; log:\n%s", c.logs)
	}
	return c
}

// kill ends the child with sig and waits for it.
func (c *child) kill(sig syscall.Signal) error {
	_ = c.cmd.Process.Signal(sig)
	return <-c.done
}

// mosquitto runs one mosquitto_pub or mosquitto_sub command against addr
// and returns its output.
func mosquitto(t *testing.T, addr, program string, args ...string) string {
	t.Helper()
	bin := testpeer.Look(t, program, "mosquitto-clients")
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(bin, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", program, args, out)
	return string(out)
}

// A clean stop (SIGTERM, as systemd and Docker send) and start lose
// nothing: messages queued for a persistent subscriber that is away, and
// a retained value published at QoS 0 the way a new user tries it.
func TestRestartAfterSIGTERMLosesNothing(t *testing.T) {
	bin := snwgwBinary(t)
	port, err := mqttload.SparePort()
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"--mqtt", addr, "--udp", addr, "--data-dir", t.TempDir()}
	srv := startChild(t, bin, args...)
	mosquitto(t, addr, "mosquitto_sub", "-i", "keeper", "-c", "-q", "1", "-t", "q/#", "-E")
	var lines strings.Builder
	for i := range 100 {
		fmt.Fprintf(&lines, "m%d\n", i)
	}
	pub := exec.Command(testpeer.Look(t, "mosquitto_pub", "mosquitto-clients"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-q", "1", "-t", "q/x", "-l")
	pub.Stdin = strings.NewReader(lines.String())
	out, err := pub.CombinedOutput()
	require.NoError(t, err, "%s", out)
	mosquitto(t, addr, "mosquitto_pub", "-t", "home/t", "-m", "21.5", "-r")

	require.NoError(t, srv.kill(syscall.SIGTERM), "a clean stop exits 0; log:\n%s", srv.logs)
	assert.Contains(t, srv.logs.String(), "snwgw stopped")

	srv = startChild(t, bin, args...)
	defer func() { _ = srv.kill(syscall.SIGTERM) }()
	assert.Equal(t, "home/t 21.5\n", mosquitto(t, addr, "mosquitto_sub", "-t", "home/t", "-v", "-C", "1", "-W", "30"))
	got := mosquitto(t, addr, "mosquitto_sub", "-i", "keeper", "-c", "-q", "1", "-t", "q/#", "-C", "100", "-W", "30")
	assert.Equal(t, lines.String(), got, "every queued message, in order")
}
