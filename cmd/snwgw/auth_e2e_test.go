package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// TestE2EAuthPasswordsAndACL turns on [auth] with a password file made by
// snwgw passwd and a Mosquitto-syntax ACL, and checks both kinds of client:
// mosquitto_sub/mosquitto_pub need the right credentials, and MQTT-SN
// sensors (which carry none) are admitted but held to the ACL.
func TestE2EAuthPasswordsAndACL(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	var out bytes.Buffer
	require.NoError(t, runPasswd([]string{"-c", "-b", passwd, "dashboard", "s3cret"}, nil, &out, &out), out.String())
	acl := filepath.Join(dir, "acl")
	require.NoError(t, os.WriteFile(acl, []byte(
		"# every MQTT-SN sensor writes only below its own ClientId\n"+
			"pattern write sensors/%c/#\n"+
			"user dashboard\n"+
			"topic read sensors/#\n"), 0o600))
	cfg := writeConfig(t, fmt.Sprintf("[auth]\npassword_file = %q\nacl_file = %q\n", passwd, acl))
	e := startE2E(t, "--config", cfg)

	lines, _ := e.mosquittoSub("mqttv5", 1, "sensors/#", "-u", "dashboard", "-P", "s3cret")
	sensor := e.snClient("sensor-1", snclient.Options{CleanSession: true})
	require.NoError(t, sensor.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName("sensors/sensor-1/temp"), Payload: []byte("21"), QoS: mqttsn.QoS1}))
	assert.Equal(t, "sensors/sensor-1/temp 21", e.line(lines))

	// Outside its subtree: refused with return code 0x03, never delivered.
	err := sensor.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName("sensors/sensor-2/temp"), Payload: []byte("x"), QoS: mqttsn.QoS1})
	assert.ErrorIs(t, err, mqttsn.RejectedNotSupported)
	_, _, err = sensor.Subscribe(e.ctx, snclient.TopicName("sensors/#"), mqttsn.QoS1)
	assert.ErrorIs(t, err, mqttsn.RejectedNotSupported, "no read rule covers the sensor")

	// MQTT clients: wrong password and no user name are refused.
	host, port := e.hostPort()
	pub := testpeer.Look(t, "mosquitto_pub", "mosquitto-clients")
	for name, creds := range map[string][]string{
		"wrong password": {"-u", "dashboard", "-P", "wrong"},
		"unknown user":   {"-u", "mallory", "-P", "s3cret"},
		"anonymous":      nil,
	} {
		args := append([]string{"-h", host, "-p", port, "-V", "mqttv311", "-t", "sensors/x", "-m", "x", "-q", "1"}, creds...)
		outp, err := exec.CommandContext(e.ctx, pub, args...).CombinedOutput()
		assert.Error(t, err, "%s: mosquitto_pub was accepted: %s", name, outp)
	}
	// The refused attempts published nothing, and the next sensor reading
	// is still the next line.
	require.NoError(t, sensor.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName("sensors/sensor-1/temp"), Payload: []byte("22"), QoS: mqttsn.QoS1}))
	assert.Equal(t, "sensors/sensor-1/temp 22", e.line(lines))
}
