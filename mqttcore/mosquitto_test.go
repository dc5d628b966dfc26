package mqttcore_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/internal/testpki"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// These tests drive the broker with Mosquitto's own command-line clients,
// an independent implementation of both protocol versions. A subscriber's
// readiness is read from the broker's state (Stats.Subscriptions), its
// output through a pipe, line by line; nothing waits on the clock.

// proc is a running client program whose standard output is read line by
// line.
type proc struct {
	cmd   *exec.Cmd
	lines chan string // closed at end of output
	done  chan error  // the exit status, once
}

func startProc(t *testing.T, path string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(path, args...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &testWriter{t: t, prefix: filepath.Base(path) + ": "}
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, lines: make(chan string, 64), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// line returns the next line of output.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		require.True(t, ok, "%s ended without the expected output", p.cmd.Path)
		return l
	case <-time.After(ioTimeout):
		t.Fatalf("%s printed nothing", p.cmd.Path)
		return ""
	}
}

// exit waits for the program to end and requires success.
func (p *proc) exit(t *testing.T) {
	t.Helper()
	for range p.lines {
	}
	select {
	case err := <-p.done:
		require.NoError(t, err, "%s", p.cmd.Args)
		p.done <- err // for the cleanup
	case <-time.After(ioTimeout):
		t.Fatalf("%s did not exit", p.cmd.Args)
	}
}

// run runs a program to completion and requires success.
func run(t *testing.T, path string, args ...string) {
	t.Helper()
	out, err := exec.Command(path, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", path, args, out)
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Log(w.prefix + string(b))
	return len(b), nil
}

func mosquittoClients(t *testing.T) (sub, pub string) {
	t.Helper()
	return testpeer.Look(t, "mosquitto_sub", "mosquitto-clients"), testpeer.Look(t, "mosquitto_pub", "mosquitto-clients")
}

var mosquittoVersions = []string{"mqttv311", "mqttv5"}

func TestMosquittoPubSub(t *testing.T) {
	subBin, pubBin := mosquittoClients(t)
	for _, v := range mosquittoVersions {
		for qos := range 3 {
			t.Run(fmt.Sprintf("%s/qos%d", v, qos), func(t *testing.T) {
				s := serveBroker(t, nil, mqttcore.ListenerOptions{})
				q := fmt.Sprint(qos)
				sub := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-q", q, "-t", "m/+", "-C", "2", "-v")
				s.waitSubscriptions(t, 1)
				run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-q", q, "-t", "m/a", "-m", "hello")
				run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-q", q, "-t", "m/b", "-m", "world")
				assert.Equal(t, "m/a hello", sub.line(t))
				assert.Equal(t, "m/b world", sub.line(t))
				sub.exit(t)
			})
		}
	}
}

func TestMosquittoRetained(t *testing.T) {
	subBin, pubBin := mosquittoClients(t)
	for _, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			s := serveBroker(t, nil, mqttcore.ListenerOptions{})
			run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-q", "1", "-t", "r/x", "-r", "-m", "old")
			run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-q", "1", "-t", "r/x", "-r", "-m", "kept")
			sub := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-t", "r/#", "-C", "1")
			assert.Equal(t, "kept", sub.line(t), "the retained message replaced")
			sub.exit(t)
			// An empty retained message deletes it.
			run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-t", "r/x", "-r", "-n")
			eventually(t, "no retained message", func() bool { return s.b.Stats().RetainedMessages == 0 })
		})
	}
}

func TestMosquittoWillOnKill(t *testing.T) {
	subBin, _ := mosquittoClients(t)
	for _, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			s := serveBroker(t, nil, mqttcore.ListenerOptions{})
			watcher := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-t", "will/#", "-C", "1", "-v")
			s.waitSubscriptions(t, 1)
			victim := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-t", "other", "-i", "victim",
				"--will-topic", "will/victim", "--will-payload", "gone", "--will-qos", "1")
			s.waitSubscriptions(t, 2)
			require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
			assert.Equal(t, "will/victim gone", watcher.line(t))
			watcher.exit(t)
		})
	}
}

