package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpki"
)

// startDTLSGateway serves a [[dtls]] link whose table (without its
// header) is link, and returns the gateway and -h/-p for the link.
func startDTLSGateway(t *testing.T, link string) (*e2e, []string) {
	t.Helper()
	e := startE2E(t, "--config", writeConfig(t, "[[dtls]]\naddress = \"127.0.0.1:0\"\n"+link))
	require.Len(t, e.srv.dtls, 1)
	a := e.srv.dtls[0].LocalAddr().(*net.UDPAddr)
	return e, []string{"-h", a.IP.String(), "-p", strconv.Itoa(a.Port)}
}

// pskLink is the [[dtls]] table of a link that knows one PSK identity.
func pskLink(t *testing.T, identity string, key []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "psk")
	require.NoError(t, os.WriteFile(p, []byte(identity+":"+hex.EncodeToString(key)+"\n"), 0o600))
	return fmt.Sprintf("psk_file = %q\n", p)
}

// TestPubSubOverDTLSWithPSK: pub and sub with --psk reach the broker
// through a [[dtls]] link, in both directions, and -d still shows the
// MQTT-SN conversation.
func TestPubSubOverDTLSWithPSK(t *testing.T) {
	key := []byte("0123456789abcdef")
	e, gw := startDTLSGateway(t, pskLink(t, "sensor-7", key))
	link := append(gw, "--psk", hex.EncodeToString(key), "--psk-identity", "sensor-7")
	lines, _ := e.mosquittoSub("mqttv311", 1, "dtls/#")

	_, log, err := pub(t, e.ctx, append(link, "-t", "dtls/up", "-m", "sealed", "-q", "1", "-d"), "")
	require.NoError(t, err, log)
	for _, want := range []string{"-- DTLS handshake with " + gw[1] + ":" + gw[3], "-> CONNECT", "<- CONNACK", "-> PUBLISH", "<- PUBACK", "-> DISCONNECT"} {
		assert.Contains(t, log, want)
	}
	assert.Equal(t, "dtls/up sealed", e.line(lines))

	// The same key in base64, as a psk_file may write it.
	_, log, err = pub(t, e.ctx, append(gw, "--psk", "base64:MDEyMzQ1Njc4OWFiY2RlZg==", "--psk-identity", "sensor-7", "-t", "dtls/up", "-m", "again", "-q", "1"), "")
	require.NoError(t, err, log)
	assert.Equal(t, "dtls/up again", e.line(lines))

	out, _, done := startSub(t, append(link, "-t", "dtls/down", "-C", "1", "-v", "-q", "1")...)
	e.mosquittoPub("mqttv311", "-t", "dtls/down", "-m", "from mqtt", "-q", "1")
	require.NoError(t, waitDone(t, done))
	assert.Equal(t, "dtls/down from mqtt\n", out.String())
}

