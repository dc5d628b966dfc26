//go:build unix

package main

import (
	"bufio"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
)

// TestServeSurvivesSIGHUP runs the built binary, as an init system would,
// and sends it SIGHUP: it must log it and keep serving, and still stop
// cleanly, with status 0, on SIGTERM.
func TestServeSurvivesSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "snwgw")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(bin, "serve", "--udp", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	var log strings.Builder // written by the scanner until lines is closed
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			log.WriteString(s.Text() + "\n")
			lines <- s.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	// waitFor returns the first line that contains want.
	waitFor := func(want string) string {
		t.Helper()
		timeout := time.After(30 * time.Second) // a hung binary only
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "snwgw exited before logging %q", want)
				if strings.Contains(l, want) {
					return l
				}
			case <-timeout:
				t.Fatalf("snwgw logged no %q", want)
			}
		}
	}
	m := regexp.MustCompile(`link="udp ([^"]+)"`).FindStringSubmatch(waitFor("mqtt-sn listening"))
	require.NotNil(t, m)
	gw, err := net.ResolveUDPAddr("udp", m[1])
	require.NoError(t, err)

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitFor("SIGHUP received")
	c := dialUDP(t, gw)
	c.send(&mqttsn.Connect{ClientID: "after-hup", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, c.next())

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitFor("snwgw stopped")
	for range lines {
	}
	assert.NoError(t, <-exited, "exit status after SIGTERM; log:\n%s", log.String())
}
