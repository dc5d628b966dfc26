package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchWriter is a sink that tests read while a tool writes to it, and
// that signals when a given text has been written.
type watchWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	want    string
	times   int
	matched chan struct{}
}

func watchFor(want string) *watchWriter { return watchForN(want, 1) }

// watchForN matches once want has been written n times.
func watchForN(want string, n int) *watchWriter {
	return &watchWriter{want: want, times: n, matched: make(chan struct{})}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if w.want != "" && strings.Count(w.b.String(), w.want) >= max(w.times, 1) {
		w.want = ""
		close(w.matched)
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// wait blocks until the text was written or the tool ended.
func (w *watchWriter) wait(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-w.matched:
	case err := <-done:
		t.Fatalf("tool ended before writing the awaited text: %v\n%s", err, w.String())
	}
}

// gatewayFlags returns -h and -p for the test gateway.
func gatewayFlags(t *testing.T, srv *server) []string {
	t.Helper()
	a := srv.udp[0].LocalAddr().(*net.UDPAddr)
	return []string{"-h", a.IP.String(), "-p", strconv.Itoa(a.Port)}
}

func pub(t *testing.T, ctx context.Context, args []string, stdin string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runPub(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// startSub runs sub in the background; it returns once sub has its
// SUBACK (seen in its -d log), so later publishes reach it.
func startSub(t *testing.T, args ...string) (*syncBuffer, *watchWriter, <-chan error) {
	t.Helper()
	out := &syncBuffer{}
	// One SUBACK per topic: publishing before the last one could miss it.
	topics := 0
	for _, a := range args {
		if a == "-t" || a == "-T" {
			topics++
		}
	}
	log := watchForN("<- SUBACK", topics)
	done := make(chan error, 1)
	go func() { done <- runSub(context.Background(), append(args, "-d"), nil, out, log) }()
	log.wait(t, done)
	return out, log, done
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second): // guard against a hung tool only
		t.Fatal("sub did not finish")
		return nil
	}
}

func TestPubSubTopicName(t *testing.T) {
	for _, qos := range []string{"0", "1", "2"} {
		t.Run("QoS"+qos, func(t *testing.T) {
			srv, _ := startServe(t, "--udp", "127.0.0.1:0")
			gw := gatewayFlags(t, srv)
			out, _, done := startSub(t, append(gw, "-t", "a/b", "-C", "2", "-v", "-q", qos)...)
			_, _, err := pub(t, t.Context(), append(gw, "-t", "a/b", "-m", "hi", "-q", qos), "")
			require.NoError(t, err)
			_, _, err = pub(t, t.Context(), append(gw, "-t", "a/b", "-l", "-q", qos), "line\n")
			require.NoError(t, err)
			require.NoError(t, waitDone(t, done))
			assert.Equal(t, "a/b hi\na/b line\n", out.String())
		})
	}
}

func TestPubLinesFileEmptyAndRetain(t *testing.T) {
	srv, _ := startServe(t, "--udp", "127.0.0.1:0")
	gw := gatewayFlags(t, srv)
	out, _, done := startSub(t, append(gw, "-t", "s/#", "-C", "5", "-v", "-q", "1")...)
	_, _, err := pub(t, t.Context(), append(gw, "-t", "s/lines", "-l", "-q", "1"), "one\ntwo\n")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "msg")
	require.NoError(t, os.WriteFile(file, []byte("from a file"), 0o600))
	_, _, err = pub(t, t.Context(), append(gw, "-t", "s/file", "-f", file, "-q", "2"), "")
	require.NoError(t, err)
	_, _, err = pub(t, t.Context(), append(gw, "-t", "s/empty", "-n"), "")
	require.NoError(t, err)
	_, _, err = pub(t, t.Context(), append(gw, "-t", "s/stdin", "-s", "-r", "-q", "1"), "whole\nstdin")
	require.NoError(t, err)
	require.NoError(t, waitDone(t, done))
	assert.Equal(t, "s/lines one\ns/lines two\ns/file from a file\ns/empty \ns/stdin whole\nstdin\n", out.String())

	// The retained message reaches a later subscriber.
	var late bytes.Buffer
	err = runSub(t.Context(), append(gw, "-t", "s/stdin", "-C", "1"), nil, &late, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "whole\nstdin\n", late.String())
}

