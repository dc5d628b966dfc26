package auth_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/auth"
	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttcore"
)

// These tests put the Authorizer into the broker core behind a TLS
// listener and drive it with Mosquitto's command-line clients. Results
// are read from the clients' output (-d prints every packet) and
// readiness from the broker's state, never waited for on the clock.

const ioTimeout = 20 * time.Second

const testACL = `
user alice
topic write sensors/#
topic deny sensors/secret/#
topic read commands/#
user bob
topic read #
topic deny sensors/private/#
topic write commands/#
user eve
topic readwrite eve/#
`

type broker struct {
	b          *mqttcore.Broker
	addr, port string
	caFile     string
}

func startBroker(t *testing.T, opts auth.Options) *broker {
	t.Helper()
	dir := t.TempDir()
	caFile, certFile, keyFile := writeServerPKI(t, dir)
	b, err := mqttcore.New(&mqttcore.Options{Authorizer: auth.NewAuthorizer(opts), SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	tlsConfig, err := mqttcore.LoadTLSConfig(certFile, keyFile, "")
	require.NoError(t, err)
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", tlsConfig)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- b.Serve(l, mqttcore.ListenerOptions{}) }()
	t.Cleanup(func() {
		_ = l.Close()
		<-served
		assert.NoError(t, b.Close(context.Background()))
	})
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	return &broker{b: b, addr: addr, port: port, caFile: caFile}
}

func writeServerPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err = x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server.key", "PRIVATE KEY", kder)
}

// client runs mosquitto_pub or mosquitto_sub against the broker over TLS.
type client struct {
	cmd     *exec.Cmd
	lines   chan string
	done    chan struct{} // closed once the program has ended
	waitErr error         // its exit status, once done
	out     strings.Builder
}

func (b *broker) run(t *testing.T, program string, args ...string) *client {
	t.Helper()
	path := testpeer.Look(t, program, "mosquitto-clients")
	args = append([]string{"-h", "127.0.0.1", "-p", b.port, "--cafile", b.caFile}, args...)
	if program == "mosquitto_pub" {
		args = append(args, "-d") // its output is complete when it exits
	}
	c := &client{cmd: exec.Command(path, args...), lines: make(chan string, 256), done: make(chan struct{})}
	out, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	c.cmd.Stderr = c.cmd.Stdout
	require.NoError(t, c.cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// waitFor returns the first output line containing want, failing if the
// program ends first.
func (c *client) waitFor(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(ioTimeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("%s ended without printing %q; output:\n%s", c.cmd.Path, want, c.out.String())
			}
			c.out.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("%s printed no %q; output:\n%s", c.cmd.Path, want, c.out.String())
		}
	}
}

// exit waits for the program's end and returns its error and the rest of
// its output.
func (c *client) exit(t *testing.T) (error, string) {
	t.Helper()
	timeout := time.After(ioTimeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				<-c.done
				return c.waitErr, c.out.String()
			}
			c.out.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("%s did not exit; output:\n%s", c.cmd.Path, c.out.String())
		}
	}
}

func passwordsAndACL(t *testing.T) auth.Options {
	t.Helper()
	pw := auth.NewPasswords()
	require.NoError(t, pw.Set("alice", []byte("alice-pw")))
	require.NoError(t, pw.Set("bob", []byte("bob-pw")))
	require.NoError(t, pw.Set("eve", []byte("eve-pw")))
	acl, err := auth.ParseACL(strings.NewReader(testACL))
	require.NoError(t, err)
	return auth.Options{Passwords: pw, ACL: acl}
}

func TestMosquittoCredentials(t *testing.T) {
	b := startBroker(t, passwordsAndACL(t))
	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			ok := b.run(t, "mosquitto_pub", "-V", v, "-u", "alice", "-P", "alice-pw", "-t", "sensors/a", "-m", "1")
			err, out := ok.exit(t)
			require.NoError(t, err, out)
			assert.Contains(t, out, "Client", "debug output shows the session")

			for name, args := range map[string][]string{
				"wrong password": {"-u", "alice", "-P", "bob-pw"},
				"unknown user":   {"-u", "mallory", "-P", "alice-pw"},
				"anonymous":      {},
			} {
				bad := b.run(t, "mosquitto_pub", append([]string{"-V", v, "-t", "sensors/a", "-m", "1"}, args...)...)
				err, out := bad.exit(t)
				require.Error(t, err, "%s must be refused:\n%s", name, out)
				assert.Contains(t, strings.ToLower(out), "not authori", name)
			}
		})
	}
}

