package mqttcore_test

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// logBuffer collects log output from the broker's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines holding s.
func (b *logBuffer) lines(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func infoLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Failed logins show at the default level with who tried from where, and a
// flood of them does not flood the log. Each line is written before the
// refusing CONNACK, so the client's exit orders it.
func TestFailedLoginsLogged(t *testing.T) {
	_, pubBin := mosquittoClients(t)
	var logs logBuffer
	s := serveBroker(t, &mqttcore.Options{Authorizer: refuser{}, Logger: infoLogger(&logs)}, mqttcore.ListenerOptions{})
	out, err := exec.Command(pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", "mqttv5", "-i", "banned",
		"-u", "eve", "-P", "guess", "-t", "x", "-m", "1").CombinedOutput()
	require.Error(t, err, "%s", out)
	got := logs.lines("mqtt login failed")
	require.Len(t, got, 1)
	for _, want := range []string{"level=WARN", "client=banned", "user=eve", "remote=127.0.0.1:", `reason="not authorized"`} {
		assert.Contains(t, got[0], want)
	}

	const attempts = 100
	for range attempts {
		c := dialRaw(t, s.addr, packet.V5)
		c.send(connect5("banned"))
		require.Equal(t, packet.NotAuthorized, c.expect(packet.Connack).(*packet.ConnackPacket).ReasonCode)
		_ = c.nc.Close()
	}
	n := len(logs.lines("mqtt login failed"))
	assert.Less(t, n, attempts, "a flood is logged in part (TestLogLimit pins the budget)")
}

// A client that fails the TLS handshake of a listener requiring client
// certificates is a failed login too.
func TestFailedTLSLoginLogged(t *testing.T) {
	pki := newTestPKI(t)
	cfg, err := mqttcore.LoadTLSConfig(pki.serverCert, pki.serverKey, pki.caCert)
	require.NoError(t, err)
	var logs logBuffer
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1, Logger: infoLogger(&logs)})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	s := serveOn(t, b, l, mqttcore.ListenerOptions{})

	c := dialTLS(t, pki, s.addr, false, packet.V5)
	// TLS 1.3 finishes the client's side of the handshake before the
	// server has judged the (missing) certificate; its alert comes on the
	// first read, and the log line right after it on the server's side.
	c.send(connect5("no-cert"))
	_, err = c.recv()
	require.Error(t, err)
	eventually(t, "the log line", func() bool { return len(logs.lines("mqtt login failed")) > 0 })
	got := logs.lines("mqtt login failed")
	require.Len(t, got, 1)
	assert.Contains(t, got[0], `reason="TLS handshake failed"`)
	assert.Contains(t, got[0], "remote=127.0.0.1:")
}
