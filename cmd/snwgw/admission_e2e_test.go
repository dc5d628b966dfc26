package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttsn"
)

// TestE2EAllowlistStopsSpoofedClientID serves with a ClientId allowlist
// that binds "boiler" to 127.0.0.1: the same ClientId from 127.0.0.2 (a
// device elsewhere on the network) is refused with CONNACK 0x03, cannot
// wake the sleeping boiler's session to take its messages, and the real
// boiler carries on; an unlisted ClientId is refused from anywhere.
func TestE2EAllowlistStopsSpoofedClientID(t *testing.T) {
	allow := filepath.Join(t.TempDir(), "clients.allow")
	require.NoError(t, os.WriteFile(allow, []byte("boiler 127.0.0.1/32\nanywhere\n"), 0o600))
	e := startE2E(t, "--config", writeConfig(t, fmt.Sprintf("[auth]\nallowlist_file = %q\n", allow)))
	lines, _ := e.mosquittoSub("mqttv5", 1, "heating/#")

	boiler := dialUDP(t, e.udp)
	boiler.send(&mqttsn.Connect{ClientID: "boiler", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, boiler.next())
	boiler.send(&mqttsn.Register{MsgID: 1, TopicName: "heating/boiler"})
	reg := boiler.next().(*mqttsn.RegAck)
	require.Equal(t, mqttsn.Accepted, reg.ReturnCode)

	spoof := dialUDPFrom(t, e.udp, net.IPv4(127, 0, 0, 2))
	spoof.send(&mqttsn.Connect{ClientID: "boiler", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported}, spoof.next())
	spoof.send(&mqttsn.Connect{ClientID: "intruder", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported}, spoof.next())
	// A listed ClientId without places may connect from anywhere.
	spoof.send(&mqttsn.Connect{ClientID: "anywhere", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, spoof.next())

	// The boiler's session is untouched: its topic id still publishes.
	boiler.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: 2, Data: []byte("61C")})
	assert.Equal(t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: 2}, boiler.next())
	assert.Equal(t, "heating/boiler 61C", e.line(lines))

	// Asleep, with a command waiting: a PINGREQ from elsewhere does not
	// move the session (it is not answered); the boiler's own wakes it and
	// gets the command.
	boiler.send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 3, TopicName: "cmd/boiler"})
	sub := boiler.next().(*mqttsn.SubAck)
	require.Equal(t, mqttsn.Accepted, sub.ReturnCode)
	boiler.send(&mqttsn.Disconnect{Duration: 600, HasDuration: true})
	assert.Equal(t, &mqttsn.Disconnect{}, boiler.next())
	e.mosquittoPub("mqttv5", "-q", "1", "-t", "cmd/boiler", "-m", "off")
	spoof2 := dialUDPFrom(t, e.udp, net.IPv4(127, 0, 0, 2))
	spoof2.send(&mqttsn.PingReq{ClientID: "boiler"})
	boiler.send(&mqttsn.PingReq{ClientID: "boiler"})
	p := boiler.next().(*mqttsn.Publish)
	assert.Equal(t, "off", string(p.Data))
	boiler.send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
	assert.Equal(t, &mqttsn.PingResp{}, boiler.next())

	st := e.srv.gw.Stats()
	assert.Equal(t, uint64(3), st.NotAdmitted, "two CONNECTs and one PINGREQ from 127.0.0.2")
}

