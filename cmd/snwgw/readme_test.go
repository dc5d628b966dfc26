package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// runMainEnv makes the test binary behave as snwgw itself, so that shell
// commands a test runs can call `snwgw` without a separate build.
const runMainEnv = "SNWGW_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	// A test that serves without --data-dir must not leave a data file in
	// the package directory: the default data directory follows
	// STATE_DIRECTORY first.
	state, err := os.MkdirTemp("", "snwgw-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("STATE_DIRECTORY", state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}

// snwgwOnPath returns a PATH whose first directory holds an `snwgw` that
// runs this test binary as snwgw.
func snwgwOnPath(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	bin := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec '%s' \"$@\"\n", runMainEnv, strings.ReplaceAll(self, "'", `'\''`))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "snwgw"), []byte(script), 0o755))
	return bin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// readmeBlock returns the shell block that follows the marker comment
// <!-- name --> in the README.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)<!-- " + regexp.QuoteMeta(name) + " -->\n```sh\n(.*?)```")
	m := re.FindSubmatch(raw)
	require.NotNil(t, m, "README has no block marked %q", name)
	return string(m[1])
}

// TestReadmeSecureSetup runs the README's secure setup as a user pastes
// it, then serves the configuration it wrote (on ports of the test's own)
// and plays the README's tries with mosquitto_sub/mosquitto_pub and snwgw
// pub: a certificate-authenticated dashboard sees an allowlisted sensor,
// an application with a password commands it over TLS, and a ClientId
// that is not listed is refused.
func TestReadmeSecureSetup(t *testing.T) {
	testpeer.Look(t, "openssl", "openssl")
	bash := testpeer.Look(t, "bash", "bash")
	dir := t.TempDir()
	cmd := exec.Command(bash, "-e", "-c", readmeBlock(t, "secure-setup"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+snwgwOnPath(t))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the README's secure setup failed:\n%s", out)
	require.Contains(t, string(out), "snwgw-secure is ready")

	// The configuration as written, on loopback ports the test chooses.
	sec := filepath.Join(dir, "snwgw-secure")
	cfg, err := loadConfig(filepath.Join(sec, "gateway.toml"))
	require.NoError(t, err)
	require.Len(t, cfg.UDP, 1)
	require.Len(t, cfg.DTLS, 1)
	require.Len(t, cfg.Broker.Listeners, 2)
	cfg.UDP[0].Address = "127.0.0.1:0"
	cfg.DTLS[0].Address = "127.0.0.1:0"
	for i := range cfg.Broker.Listeners {
		cfg.Broker.Listeners[i].Address = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv, err := startServer(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		assert.NoError(t, srv.close(cctx))
	})
	port := func(l net.Listener) string { return fmt.Sprint(l.Addr().(*net.TCPAddr).Port) }
	f := func(name string) string { return filepath.Join(sec, name) }

	// mosquitto_sub -h localhost -p 8884 --cafile ca.pem --cert dashboard.pem --key dashboard.key
	dash := &e2e{t: t, srv: srv, udp: srv.udp[0].LocalAddr(), mqtt: "localhost:" + port(srv.mqtt[1]), ctx: ctx}
	lines, _ := dash.mosquittoSub("mqttv5", 1, "sensors/#", "--cafile", f("ca.pem"), "--cert", f("dashboard.pem"), "--key", f("dashboard.key"))

	// snwgw pub -i kitchen-temp -t sensors/kitchen-temp/t -m 21.5 -q 1
	gwPort := fmt.Sprint(srv.udp[0].LocalAddr().(*net.UDPAddr).Port)
	var pubOut syncBuffer
	require.NoError(t, run(ctx, []string{"pub", "-h", "127.0.0.1", "-p", gwPort, "-i", "kitchen-temp",
		"-t", "sensors/kitchen-temp/t", "-m", "21.5", "-q", "1"}, &pubOut, &pubOut), pubOut.String())
	assert.Equal(t, "sensors/kitchen-temp/t 21.5", dash.line(lines))

	// snwgw pub -p 8883 --psk-identity sensor-17 --psk "$(cut -d: -f2 psk)" -i sensor-17 ...
	psk, err := os.ReadFile(f("psk"))
	require.NoError(t, err)
	_, key, _ := strings.Cut(strings.TrimSpace(string(psk)), ":")
	dtlsPort := fmt.Sprint(srv.dtls[0].LocalAddr().(*net.UDPAddr).Port)
	require.NoError(t, run(ctx, []string{"pub", "-h", "127.0.0.1", "-p", dtlsPort, "--psk-identity", "sensor-17", "--psk", key,
		"-i", "sensor-17", "-t", "sensors/sensor-17/t", "-m", "19", "-q", "1"}, &pubOut, &pubOut), pubOut.String())
	assert.Equal(t, "sensors/sensor-17/t 19", dash.line(lines))
	// The allowlist binds sensor-17 to its DTLS identity: on plain UDP
	// the same ClientId is refused.
	err = run(ctx, []string{"pub", "-h", "127.0.0.1", "-p", gwPort, "-i", "sensor-17", "-t", "sensors/sensor-17/t", "-m", "forged"}, &pubOut, &pubOut)
	assert.ErrorContains(t, err, mqttsn.RejectedNotSupported.Error())

	// mosquitto_pub -h localhost -p 8883 --cafile ca.pem -u app -P change-me -t cmd/kitchen-temp/heat -m on
	msgs := make(chan snclient.Message, 1)
	sensor := dash.snClient("kitchen-temp", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { msgs <- m }})
	_, _, err = sensor.Subscribe(ctx, snclient.TopicName("cmd/kitchen-temp/#"), mqttsn.QoS1)
	require.NoError(t, err)
	app := &e2e{t: t, srv: srv, mqtt: "localhost:" + port(srv.mqtt[0]), ctx: ctx}
	app.mosquittoPub("mqttv5", "--cafile", f("ca.pem"), "-u", "app", "-P", "change-me", "-q", "1", "-t", "cmd/kitchen-temp/heat", "-m", "on")
	select {
	case m := <-msgs:
		assert.Equal(t, "on", string(m.Payload))
	case <-ctx.Done():
		t.Fatal("the command never reached the sensor")
	}

	// snwgw pub -i intruder ... is refused: not on the allowlist.
	err = run(ctx, []string{"pub", "-h", "127.0.0.1", "-p", gwPort, "-i", "intruder",
		"-t", "sensors/intruder/t", "-m", "1"}, &pubOut, &pubOut)
	assert.ErrorContains(t, err, "refused by gateway")
	assert.ErrorContains(t, err, mqttsn.RejectedNotSupported.Error())
}
