package main

import (
	"encoding/binary"
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

	"github.com/snwgw/snwgw/internal/testpeer/openssl"
	"github.com/snwgw/snwgw/internal/testpki"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/transport"
)

// End-to-end tests of the [[dtls]] link with openssl s_client, a DTLS
// stack independent of the gateway's, as the sensor: `snwgw serve` with a
// config written by the test, s_client carrying real MQTT-SN datagrams, and
// mosquitto_sub on the broker side.

// CONNACK accepted, as the gateway encrypts it (MQTT-SN 1.2 §5.4.5):
// Length 3, MsgType 0x05, ReturnCode 0x00.
var connackAccepted = []byte{0x03, 0x05, 0x00}

var dtlsKey = []byte("0123456789abcdef")

// pskFile writes a PSK file ("identity:hexkey" lines) for identity.
func pskFile(t *testing.T, identity string, key []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "psk")
	require.NoError(t, os.WriteFile(p, []byte(identity+":"+hex.EncodeToString(key)+"\n"), 0o600))
	return p
}

// startDTLSE2E serves one [[dtls]] link whose table (without its header)
// is link, and returns the gateway with the link.
func startDTLSE2E(t *testing.T, link string) (*e2e, *transport.DTLSConn) {
	t.Helper()
	cfg := writeConfig(t, "[[dtls]]\naddress = \"127.0.0.1:0\"\n"+link)
	e := startE2E(t, "--config", cfg)
	require.Len(t, e.srv.dtls, 1)
	return e, e.srv.dtls[0]
}

// snOverSClient speaks MQTT-SN through a running s_client -quiet: each
// packet is one write to its stdin, hence one DTLS record; the gateway's
// packets come out of its stdout back to back, delimited by their Length.
type snOverSClient struct {
	t *testing.T
	s *openssl.Client
}

func (c snOverSClient) send(p mqttsn.Packet) {
	c.t.Helper()
	b, err := mqttsn.Append(nil, p)
	require.NoError(c.t, err)
	c.s.Write(c.t, b)
}

// nextRaw reads one packet's octets: Length (1), or 0x01 and Length (2)
// (MQTT-SN 1.2 §5.2.1), then the rest of the packet.
func (c snOverSClient) nextRaw() []byte {
	c.t.Helper()
	b := c.s.ReadFull(c.t, 1)
	n := int(b[0])
	if n == 1 {
		b = append(b, c.s.ReadFull(c.t, 2)...)
		n = int(binary.BigEndian.Uint16(b[1:]))
	}
	require.GreaterOrEqual(c.t, n, len(b)+1, "MQTT-SN length %d on s_client's stdout", n)
	return append(b, c.s.ReadFull(c.t, n-len(b))...)
}

func (c snOverSClient) next() mqttsn.Packet {
	c.t.Helper()
	b := c.nextRaw()
	p, err := mqttsn.Parse(b)
	require.NoError(c.t, err, "% x", b)
	return p
}

// connect sends CONNECT and checks the CONNACK octets as they came out of
// the association.
func (c snOverSClient) connect(clientID string) {
	c.t.Helper()
	c.send(&mqttsn.Connect{ClientID: clientID, Duration: 60, CleanSession: true})
	require.Equal(c.t, connackAccepted, c.nextRaw(), "CONNACK\n%s", c.s)
}

// publish registers topic and publishes payload at QoS 1, checking REGACK
// and PUBACK.
func (c snOverSClient) publish(msgID uint16, topic, payload string) {
	c.t.Helper()
	c.send(&mqttsn.Register{MsgID: msgID, TopicName: topic})
	reg, ok := c.next().(*mqttsn.RegAck)
	require.True(c.t, ok, "REGACK expected")
	require.Equal(c.t, mqttsn.ReturnCode(0), reg.ReturnCode)
	require.Equal(c.t, msgID, reg.MsgID)
	c.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: msgID + 1, Data: []byte(payload)})
	assert.Equal(c.t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: msgID + 1}, c.next())
}

// sClientPSK starts s_client -quiet towards the link with a pre-shared key.
func sClientPSK(t *testing.T, link *transport.DTLSConn, identity string, key []byte, extra ...string) snOverSClient {
	t.Helper()
	args := append([]string{"-dtls1_2", "-quiet", "-connect", link.LocalAddr().String(),
		"-psk_identity", identity, "-psk", hex.EncodeToString(key)}, extra...)
	return snOverSClient{t: t, s: openssl.Start(t, args...)}
}

