package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/internal/testpki"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// TLS end to end: `snwgw serve` with two TLS listeners, one where a client
// certificate stands for the user name (use_identity_as_username) and one
// where TLS only encrypts and clients give passwords, against real
// mosquitto_pub and mosquitto_sub.

// tlsSite is the PKI of a site: its CA, a server certificate for
// 127.0.0.1, client certificates, and a gateway serving both listeners.
type tlsSite struct {
	pki   *testpki.PKI
	certs map[string][2]string // common name → certificate and key files
	// certE2E and passwordE2E share one server; each points at its
	// listener.
	certE2E, passwordE2E *e2e
}

// tlsACL holds the MQTT-SN sensors to their own subtree and gives the two
// certificate users their rights; the names are the certificates' CNs.
const tlsACL = `# every MQTT-SN sensor writes only below its own ClientId
pattern write sensors/%c/#
client valve-1
topic read actuators/valve-1/#
user dashboard
topic read sensors/#
user sensor-admin
topic write actuators/#
`

// startTLSSite writes the certificates, a password file (dashboard /
// s3cret), the ACL and the configuration, and serves it.
func startTLSSite(t *testing.T) *tlsSite {
	t.Helper()
	s := &tlsSite{pki: testpki.New(t, "site"), certs: map[string][2]string{}}
	for _, cn := range []string{"dashboard", "sensor-admin"} {
		c, k := s.pki.Issue(t, cn, time.Now().Add(24*time.Hour), testpki.Client)
		s.certs[cn] = [2]string{c, k}
	}
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	var out bytes.Buffer
	require.NoError(t, runPasswd([]string{"-c", "-b", passwd, "dashboard", "s3cret"}, nil, &out, &out), out.String())
	acl := filepath.Join(dir, "acl")
	require.NoError(t, os.WriteFile(acl, []byte(tlsACL), 0o600))
	cfg := writeConfig(t, fmt.Sprintf(`[auth]
password_file = %q
acl_file = %q

[[udp]]
address = "127.0.0.1:0"

[[broker.listener]]
address = "127.0.0.1:0"
cert_file = %[3]q
key_file = %[4]q
client_ca_file = %[5]q
use_identity_as_username = true

[[broker.listener]]
address = "127.0.0.1:0"
cert_file = %[3]q
key_file = %[4]q
`, passwd, acl, s.pki.ServerCertFile, s.pki.ServerKeyFile, s.pki.CAFile))

	testpeer.Look(t, "mosquitto_sub", "mosquitto-clients")
	srv, _ := startServeAsIs(t, "--config", cfg)
	require.Len(t, srv.mqtt, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	s.certE2E = &e2e{t: t, srv: srv, udp: srv.udp[0].LocalAddr(), mqtt: srv.mqtt[0].Addr().String(), ctx: ctx}
	pw := *s.certE2E
	pw.mqtt = srv.mqtt[1].Addr().String()
	s.passwordE2E = &pw
	return s
}

// tlsArgs are mosquitto client options that trust ca and, given a common
// name, present the client certificate issued for it.
func (s *tlsSite) tlsArgs(t *testing.T, ca, cn string) []string {
	t.Helper()
	args := []string{"--cafile", ca}
	if cn != "" {
		pair, ok := s.certs[cn]
		require.True(t, ok, "no certificate issued for %s", cn)
		args = append(args, "--cert", pair[0], "--key", pair[1])
	}
	return args
}

// mosquitto runs mosquitto_pub or mosquitto_sub (bin) with -d against e's
// listener until it exits, and returns what it wrote and how it ended.
func (e *e2e) mosquitto(bin, version string, args ...string) (string, error) {
	e.t.Helper()
	host, port := e.hostPort()
	all := append([]string{"-h", host, "-p", port, "-V", version, "-d"}, args...)
	out, err := exec.CommandContext(e.ctx, testpeer.Look(e.t, bin, "mosquitto-clients"), all...).CombinedOutput()
	require.NoError(e.t, e.ctx.Err(), "%s %v never exited: %s", bin, all, out)
	return string(out), err
}

// TestTLSCertificateStandsForUsername: on the listener with
// use_identity_as_username the certificate's CN is the user name, whatever
// the client claims, and the ACL's user sections hold it both ways.
func TestTLSCertificateStandsForUsername(t *testing.T) {
	s := startTLSSite(t)
	e := s.certE2E
	dashboard := s.tlsArgs(t, s.pki.CAFile, "dashboard")

	// It claims to be "mallory" and gives no password: the certificate
	// decides, and dashboard may read sensors/#.
	lines, _ := e.mosquittoSub("mqttv5", 1, "sensors/#", append(dashboard, "-u", "mallory")...)
	sensor := e.snClient("sensor-1", snclient.Options{CleanSession: true})
	publish := func(payload string) {
		t.Helper()
		require.NoError(t, sensor.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName("sensors/sensor-1/temp"),
			Payload: []byte(payload), QoS: mqttsn.QoS1}))
	}
	publish("21")
	assert.Equal(t, "sensors/sensor-1/temp 21", e.line(lines))

	// dashboard may not write, not even where it reads. MQTT 5 learns it
	// from PUBACK 0x87, which mosquitto_pub reports and still exits 0;
	// 3.1.1 has no way to say it and gets a plain PUBACK (3.1.1 §3.3.5).
	out, err := e.mosquitto("mosquitto_pub", "mqttv5", append(dashboard, "-q", "1", "-t", "sensors/sensor-1/temp", "-m", "forged")...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "received PUBACK (Mid: 1, RC:135)")
	assert.Contains(t, out, "Publish 1 failed: Not authorized")
	out, err = e.mosquitto("mosquitto_pub", "mqttv311", append(dashboard, "-q", "1", "-t", "sensors/sensor-1/temp", "-m", "forged")...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "received PUBACK (Mid: 1, RC:0)")
	// Neither forged message was delivered: the next line is the sensor's.
	publish("22")
	assert.Equal(t, "sensors/sensor-1/temp 22", e.line(lines))

	// Nor may it read elsewhere: SUBACK 0x87 (MQTT 5) or 0x80 (3.1.1),
	// after which mosquitto_sub disconnects and exits by itself.
	for version, code := range map[string]string{"mqttv5": "135", "mqttv311": "128"} {
		out, err := e.mosquitto("mosquitto_sub", version, append(dashboard, "-q", "1", "-t", "actuators/#")...)
		require.NoError(t, err, out)
		assert.Contains(t, out, "Subscribed (mid: 1): "+code, version)
		assert.Contains(t, out, "All subscription requests were denied.", version)
	}

	// sensor-admin writes to an actuator, an MQTT-SN client.
	got := make(chan snclient.Message, 1)
	valve := e.snClient("valve-1", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { got <- m }})
	_, _, err = valve.Subscribe(e.ctx, snclient.TopicName("actuators/valve-1/set"), mqttsn.QoS1)
	require.NoError(t, err)
	out, err = e.mosquitto("mosquitto_pub", "mqttv5", append(s.tlsArgs(t, s.pki.CAFile, "sensor-admin"),
		"-q", "1", "-t", "actuators/valve-1/set", "-m", "open")...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "received PUBACK (Mid: 1, RC:0)")
	select {
	case m := <-got:
		assert.Equal(t, "actuators/valve-1/set", m.Topic.Name)
		assert.Equal(t, "open", string(m.Payload))
	case <-e.ctx.Done():
		t.Fatal("the command never reached the MQTT-SN actuator")
	}
}