// TestE2EPerAddressRateLimits serves with tight limits: the third CONNECT
// from one address within the burst is told to come back later (CONNACK
// 0x01) while another address still connects, and a sender without a
// session is answered only up to its burst.
func TestE2EPerAddressRateLimits(t *testing.T) {
	// Rates of one per 1,000 s: no token comes back while the test runs.
	e := startE2E(t, "--config", writeConfig(t,
		"[auth]\nconnect_rate = 0.001\nconnect_burst = 2\nunknown_rate = 0.001\nunknown_burst = 3\n"))
	c := dialUDP(t, e.udp)
	for range 2 {
		c.send(&mqttsn.Connect{ClientID: "looping", Duration: 60, CleanSession: true})
		assert.Equal(t, &mqttsn.ConnAck{}, c.next())
	}
	c.send(&mqttsn.Connect{ClientID: "looping", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedCongestion}, c.next())
	// The session is still there and bound: PINGREQ is answered.
	c.send(&mqttsn.PingReq{})
	assert.Equal(t, &mqttsn.PingResp{}, c.next())

	other := dialUDP(t, e.udp)
	other.send(&mqttsn.Connect{ClientID: "other", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, other.next(), "the limit is per address")

	// "other" used one of its three unknown-sender datagrams on its
	// CONNECT; a new address gets three SEARCHGW answers, then silence.
	s := dialUDP(t, e.udp)
	for range 3 {
		s.send(&mqttsn.SearchGW{Radius: 1})
		assert.Equal(t, &mqttsn.GWInfo{}, s.next())
	}
	s.send(&mqttsn.SearchGW{Radius: 1})
	s.send(&mqttsn.SearchGW{Radius: 1})
	// The gateway reads its socket in order and answers SEARCHGW as it
	// reads it: once a later sender has its answer, s's two are decided.
	fresh := dialUDP(t, e.udp)
	fresh.send(&mqttsn.SearchGW{Radius: 1})
	assert.Equal(t, &mqttsn.GWInfo{}, fresh.next())
	s.none()
	st := e.srv.gw.Stats()
	assert.Equal(t, uint64(2), st.UnknownLimited)
	assert.Equal(t, uint64(1), st.ConnectLimited)
}

// TestE2EMQTTConnectRate: with mqtt_connect_rate set, mosquitto_pub
// connects as often as the burst allows, and the next connection from the
// same address is closed before anything is read from it.
func TestE2EMQTTConnectRate(t *testing.T) {
	// One per 1,000 s: no token comes back while the test runs.
	e := startE2E(t, "--config", writeConfig(t, "[auth]\nmqtt_connect_rate = 0.001\nmqtt_connect_burst = 2\n"))
	for range 2 {
		e.mosquittoPub("mqttv5", "-t", "a/b", "-m", "x", "-q", "1")
	}
	host, port := e.hostPort()
	out, err := exec.CommandContext(e.ctx, testpeer.Look(t, "mosquitto_pub", "mosquitto-clients"),
		"-h", host, "-p", port, "-V", "mqttv5", "-t", "a/b", "-m", "x", "-q", "1").CombinedOutput()
	assert.Error(t, err, "the third connection was served: %s", out)
}

// BenchmarkAdmission measures the admission hook serve builds from
// [auth] (an allowlist of 10,000 ClientIds and the CONNECT limit) for one
// CONNECT from a new sender each time, the worst case: a flood of spoofed
// addresses that evicts a tracked sender on every call.
func BenchmarkAdmission(b *testing.B) {
	var list strings.Builder
	for i := range 10_000 {
		fmt.Fprintf(&list, "sensor-%d 10.0.%d.0/24\n", i, i%256)
	}
	allow := filepath.Join(b.TempDir(), "clients.allow")
	require.NoError(b, os.WriteFile(allow, []byte(list.String()), 0o600))
	adm, err := AuthConfig{AllowlistFile: allow}.admission()
	require.NoError(b, err)
	from := gateway.Sender{Link: "udp [::]:1883"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		from.Addr = &net.UDPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 40000 + i%20000}
		adm.AdmitConnect("sensor-17", from)
	}
}

// TestE2EAllowlistBindsMQTTClients: a ClientId the allowlist binds to a
// sensor's places is refused to mosquitto_pub connecting from elsewhere,
// so an MQTT client cannot take the sensor's ACL rights (pattern %c); from
// a listed network it connects, and ClientIds the list leaves free stay
// free.
func TestE2EAllowlistBindsMQTTClients(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "clients.allow")
	require.NoError(t, os.WriteFile(allow, []byte(
		"boiler 10.1.2.0/24\nkitchen 0013a20040a1b2c3\nhall identity:hall\nbench 127.0.0.0/8\nanywhere\n"), 0o600))
	acl := filepath.Join(dir, "acl")
	require.NoError(t, os.WriteFile(acl, []byte("pattern readwrite sensors/%c/#\n"), 0o600))
	e := startE2E(t, "--config", writeConfig(t, fmt.Sprintf("[auth]\nallowlist_file = %q\nacl_file = %q\n", allow, acl)))

	host, port := e.hostPort()
	pub := testpeer.Look(t, "mosquitto_pub", "mosquitto-clients")
	for id, want := range map[string]bool{
		"boiler":   false, // bound to 10.1.2.0/24; the test runs from 127.0.0.1
		"kitchen":  false, // an XBee module is never a TCP client
		"hall":     false, // nor is a DTLS identity
		"bench":    true,  // bound to the network it connects from
		"anywhere": true,  // listed without places
		"app-1":    true,  // not listed: not the allowlist's business
	} {
		for _, v := range []string{"mqttv311", "mqttv5"} {
			out, err := exec.CommandContext(e.ctx, pub, "-h", host, "-p", port, "-V", v, "-i", id,
				"-t", "sensors/"+id+"/t", "-m", "1", "-q", "1").CombinedOutput()
			if want {
				assert.NoError(t, err, "%s %s: %s", id, v, out)
				continue
			}
			assert.Error(t, err, "%s %s: mosquitto_pub was accepted: %s", id, v, out)
			assert.Contains(t, strings.ToLower(string(out)), "not authori", "%s %s", id, v)
		}
	}
}
