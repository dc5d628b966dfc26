package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
)

// TestE2EDTLSLink serves a [[dtls]] link with pre-shared keys and an ACL
// with an identity section: a sensor that proves its PSK identity connects
// over DTLS, may publish where its identity is granted, and a mosquitto_sub
// on the broker side receives it; a wrong key gets no association.
func TestE2EDTLSLink(t *testing.T) {
	dir := t.TempDir()
	key := []byte("0123456789abcdef")
	psk := filepath.Join(dir, "psk")
	require.NoError(t, os.WriteFile(psk, []byte("sensor-7:"+hex.EncodeToString(key)+"\n"), 0o600))
	acl := filepath.Join(dir, "acl")
	require.NoError(t, os.WriteFile(acl, []byte("topic read #\nidentity sensor-7\ntopic write secure/#\n"), 0o600))
	cfg := writeConfig(t, fmt.Sprintf("[auth]\nacl_file = %q\n[[dtls]]\naddress = \"127.0.0.1:0\"\npsk_file = %q\n", acl, psk))
	e := startE2E(t, "--config", cfg)
	require.Len(t, e.srv.dtls, 1)
	gw := e.srv.dtls[0].LocalAddr().(*net.UDPAddr)
	lines, _ := e.mosquittoSub("mqttv5", 1, "secure/#")

	dial := func(id string, k []byte) (*dtls.Conn, error) {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { pc.Close() })
		c, err := dtls.ClientWithOptions(pc, gw,
			dtls.WithPSK(func([]byte) ([]byte, error) { return k, nil }),
			dtls.WithPSKIdentityHint([]byte(id)),
			dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8))
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		return c, c.HandshakeContext(ctx)
	}
	c, err := dial("sensor-7", key)
	require.NoError(t, err)
	send := func(p mqttsn.Packet) {
		b, err := mqttsn.Append(nil, p)
		require.NoError(t, err)
		_, err = c.Write(b)
		require.NoError(t, err)
	}
	next := func() mqttsn.Packet {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		require.NoError(t, err)
		p, err := mqttsn.Parse(buf[:n])
		require.NoError(t, err)
		return p
	}
	send(&mqttsn.Connect{ClientID: "dtls-node", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, next())
	send(&mqttsn.Register{MsgID: 1, TopicName: "secure/temp"})
	reg := next().(*mqttsn.RegAck)
	send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: 2, Data: []byte("encrypted")})
	assert.Equal(t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: 2}, next())
	assert.Equal(t, "secure/temp encrypted", e.line(lines))

	// The identity, not the ClientId, is what the ACL granted: elsewhere
	// the same sensor is refused.
	send(&mqttsn.Register{MsgID: 3, TopicName: "other/temp"})
	reg = next().(*mqttsn.RegAck)
	send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: 4, Data: []byte("x")})
	assert.Equal(t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: 4, ReturnCode: mqttsn.RejectedNotSupported}, next())

	// A wrong key never gets an association.
	_, err = dial("sensor-7", []byte("fedcba9876543210"))
	assert.Error(t, err)
}