// TestE2EDTLSOpenSSLPSK: s_client with a pre-shared key connects through
// serve, registers, publishes at QoS 1, and mosquitto_sub gets the message.
// Both openssl's default suite and the one of constrained devices (RFC 7925
// §4.2) are offered in turn.
func TestE2EDTLSOpenSSLPSK(t *testing.T) {
	e, link := startDTLSE2E(t, fmt.Sprintf("psk_file = %q\n", pskFile(t, "sensor-9", dtlsKey)))
	lines, _ := e.mosquittoSub("mqttv5", 1, "dtls/#")
	for i, cipher := range []string{"", "PSK-AES128-CCM8"} {
		var extra []string
		if cipher != "" {
			extra = []string{"-cipher", cipher}
		}
		c := sClientPSK(t, link, "sensor-9", dtlsKey, extra...)
		c.connect("openssl-psk-" + strconv.Itoa(i))
		c.publish(1, "dtls/openssl", "over-openssl-"+strconv.Itoa(i))
		assert.Equal(t, "dtls/openssl over-openssl-"+strconv.Itoa(i), e.line(lines))
		c.s.Kill(t)
	}
	st := link.Stats()
	assert.Equal(t, uint64(2), st.Handshakes)
	assert.Equal(t, uint64(0), st.HandshakeFailures)
	// The link counts a packet just after handing it on, so the last
	// PUBLISH and PUBACK may be counted a moment after the exchange.
	assert.Eventually(t, func() bool {
		st := link.Stats()
		return st.PacketsIn >= 6 && st.PacketsOut >= 6
	}, time.Minute, 5*time.Millisecond)
	st = link.Stats()
	assert.Equal(t, uint64(6), st.PacketsIn, "CONNECT, REGISTER, PUBLISH twice")
	assert.Equal(t, uint64(6), st.PacketsOut, "CONNACK, REGACK, PUBACK twice")
}

// TestE2EDTLSOpenSSLCertificates: a link with a server certificate and a
// client CA admits s_client with a certificate from that CA, and refuses
// an expired one and one from another CA.
func TestE2EDTLSOpenSSLCertificates(t *testing.T) {
	p := testpki.New(t, "site")
	other := testpki.New(t, "elsewhere")
	_, link := startDTLSE2E(t, fmt.Sprintf("cert_file = %q\nkey_file = %q\nclient_ca_file = %q\n",
		p.ServerCertFile, p.ServerKeyFile, p.CAFile))
	sClient := func(t *testing.T, certFile, keyFile string) snOverSClient {
		t.Helper()
		// -verify_return_error: s_client also checks the gateway's
		// certificate against the CA.
		return snOverSClient{t: t, s: openssl.Start(t, "-dtls1_2", "-quiet", "-connect", link.LocalAddr().String(),
			"-CAfile", p.CAFile, "-verify_return_error", "-cert", certFile, "-key", keyFile)}
	}

	goodCert, goodKey := p.Issue(t, "sensor-c", time.Now().Add(time.Hour), testpki.Client)
	good := sClient(t, goodCert, goodKey)
	good.connect("openssl-cert")
	require.Equal(t, uint64(1), link.Stats().Handshakes)

	expiredCert, expiredKey := p.Issue(t, "expired", time.Now().Add(-time.Hour), testpki.Client)
	strangerCert, strangerKey := other.Issue(t, "stranger", time.Now().Add(time.Hour), testpki.Client)
	for i, tc := range []struct{ name, cert, key string }{
		{"expired", expiredCert, expiredKey},
		{"untrusted", strangerCert, strangerKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sClient(t, tc.cert, tc.key)
			c.send(&mqttsn.Connect{ClientID: "openssl-" + tc.name, Duration: 60, CleanSession: true})
			// The gateway's fatal alert ends s_client.
			require.Error(t, c.s.Wait(t), "s_client must fail\n%s", c.s)
			assert.Empty(t, c.s.Stdout(), "no CONNACK")
			// SSL alert number 42, bad_certificate (RFC 5246 §7.2.2).
			assert.Contains(t, c.s.Stderr(), "alert bad certificate", "refused by the gateway, not by s_client itself")
			require.Eventually(t, func() bool { return link.Stats().HandshakeFailures == uint64(i+1) }, time.Minute,
				5*time.Millisecond, "the gateway counts the refused handshake")
		})
	}
	st := link.Stats()
	assert.Equal(t, uint64(1), st.Handshakes)
	assert.Equal(t, 1, st.Associations)
	assert.LessOrEqual(t, st.PacketsIn, uint64(1), "nothing from the refused sensors")
}