func TestMosquittoACL(t *testing.T) {
	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			b := startBroker(t, passwordsAndACL(t))
			// bob's "#" overlaps his deny rule: as in Mosquitto it is
			// granted, and what he may not read is held back per message.
			sub := b.run(t, "mosquitto_sub", "-V", v, "-u", "bob", "-P", "bob-pw", "-t", "#", "-v")
			// mosquitto_sub flushes its output per message, not per debug
			// line, so the broker's state tells when it has subscribed.
			require.Eventually(t, func() bool { return b.b.Stats().Subscriptions == 1 }, ioTimeout, 2*time.Millisecond)

			// bob may not write sensors; alice may not write the denied
			// subtree; bob may not read sensors/private; none of these
			// messages reaches the subscriber, which receives the allowed
			// one that follows them first.
			for _, tc := range []struct{ user, pass, topic, msg string }{
				{"bob", "bob-pw", "sensors/kitchen", "from-bob"},
				{"alice", "alice-pw", "sensors/secret/x", "secret"},
				{"alice", "alice-pw", "sensors/private/x", "private"},
				{"alice", "alice-pw", "sensors/kitchen", "21.5"},
			} {
				p := b.run(t, "mosquitto_pub", "-V", v, "-q", "1", "-u", tc.user, "-P", tc.pass, "-t", tc.topic, "-m", tc.msg)
				_, out := p.exit(t)
				if (tc.msg == "from-bob" || tc.msg == "secret") && v == "mqttv5" {
					// MQTT 5 tells the publisher: PUBACK reason 0x87.
					assert.Contains(t, strings.ToLower(out), "not authori", "refused publish of %s", tc.msg)
				}
			}
			line := sub.waitFor(t, "sensors/")
			assert.Equal(t, "sensors/kitchen 21.5", line)

			// Subscriptions on which a user could never read anything are
			// refused (SUBACK 0x80 in 3.1.1, 0x87 in 5).
			for _, tc := range []struct{ user, pass, filter string }{
				{"alice", "alice-pw", "sensors/#"},
				{"bob", "bob-pw", "sensors/private/#"},
			} {
				s := b.run(t, "mosquitto_sub", "-V", v, "-u", tc.user, "-P", tc.pass, "-t", tc.filter, "-d")
				line := s.waitFor(t, "Subscribed (mid:")
				code := "128"
				if v == "mqttv5" {
					code = "135"
				}
				assert.True(t, strings.HasSuffix(line, ": "+code), "%s %s: %s", tc.user, tc.filter, line)
			}
		})
	}
}

// A persistent session is resumed by its owner only: eve, connecting with
// the client id of bob's session, must not receive what was queued for
// bob, which her own rights would never let her read.
func TestMosquittoSessionOwner(t *testing.T) {
	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			b := startBroker(t, passwordsAndACL(t))
			bob := b.run(t, "mosquitto_sub", "-V", v, "-c", "-i", "dash", "-q", "1", "-u", "bob", "-P", "bob-pw", "-t", "sensors/#", "-v")
			require.Eventually(t, func() bool { return b.b.Stats().Subscriptions == 1 }, ioTimeout, 2*time.Millisecond)
			require.NoError(t, bob.cmd.Process.Kill())
			require.Eventually(t, func() bool { return b.b.Stats().ClientsConnected == 0 }, ioTimeout, 2*time.Millisecond)

			// Queued for bob's session while he is away.
			p := b.run(t, "mosquitto_pub", "-V", v, "-q", "1", "-u", "alice", "-P", "alice-pw", "-t", "sensors/kitchen", "-m", "21.5")
			err, out := p.exit(t)
			require.NoError(t, err, out)
			// A retained message eve will receive after her SUBACK; a
			// resumed session would deliver its queue before it.
			p = b.run(t, "mosquitto_pub", "-V", v, "-r", "-u", "eve", "-P", "eve-pw", "-t", "eve/marker", "-m", "mine")
			err, out = p.exit(t)
			require.NoError(t, err, out)

			eve := b.run(t, "mosquitto_sub", "-V", v, "-c", "-i", "dash", "-q", "1", "-u", "eve", "-P", "eve-pw", "-t", "eve/#", "-v")
			line := eve.waitFor(t, " ")
			assert.Equal(t, "eve/marker mine", line, "the first message eve receives is her own")
		})
	}
}
