//go:build linux

// Package tsharktest runs tshark as an independent MQTT-SN decoder in
// tests: it captures UDP traffic on the loopback interface and exports the
// dissector's fields, so a test can compare Wireshark's reading of what was
// on the wire with its own.
package tsharktest

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
)

// Dissector describes the installed tshark's MQTT-SN dissector.
type Dissector struct {
	Path    string
	Version string
	// Legacy is true for 4.0 and older, whose dissector shows the
	// TopicIdType instead of QoS and Retain in WILLTOPIC, WILLTOPICUPD and
	// SUBACK, shows neither DUP nor QoS in SUBSCRIBE, decodes a pre-defined
	// SUBSCRIBE/UNSUBSCRIBE topic id as a string, shows a short PUBLISH
	// topic as a number, and flags the valid 2-octet empty WILLTOPIC and
	// WILLTOPICUPD as malformed.
	Legacy bool
}

// Find locates tshark (skipping or failing the test as testpeer decides)
// and reads its version.
func Find(t *testing.T, ctx context.Context) Dissector {
	t.Helper()
	path := testpeer.Look(t, "tshark", "tshark")
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	require.NoError(t, err)
	m := regexp.MustCompile(`(\d+)\.(\d+)\.(\d+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "tshark --version: %s", out)
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return Dissector{Path: path, Version: m[0], Legacy: major < 4 || major == 4 && minor == 0}
}

// Capture is a running tshark capture on the loopback interface.
type Capture struct {
	d      Dissector
	file   string
	exited chan string // tshark's stderr, once it has closed it
}

// Start captures count UDP datagrams matching the capture filter on lo. It
// returns once tshark is really capturing: tshark prints "Capturing on 'lo'"
// before its dumpcap child has the socket open, and datagrams sent then are
// lost, so it waits for "Capture started". The capture ends by itself after
// count packets; ctx bounds it.
func (d Dissector) Start(t *testing.T, ctx context.Context, filter string, count int) *Capture {
	t.Helper()
	c := &Capture{d: d, file: filepath.Join(t.TempDir(), "capture.pcapng"), exited: make(chan string, 1)}
	cmd := exec.CommandContext(ctx, d.Path, "-i", "lo", "-f", filter, "-c", strconv.Itoa(count), "-w", c.file)
	// tshark captures through a dumpcap child; on cancellation, kill both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Cancel()
		_ = cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		var log strings.Builder
		sc := bufio.NewScanner(stderr)
		started := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !started && strings.Contains(sc.Text(), "Capture started") {
				started = true
				close(ready)
			}
		}
		c.exited <- log.String()
	}()
	select {
	case <-ready:
	case log := <-c.exited:
		t.Fatalf("tshark stopped before capturing:\n%s", log)
	case <-ctx.Done():
		t.Fatalf("tshark did not start capturing: %v", ctx.Err())
	}
	return c
}

// Wait returns once tshark has captured its count of packets.
func (c *Capture) Wait(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case log := <-c.exited:
		t.Logf("capture: %s", strings.TrimSpace(log))
	case <-ctx.Done():
		out, _ := exec.Command(c.d.Path, "-r", c.file).CombinedOutput()
		t.Fatalf("tshark did not capture every packet: %v\n%s", ctx.Err(), out)
	}
}

// Fields decodes the capture with the MQTT-SN dissector on udp port and
// returns one row per datagram, each a map from field name to value
// (several occurrences joined with commas).
func (c *Capture) Fields(t *testing.T, ctx context.Context, port int, fields []string) []map[string]string {
	t.Helper()
	args := []string{"-r", c.file, "-d", fmt.Sprintf("udp.port==%d,mqttsn", port), "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.CommandContext(ctx, c.d.Path, args...).Output()
	require.NoError(t, err)
	var rows []map[string]string
	for i, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		cols := strings.Split(line, "\t")
		require.Len(t, cols, len(fields), "row %d", i+1)
		row := make(map[string]string, len(fields))
		for j, f := range fields {
			row[f] = cols[j]
		}
		rows = append(rows, row)
	}
	return rows
}