// TestTLSRefusedClients tries each way in that must fail beside the one
// that must work, so a refusal is known to be the credential's doing.
func TestTLSRefusedClients(t *testing.T) {
	s := startTLSSite(t)
	now := time.Now()
	expiredCert, expiredKey := s.pki.Issue(t, "expired", now.Add(-time.Hour), testpki.Client)
	other := testpki.New(t, "elsewhere")
	strangerCert, strangerKey := other.Issue(t, "dashboard", now.Add(24*time.Hour), testpki.Client)

	for _, tc := range []struct {
		name string
		e    *e2e
		args []string
		says string // in mosquitto_pub's output; "" when it must succeed
	}{
		{"right certificate", s.certE2E, s.tlsArgs(t, s.pki.CAFile, "dashboard"), ""},
		{"no certificate", s.certE2E, s.tlsArgs(t, s.pki.CAFile, ""), "certificate required"},
		{"expired certificate", s.certE2E, []string{"--cafile", s.pki.CAFile, "--cert", expiredCert, "--key", expiredKey}, "certificate expired"},
		{"certificate of another CA", s.certE2E, []string{"--cafile", s.pki.CAFile, "--cert", strangerCert, "--key", strangerKey}, "unknown ca"},
		{"server of another CA", s.certE2E, s.tlsArgs(t, other.CAFile, "dashboard"), "certificate verify failed"},
		{"right password", s.passwordE2E, append(s.tlsArgs(t, s.pki.CAFile, ""), "-u", "dashboard", "-P", "s3cret"), ""},
		{"wrong password", s.passwordE2E, append(s.tlsArgs(t, s.pki.CAFile, ""), "-u", "dashboard", "-P", "wrong"), "not authorised"},
		{"password listener, server of another CA", s.passwordE2E, append(s.tlsArgs(t, other.CAFile, ""), "-u", "dashboard", "-P", "s3cret"), "certificate verify failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.e.mosquitto("mosquitto_pub", "mqttv311", append(tc.args, "-q", "1", "-t", "sensors/tls/probe", "-m", "x")...)
			if tc.says == "" {
				require.NoError(t, err, out)
				assert.Contains(t, out, "received CONNACK (0)")
				return
			}
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "mosquitto_pub was accepted: %v\n%s", err, out)
			assert.Contains(t, out, tc.says)
			assert.NotContains(t, out, "received CONNACK (0)")
		})
	}
}