// TestPubSubOverDTLSWithCertificates: with --cafile, --cert and --key the
// tools verify the gateway and prove their own identity. The gateway's ACL
// lets only identity sensor-9 write below secure/up, so the publish is
// accepted only because the gateway took the certificate's name.
func TestPubSubOverDTLSWithCertificates(t *testing.T) {
	pki := testpki.New(t, "site")
	cert, key := pki.Issue(t, "sensor-9", time.Now().Add(time.Hour), testpki.Client)
	acl := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(acl, []byte("topic read #\ntopic write secure/cmd\nidentity sensor-9\ntopic read secure/cmd\ntopic write secure/up/#\n"), 0o600))
	e, gw := startDTLSGateway(t, fmt.Sprintf("cert_file = %q\nkey_file = %q\nclient_ca_file = %q\n[auth]\nacl_file = %q\n",
		pki.ServerCertFile, pki.ServerKeyFile, pki.CAFile, acl))
	link := append(gw, "--cafile", pki.CAFile, "--cert", cert, "--key", key)
	lines, _ := e.mosquittoSub("mqttv311", 1, "secure/up/#")

	_, log, err := pub(t, e.ctx, append(link, "-t", "secure/up/door", "-m", "locked", "-q", "1", "-d"), "")
	require.NoError(t, err, log)
	assert.Contains(t, log, "<- PUBACK")
	assert.Equal(t, "secure/up/door locked", e.line(lines))

	out, _, done := startSub(t, append(link, "-t", "secure/cmd", "-C", "1", "-q", "1")...)
	e.mosquittoPub("mqttv311", "-t", "secure/cmd", "-m", "open", "-q", "1")
	require.NoError(t, waitDone(t, done))
	assert.Equal(t, "open\n", out.String())

	// The server certificate names 127.0.0.1, not localhost: refused
	// unless --insecure waives the name check (and only that check).
	port := gw[3]
	byName := []string{"-h", "localhost", "-p", port, "--cafile", pki.CAFile, "--cert", cert, "--key", key, "-t", "secure/up/door", "-m", "x", "-q", "1"}
	_, _, err = pub(t, e.ctx, byName, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not for -h; --insecure skips this check")
	_, log, err = pub(t, e.ctx, append(byName, "--insecure"), "")
	require.NoError(t, err, log)
	assert.Equal(t, "secure/up/door x", e.line(lines))

	other := testpki.New(t, "elsewhere")
	_, _, err = pub(t, e.ctx, append(gw, "--cafile", other.CAFile, "--cert", cert, "--key", key, "-t", "secure/door", "-m", "x"), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DTLS handshake with 127.0.0.1:"+port+" failed")
	assert.Contains(t, err.Error(), "not signed by a CA in --cafile")
}

// TestPubOverDTLSHandshakeFails: a wrong key, or no client certificate
// where the gateway requires one, ends pub with the handshake error and
// its hint, not a usage error.
func TestPubOverDTLSHandshakeFails(t *testing.T) {
	pki := testpki.New(t, "site")
	key := []byte("0123456789abcdef")
	e, gw := startDTLSGateway(t, pskLink(t, "sensor-7", key)+fmt.Sprintf("cert_file = %q\nkey_file = %q\nclient_ca_file = %q\n",
		pki.ServerCertFile, pki.ServerKeyFile, pki.CAFile))
	at := "DTLS handshake with 127.0.0.1:" + gw[3] + " failed"

	// The gateway drops a handshake with a wrong key without a word: it
	// fails when the retries are spent.
	_, _, err := pub(t, e.ctx, append(gw, "--psk", hex.EncodeToString([]byte("fedcba9876543210")), "--psk-identity", "sensor-7",
		"--retry", "200ms", "--retries", "1", "-t", "x", "-m", "y", "-q", "1"), "")
	require.Error(t, err)
	assert.NotErrorAs(t, err, new(usageError))
	assert.Contains(t, err.Error(), at)
	assert.Contains(t, err.Error(), "--psk-identity and --psk match the gateway's psk_file")

	_, _, err = pub(t, e.ctx, append(gw, "--cafile", pki.CAFile, "-t", "x", "-m", "y", "-q", "1"), "")
	require.Error(t, err)
	assert.NotErrorAs(t, err, new(usageError))
	assert.Contains(t, err.Error(), at)
	assert.Contains(t, err.Error(), "give --cert and --key")

	// No gateway at all: the port's "unreachable" shows as it does without
	// DTLS.
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	closed := strconv.Itoa(l.LocalAddr().(*net.UDPAddr).Port)
	require.NoError(t, l.Close())
	_, _, err = pub(t, e.ctx, []string{"-h", "127.0.0.1", "-p", closed, "--psk", hex.EncodeToString(key), "--psk-identity", "sensor-7", "-t", "x", "-m", "y"}, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect: gateway 127.0.0.1:"+closed+" unreachable")
}

func TestPubSubDTLSUsage(t *testing.T) {
	key := hex.EncodeToString([]byte("0123456789abcdef"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--psk", key}, "--psk and --psk-identity go together"},
		{[]string{"--psk-identity", "s"}, "--psk and --psk-identity go together"},
		{[]string{"--cert", "c.pem"}, "--cert and --key go together"},
		{[]string{"--key", "c.key", "--cafile", "ca.pem"}, "--cert and --key go together"},
		{[]string{"--psk", key, "--psk-identity", "s", "--cafile", "ca.pem"}, "not both"},
		{[]string{"--psk", key, "--psk-identity", "s", "--serial", "/dev/null"}, "not --serial"},
		{[]string{"--insecure", "--serial", "/dev/null"}, "not --serial"},
		{[]string{"--psk", "zz", "--psk-identity", "s"}, "--psk: key is not hex"},
		{[]string{"--psk", "0011", "--psk-identity", "s"}, "want 16 to 64"},
		{[]string{"--psk", key, "--psk-identity", "a:b"}, "colon"},
		{[]string{"--psk", key, "--psk-identity", "a b"}, "space"},
	} {
		_, _, err := pub(t, t.Context(), append(tc.args, "-t", "x", "-m", "y"), "")
		require.ErrorAs(t, err, new(usageError), "pub %q", tc.args)
		assert.Contains(t, err.Error(), tc.want, "pub %q", tc.args)
		err = runSub(t.Context(), append(tc.args, "-t", "x"), nil, &bytes.Buffer{}, &bytes.Buffer{})
		require.ErrorAs(t, err, new(usageError), "sub %q", tc.args)
		assert.Contains(t, err.Error(), tc.want, "sub %q", tc.args)
	}

	// Unreadable files are errors of the run, named by their flag.
	_, _, err := pub(t, t.Context(), []string{"--cafile", filepath.Join(t.TempDir(), "none.pem"), "-t", "x", "-m", "y"}, "")
	require.Error(t, err)
	assert.NotErrorAs(t, err, new(usageError))
	assert.Contains(t, err.Error(), "--cafile")
}