func TestPubSubPredefinedAndShort(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[gateway.predefined]\n\"7\" = \"pre/seven\"\n"), 0o600))
	srv, _ := startServe(t, "--config", cfg, "--udp", "127.0.0.1:0")
	gw := gatewayFlags(t, srv)
	out, _, done := startSub(t, append(gw, "-T", "7", "-t", "ab", "--short", "-C", "3", "-v", "-q", "1")...)
	_, _, err := pub(t, t.Context(), append(gw, "-T", "7", "-m", "predefined", "-q", "1"), "")
	require.NoError(t, err)
	_, _, err = pub(t, t.Context(), append(gw, "-t", "ab", "--short", "-m", "short", "-q", "2"), "")
	require.NoError(t, err)
	// QoS -1 needs no connection.
	_, _, err = pub(t, t.Context(), append(gw, "-T", "7", "-m", "minus one", "-q", "-1"), "")
	require.NoError(t, err)
	require.NoError(t, waitDone(t, done))
	assert.Equal(t, "predefined:7 predefined\nab short\npredefined:7 minus one\n", out.String())
}

func TestPubDebugLogsConversation(t *testing.T) {
	srv, _ := startServe(t, "--udp", "127.0.0.1:0")
	_, log, err := pub(t, t.Context(), append(gatewayFlags(t, srv), "-t", "d/1", "-m", "x", "-q", "1", "-d", "-v"), "")
	require.NoError(t, err)
	for _, want := range []string{"-> CONNECT", "<- CONNACK", "-> REGISTER", "<- REGACK", "-> PUBLISH", "<- PUBACK", "-> DISCONNECT"} {
		assert.Contains(t, log, want)
	}
}

func TestSleepingSubscriber(t *testing.T) {
	srv, _ := startServe(t, "--udp", "127.0.0.1:0")
	gw := gatewayFlags(t, srv)
	out := &syncBuffer{}
	log := watchFor("<- DISCONNECT") // the gateway acknowledged the sleep
	done := make(chan error, 1)
	go func() {
		done <- runSub(context.Background(), append(gw, "-t", "cmd/sleepy", "-q", "1", "-C", "2", "-i", "sleepy-sub",
			"--sleep", "10s", "--wake", "200ms", "-d"), nil, out, log)
	}()
	log.wait(t, done)
	for _, m := range []string{"first", "second"} {
		_, _, err := pub(t, t.Context(), append(gw, "-t", "cmd/sleepy", "-m", m, "-q", "1"), "")
		require.NoError(t, err)
	}
	require.NoError(t, waitDone(t, done))
	assert.Equal(t, "first\nsecond\n", out.String())
	assert.Contains(t, log.String(), "-> PINGREQ", "the messages were collected by waking")
}

