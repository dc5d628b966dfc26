package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// TestE2EReservedClientIDs: the client ids of the gateway's own broker
// sessions (the QoS -1 publisher, a bridge) are refused to mosquitto_pub
// with "identifier rejected", so one CONNECT cannot take them over, and
// QoS -1 still works afterwards.
func TestE2EReservedClientIDs(t *testing.T) {
	// An upstream that never answers: the bridge's local session exists
	// all the same.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	upstream := closed.Addr().String()
	require.NoError(t, closed.Close())
	cfg := writeConfig(t, "[gateway.predefined]\n5 = \"e2e/pre/five\"\n\n"+
		"[[bridge]]\nname = \"up\"\nurl = \"mqtt://"+upstream+"\"\n[[bridge.rule]]\nlocal_filter = \"never/#\"\n")
	e := startE2E(t, "--config", cfg)
	lines, _ := e.mosquittoSub("mqttv5", 0, "e2e/#")

	host, port := e.hostPort()
	pub := testpeer.Look(t, "mosquitto_pub", "mosquitto-clients")
	for _, id := range []string{"snwgw-gw0-qos-1", "snwgw-bridge-up"} {
		for _, v := range []string{"mqttv311", "mqttv5"} {
			out, err := exec.CommandContext(e.ctx, pub, "-h", host, "-p", port, "-V", v, "-i", id,
				"-t", "e2e/x", "-m", "taken", "-q", "1").CombinedOutput()
			assert.Error(t, err, "%s %s: mosquitto_pub was accepted: %s", id, v, out)
			// 3.1.1 return code 2, "identifier rejected"; v5 reason 0x85.
			lower := strings.ToLower(string(out))
			assert.True(t, strings.Contains(lower, "identifier rejected") || strings.Contains(lower, "client identifier not valid"),
				"%s %s: %s", id, v, out)
		}
	}

	// An MQTT-SN client cannot have them either, and is told so for good
	// (0x03), not to come back later (0x01).
	sensor := dialUDP(t, e.udp)
	sensor.send(&mqttsn.Connect{ClientID: "snwgw-gw0-qos-1", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported}, sensor.next())

	// The QoS -1 session is still the gateway's.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	anon, err := snclient.Dial(conn, e.udp, snclient.Options{})
	require.NoError(t, err)
	defer anon.Close()
	require.NoError(t, anon.Publish(e.ctx, snclient.Message{Topic: snclient.Predefined(5), Payload: []byte("still"), QoS: mqttsn.QoSMinus1}))
	assert.Equal(t, "e2e/pre/five still", e.line(lines))
}