// TestE2EDTLSOpenSSLWrongPSK: s_client with a wrong key, or an identity
// the gateway does not know, gets no association and no CONNACK; the
// gateway serves a correct client afterwards.
func TestE2EDTLSOpenSSLWrongPSK(t *testing.T) {
	// A wrong key shows only when the client's encrypted Finished cannot be
	// read, so that handshake fails at handshake_timeout; a short one keeps
	// the test quick, and is still ample for a loopback handshake.
	_, link := startDTLSE2E(t, fmt.Sprintf("psk_file = %q\nhandshake_timeout = \"3s\"\n", pskFile(t, "sensor-9", dtlsKey)))
	for i, tc := range []struct {
		name, identity string
		key            []byte
	}{
		{"wrong key", "sensor-9", []byte("fedcba9876543210")},
		{"unknown identity", "intruder", dtlsKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sClientPSK(t, link, tc.identity, tc.key)
			c.send(&mqttsn.Connect{ClientID: "intruder", Duration: 60, CleanSession: true})
			require.Eventually(t, func() bool { return link.Stats().HandshakeFailures == uint64(i+1) }, time.Minute,
				5*time.Millisecond, "the gateway counts the failed handshake")
			// With a wrong key s_client cannot read the gateway's alert and
			// would retransmit its last flight for minutes; stop it.
			c.s.Kill(t)
			assert.Empty(t, c.s.Stdout(), "no CONNACK")
		})
	}
	st := link.Stats()
	assert.Equal(t, uint64(0), st.Handshakes)
	assert.Equal(t, uint64(0), st.PacketsIn, "nothing reached the gateway")

	c := sClientPSK(t, link, "sensor-9", dtlsKey)
	c.connect("openssl-after")
	st = link.Stats()
	assert.Equal(t, uint64(1), st.Handshakes)
	assert.Equal(t, uint64(2), st.HandshakeFailures)
}

// TestE2EDTLSHandshakeFlood floods the link with ClientHellos (openssl's
// own, sent from many source ports). Those that never answer their
// HelloVerifyRequest, as spoofed ones cannot, take no pending slot: a
// legitimate s_client from the very same address connects and publishes.
// Those that do answer take slots up to max_pending_per_ip and
// max_pending_handshakes; the rest are dropped and counted, and the
// established association is untouched.
//
// The link reads datagrams in order on one socket, so once the legitimate
// client has an answer to something it sent after a flood, the link has
// judged the whole flood, and its counters can be read.
func TestE2EDTLSHandshakeFlood(t *testing.T) {
	const (
		perFlood   = 24
		maxPending = 8
		maxPerIP   = 4
	)
	// The flood's handshakes must still be pending when the counters are
	// read: a handshake timeout longer than the test keeps them so.
	e, link := startDTLSE2E(t, fmt.Sprintf("psk_file = %q\nhandshake_timeout = \"5m\"\nmax_pending_handshakes = %d\nmax_pending_per_ip = %d\n",
		pskFile(t, "sensor-9", dtlsKey), maxPending, maxPerIP))
	lines, _ := e.mosquittoSub("mqttv5", 1, "dtls/#")
	hello := openssl.ClientHello(t, "-psk_identity", "sensor-9", "-psk", hex.EncodeToString(dtlsKey))
	dst := link.LocalAddr().(*net.UDPAddr)

	spoofed := openssl.Flood(t, dst, "127.0.0.1", perFlood, hello)
	openssl.ExpectHelloVerify(t, spoofed)
	c := sClientPSK(t, link, "sensor-9", dtlsKey)
	c.connect("openssl-under-flood")
	c.publish(1, "dtls/flood", "first")
	assert.Equal(t, "dtls/flood first", e.line(lines))
	st := link.Stats()
	assert.Equal(t, 0, st.Pending, "unanswered ClientHellos hold no slot: %+v", st)
	assert.Equal(t, perFlood, st.Unverified, "%+v", st)
	assert.Equal(t, uint64(0), st.HandshakesDropped, "%+v", st)
	assert.Equal(t, uint64(1), st.Handshakes, "%+v", st)

	// Two addresses whose ClientHellos answer: each takes its share of
	// the slots and no more, and everything beyond is dropped.
	for _, ip := range []string{"127.0.0.3", "127.0.0.4"} {
		openssl.AnswerHelloVerify(t, openssl.Flood(t, dst, ip, perFlood, hello), hello)
	}
	c.publish(3, "dtls/flood", "second")
	assert.Equal(t, "dtls/flood second", e.line(lines))
	st = link.Stats()
	assert.Equal(t, maxPending, st.Pending, "pending handshakes bounded in total and per IP: %+v", st)
	assert.Equal(t, uint64(2*perFlood-maxPending), st.HandshakesDropped, "%+v", st)
	assert.Equal(t, uint64(1), st.Handshakes, "%+v", st)
	assert.Equal(t, 1, st.Associations, "%+v", st)
	assert.Equal(t, uint64(0), st.HandshakeFailures, "the flood is still pending: %+v", st)
}