func TestMosquittoPersistentSession(t *testing.T) {
	subBin, pubBin := mosquittoClients(t)
	for _, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			s := serveBroker(t, nil, mqttcore.ListenerOptions{})
			// Subscribe with a persistent session and leave (-E: exit once
			// subscribed).
			first := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-c", "-i", "keeper", "-q", "1", "-t", "p/#", "-E")
			first.exit(t)
			s.waitConnected(t, 0)
			for _, m := range []string{"one", "two"} {
				run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-q", "1", "-t", "p/x", "-m", m)
			}
			back := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "-V", v, "-c", "-i", "keeper", "-q", "1", "-t", "p/#", "-C", "2")
			assert.Equal(t, "one", back.line(t))
			assert.Equal(t, "two", back.line(t))
			back.exit(t)
		})
	}
}

func TestMosquittoTLS(t *testing.T) {
	subBin, pubBin := mosquittoClients(t)
	pki := newTestPKI(t)
	cfg, err := mqttcore.LoadTLSConfig(pki.serverCert, pki.serverKey, "")
	require.NoError(t, err)
	s := serveTLS(t, cfg)
	for _, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			topic := "tls/" + v
			sub := startProc(t, subBin, "-h", "127.0.0.1", "-p", s.port, "--cafile", pki.caCert, "-V", v, "-q", "1", "-t", topic, "-C", "1")
			eventually(t, "the subscriber", func() bool { return s.b.Stats().Subscriptions == 1 })
			run(t, pubBin, "-h", "127.0.0.1", "-p", s.port, "--cafile", pki.caCert, "-V", v, "-q", "1", "-t", topic, "-m", "secret")
			assert.Equal(t, "secret", sub.line(t))
			sub.exit(t)
			s.waitSubscriptions(t, 0)
		})
	}
}

func serveTLS(t *testing.T, cfg *tls.Config) *server {
	t.Helper()
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	return serveOn(t, b, l, mqttcore.ListenerOptions{})
}

func TestTLSClientCertificates(t *testing.T) {
	pki := newTestPKI(t)
	cfg, err := mqttcore.LoadTLSConfig(pki.serverCert, pki.serverKey, pki.caCert)
	require.NoError(t, err)
	s := serveTLS(t, cfg)
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.caCert)
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(caPEM))

	// Without a client certificate the handshake fails.
	nc, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: roots})
	if err == nil {
		c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: packet.V311}
		c.send(&packet.ConnectPacket{ClientID: "anon", CleanStart: true})
		_, err = c.recv()
		nc.Close()
	}
	require.Error(t, err, "a client without a certificate must be refused")

	clientCert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
	require.NoError(t, err)
	nc, err = tls.Dial("tcp", s.addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}})
	require.NoError(t, err)
	defer nc.Close()
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: packet.V5}
	c.send(connect5("cert"))
	assert.Equal(t, packet.Success, c.expect(packet.Connack).(*packet.ConnackPacket).ReasonCode)
	c.send(&packet.DisconnectPacket{})
	c.expectEOF()
}

func TestLoadTLSConfigErrors(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("nothing here"), 0o600))
	for _, tt := range []struct{ cert, key, ca string }{
		{"", pki.serverKey, ""},
		{pki.serverCert, filepath.Join(dir, "missing.key"), ""},
		{pki.serverCert, pki.clientKey, ""}, // key of another certificate
		{pki.serverCert, pki.serverKey, filepath.Join(dir, "missing.pem")},
		{pki.serverCert, pki.serverKey, notPEM},
	} {
		_, err := mqttcore.LoadTLSConfig(tt.cert, tt.key, tt.ca)
		assert.ErrorIs(t, err, mqttcore.ErrTLSConfig, "%+v", tt)
	}
}

// testPKI is a throwaway CA with a server certificate for the loopback
// addresses and a client certificate (CN "client"), as PEM files.
type testPKI struct {
	caCert, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	p := testpki.New(t, "snwgw test CA")
	clientCert, clientKey := p.Issue(t, "client", time.Now().Add(24*time.Hour), testpki.Client)
	return testPKI{caCert: p.CAFile, serverCert: p.ServerCertFile, serverKey: p.ServerKeyFile,
		clientCert: clientCert, clientKey: clientKey}
}
