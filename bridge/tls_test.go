package bridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pki is a CA with a server and a client certificate, as PEM files.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
}

// newPKI writes a CA, a server certificate for serverName and a client
// certificate signed by it into dir.
func newPKI(t *testing.T, dir, serverName string) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "snwgw test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			DNSNames:     dns,
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return path
	}
	writeKey := func(name string, key *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		return write(name, "PRIVATE KEY", der)
	}
	p := pki{caFile: write("ca.pem", "CERTIFICATE", caDER)}
	der, key := leaf(2, serverName, x509.ExtKeyUsageServerAuth, []string{serverName})
	p.serverCert, p.serverKey = write("server.pem", "CERTIFICATE", der), writeKey("server.key", key)
	der, key = leaf(3, "gateway", x509.ExtKeyUsageClientAuth, nil)
	p.clientCert, p.clientKey = write("client.pem", "CERTIFICATE", der), writeKey("client.key", key)
	return p
}

// TestTLS connects over TLS with a CA generated here, a server name that
// differs from the dialled address, and client-certificate authentication.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "broker.test")
	tlsPort := freePort(t)
	m := startMosquitto(t,
		fmt.Sprintf("listener %d 127.0.0.1", tlsPort),
		"cafile "+p.caFile,
		"certfile "+p.serverCert,
		"keyfile "+p.serverKey,
		"require_certificate true",
	)
	m.waitListening(tlsPort)
	url := fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort)
	rules := []Rule{{LocalFilter: "secure/#", Direction: DirectionOut, QoS: 1}}

	b := newBroker(t)
	br := startBridge(t, b, Options{
		Name: "tls", URL: url, Rules: rules,
		TLS: TLSOptions{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "broker.test"},
	})
	waitConnected(t, br)
	up := newObserver(t, m.addr(), "secure/#") // the plain listener
	newLocalClient(t, b, "pub").publish(t, "secure/x", "over tls", 1, false)
	assert.Equal(t, "over tls", up.next(t, topicIs("secure/x")).Payload)

	t.Run("no client certificate", func(t *testing.T) {
		br := startBridge(t, newBroker(t), Options{Name: "nocert", URL: url, ClientID: "gw-nocert", Rules: rules,
			TLS: TLSOptions{CAFile: p.caFile, ServerName: "broker.test"}})
		require.Eventually(t, func() bool { return br.Stats().ConnectFailures >= 2 }, waitTime, 5*time.Millisecond)
		assert.Zero(t, br.Stats().Connects)
	})
	t.Run("unknown CA", func(t *testing.T) {
		other := newPKI(t, t.TempDir(), "broker.test")
		br := startBridge(t, newBroker(t), Options{Name: "badca", URL: url, ClientID: "gw-badca", Rules: rules,
			TLS: TLSOptions{CAFile: other.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "broker.test"}})
		require.Eventually(t, func() bool { return br.Stats().ConnectFailures >= 2 }, waitTime, 5*time.Millisecond)
		assert.Zero(t, br.Stats().Connects)
	})
	t.Run("wrong server name", func(t *testing.T) {
		br := startBridge(t, newBroker(t), Options{Name: "badname", URL: url, ClientID: "gw-badname", Rules: rules,
			TLS: TLSOptions{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}})
		require.Eventually(t, func() bool { return br.Stats().ConnectFailures >= 2 }, waitTime, 5*time.Millisecond)
		assert.Zero(t, br.Stats().Connects)
	})
}

// TestWebSockets bridges over ws:// and wss:// (mosquitto's websockets
// listeners), with the same TLS settings as mqtts://.
func TestWebSockets(t *testing.T) {
	p := newPKI(t, t.TempDir(), "broker.test")
	wsPort, wssPort := freePort(t), freePort(t)
	m := startMosquitto(t,
		fmt.Sprintf("listener %d 127.0.0.1", wsPort),
		"protocol websockets",
		fmt.Sprintf("listener %d 127.0.0.1", wssPort),
		"protocol websockets",
		"cafile "+p.caFile,
		"certfile "+p.serverCert,
		"keyfile "+p.serverKey,
	)
	m.waitListening(wsPort)
	m.waitListening(wssPort)
	up := newObserver(t, m.addr(), "web/#")
	for _, tt := range []struct {
		name, url string
		tls       TLSOptions
	}{
		{"ws", fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort), TLSOptions{}},
		{"wss", fmt.Sprintf("wss://127.0.0.1:%d/mqtt", wssPort), TLSOptions{CAFile: p.caFile, ServerName: "broker.test"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t)
			br := startBridge(t, b, Options{Name: tt.name, URL: tt.url, TLS: tt.tls,
				Rules: []Rule{{LocalFilter: "web/#", Direction: DirectionOut, QoS: 1}}})
			waitConnected(t, br)
			newLocalClient(t, b, "pub").publish(t, "web/"+tt.name, "over "+tt.name, 1, false)
			assert.Equal(t, "over "+tt.name, up.next(t, topicIs("web/"+tt.name)).Payload)
		})
	}
}