func TestPubSubErrors(t *testing.T) {
	srv, _ := startServe(t, "--udp", "127.0.0.1:0")
	gw := gatewayFlags(t, srv)

	t.Run("connect refused", func(t *testing.T) {
		_, _, err := pub(t, t.Context(), append(gw, "-t", "x", "-m", "y", "-i", strings.Repeat("i", 100)), "")
		require.Error(t, err)
		assert.NotErrorAs(t, err, new(usageError))
		assert.Contains(t, err.Error(), "connect: refused by gateway")
	})
	t.Run("subscribe refused", func(t *testing.T) {
		var out bytes.Buffer
		err := runSub(t.Context(), append(gw, "-t", "a/#/b", "-C", "1"), nil, &out, &bytes.Buffer{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "subscribe to a/#/b: refused by gateway")
	})
	t.Run("unreachable", func(t *testing.T) {
		// A port nobody listens on: the kernel answers "port unreachable".
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		port := l.LocalAddr().(*net.UDPAddr).Port
		require.NoError(t, l.Close())
		_, _, err = pub(t, t.Context(), []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "x", "-m", "y"}, "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connect: gateway 127.0.0.1:"+strconv.Itoa(port)+" unreachable")
	})
	t.Run("timeout", func(t *testing.T) {
		// A socket that never answers.
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		defer l.Close()
		port := strconv.Itoa(l.LocalAddr().(*net.UDPAddr).Port)
		_, _, err = pub(t, t.Context(), []string{"-h", "127.0.0.1", "-p", port, "-t", "x", "-m", "y", "--retry", "20ms", "--retries", "1"}, "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connect: timeout: no answer from gateway")
	})
	t.Run("sub -W", func(t *testing.T) {
		err := runSub(t.Context(), append(gw, "-t", "quiet", "-C", "1", "-W", "1"), nil, &bytes.Buffer{}, &bytes.Buffer{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "timeout: 0 of 1 messages in 1 s")
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"-t", "x"},                       // no message
			{"-t", "x", "-m", "a", "-n"},      // two messages
			{"-m", "a"},                       // no topic
			{"-t", "x", "-T", "3", "-m", "a"}, // two topics
			{"-t", "abc", "--short", "-m", "a"},
			{"-t", "x", "-m", "a", "-q", "3"},
			{"-t", "x", "-m", "a", "-p", "0"},
			{"-T", "0", "-m", "a"},
			{"-t", "x", "-m", "a", "--bogus"},
			{"-t", "x", "-m", "a", "extra"},
		} {
			_, _, err := pub(t, t.Context(), args, "")
			assert.ErrorAs(t, err, new(usageError), "pub %q", args)
		}
		for _, args := range [][]string{
			{"-C", "1"},
			{"-t", "x", "-q", "-1"},
			{"-t", "x", "--sleep", "1s"},
			{"-t", "x", "--sleep", "1s", "--wake", "2s"},
			{"-T", "65535"},
		} {
			err := runSub(t.Context(), args, nil, &bytes.Buffer{}, &bytes.Buffer{})
			assert.ErrorAs(t, err, new(usageError), "sub %q", args)
		}
	})
}

// serialCable joins two pseudo-terminals back to back, as a null-modem
// cable joins two serial ports, and returns the two slave paths.
func serialCable(t *testing.T) (string, string) {
	t.Helper()
	m1, s1, err := pty.Open()
	require.NoError(t, err)
	m2, s2, err := pty.Open()
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(m1, m2) }()
	go func() { defer wg.Done(); _, _ = io.Copy(m2, m1) }()
	t.Cleanup(func() {
		for _, f := range []*os.File{m1, m2, s1, s2} {
			_ = f.Close()
		}
		wg.Wait()
	})
	return s1.Name(), s2.Name()
}

// TestPubOverSerial publishes over a raw serial line into the gateway's
// serial link; a subscriber on UDP receives it.
func TestPubOverSerial(t *testing.T) {
	gwEnd, toolEnd := serialCable(t)
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("[[udp]]\naddress = \"127.0.0.1:0\"\n[[serial]]\ndevice = %q\nbaud = 115200\n", gwEnd)), 0o600))
	srv, _ := startServe(t, "--config", cfg)
	out, _, done := startSub(t, append(gatewayFlags(t, srv), "-t", "serial/x", "-C", "1", "-v", "-q", "1")...)
	_, log, err := pub(t, t.Context(), []string{"--serial", toolEnd, "--baud", "115200", "-t", "serial/x", "-m", "over the wire", "-q", "1", "-d"}, "")
	require.NoError(t, err)
	assert.Contains(t, log, "<- PUBACK")
	require.NoError(t, waitDone(t, done))
	assert.Equal(t, "serial/x over the wire\n", out.String())
}