// TestConfigUseIdentityNeedsClientCA: use_identity_as_username without
// client_ca_file is refused by `config check` and by serve, naming the
// listener.
func TestConfigUseIdentityNeedsClientCA(t *testing.T) {
	pki := testpki.New(t, "site")
	for name, listener := range map[string]string{
		"tls without client CA": fmt.Sprintf("address = \"127.0.0.1:0\"\ncert_file = %q\nkey_file = %q\n", pki.ServerCertFile, pki.ServerKeyFile),
		"plain tcp":             "address = \"127.0.0.1:0\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeConfig(t, "[[broker.listener]]\naddress = \"127.0.0.1:0\"\n\n[[broker.listener]]\n"+listener+"use_identity_as_username = true\n")
			var out bytes.Buffer
			err := runConfig([]string{"check", p}, &out)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			assert.Equal(t, "broker.listener[1]", ce.Key)
			assert.ErrorIs(t, err, errIdentityWithoutClientCA)
			assert.Contains(t, err.Error(), "listener 127.0.0.1:0")
			assert.Empty(t, out.String())

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			err = runServe(ctx, []string{"--config", p}, &out, func(*server) {
				t.Error("serve started")
				cancel()
			})
			assert.ErrorIs(t, err, errIdentityWithoutClientCA)
		})
	}
	// With the client CA the same listener is fine.
	p := writeConfig(t, fmt.Sprintf("[[broker.listener]]\ncert_file = %q\nkey_file = %q\nclient_ca_file = %q\nuse_identity_as_username = true\n",
		pki.ServerCertFile, pki.ServerKeyFile, pki.CAFile))
	var out bytes.Buffer
	require.NoError(t, runConfig([]string{"check", p}, &out))
	assert.Contains(t, out.String(), "use_identity_as_username = true")
}
