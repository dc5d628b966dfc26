//go:build unix

package main

import (
	"net"
	"regexp"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
)

// TestServeSurvivesSIGHUP runs the built binary, as an init system would,
// and sends it SIGHUP: it must log it and keep serving, and still stop
// cleanly, with status 0, on SIGTERM.
func TestServeSurvivesSIGHUP(t *testing.T) {
	srv := startChild(t, snwgwBinary(t), "--udp", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	m := regexp.MustCompile(`link="udp ([^"]+)"`).FindStringSubmatch(srv.waitLog(t, "mqtt-sn listening"))
	require.NotNil(t, m)
	gw, err := net.ResolveUDPAddr("udp", m[1])
	require.NoError(t, err)

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	srv.waitLog(t, "SIGHUP received")
	c := dialUDP(t, gw)
	c.send(&mqttsn.Connect{ClientID: "after-hup", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, c.next())

	assert.NoError(t, srv.kill(syscall.SIGTERM), "exit status after SIGTERM; log:\n%s", srv.logs)
	assert.Contains(t, srv.logs.String(), "snwgw stopped")
}
