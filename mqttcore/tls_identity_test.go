package mqttcore_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// recordingAuth allows everything and records what the engine asked.
type recordingAuth struct {
	mu        sync.Mutex
	connects  []mqttcore.ClientInfo
	passwords [][]byte
	publishes []mqttcore.ClientInfo
}

func (a *recordingAuth) AllowConnect(c mqttcore.ClientInfo, password []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.connects = append(a.connects, c)
	a.passwords = append(a.passwords, password)
	return true
}

func (a *recordingAuth) AllowPublish(c mqttcore.ClientInfo, _ string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.publishes = append(a.publishes, c)
	return true
}

func (a *recordingAuth) AllowSubscribe(mqttcore.ClientInfo, string) bool { return true }
func (a *recordingAuth) AllowRead(mqttcore.ClientInfo, string) bool      { return true }

// calls returns copies of the recorded requests.
func (a *recordingAuth) calls() (connects []mqttcore.ClientInfo, passwords [][]byte, publishes []mqttcore.ClientInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append(connects, a.connects...), append(passwords, a.passwords...), append(publishes, a.publishes...)
}

// identityServer serves a broker with auth on a TLS listener built from
// pki; clientAuth, if set, replaces the listener's client certificate
// policy.
func identityServer(t *testing.T, pki testPKI, clientAuth tls.ClientAuthType, lopts mqttcore.ListenerOptions) (*server, *recordingAuth) {
	t.Helper()
	cfg, err := mqttcore.LoadTLSConfig(pki.serverCert, pki.serverKey, pki.caCert)
	require.NoError(t, err)
	if clientAuth != tls.NoClientCert {
		cfg.ClientAuth = clientAuth
	}
	auth := &recordingAuth{}
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1, Authorizer: auth})
	require.NoError(t, err)
	require.NoError(t, b.Start(t.Context()))
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	return serveOn(t, b, l, lopts), auth
}

// dialTLS opens a TLS connection that trusts pki's CA and presents the
// client certificate when withCert is set.
func dialTLS(t *testing.T, pki testPKI, addr string, withCert bool, v packet.Version) *rawClient {
	t.Helper()
	caPEM, err := os.ReadFile(pki.caCert)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	cfg := &tls.Config{RootCAs: roots}
	if withCert {
		cert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{cert}
	}
	nc, err := tls.Dial("tcp", addr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), v: v}
}

// TestUseIdentityAsUsername connects with the client certificate (CN
// "client") and a user name and password of the client's choosing: on a
// listener with UseIdentityAsUsername the Authorizer sees the CN as the
// user name, already authenticated, on connect and on every later request.
func TestUseIdentityAsUsername(t *testing.T) {
	pki := newTestPKI(t)
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			s, auth := identityServer(t, pki, tls.NoClientCert, mqttcore.ListenerOptions{UseIdentityAsUsername: true})
			c := dialTLS(t, pki, s.addr, true, v)
			c.send(&packet.ConnectPacket{ClientID: "c1", CleanStart: true, Username: ptr("mallory"), Password: []byte("guess")})
			require.Equal(t, packet.Success, c.expect(packet.Connack).(*packet.ConnackPacket).ReasonCode)
			c.send(&packet.PublishPacket{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("x")})
			c.expect(packet.Puback)

			connects, passwords, publishes := auth.calls()
			want := mqttcore.ClientInfo{ClientID: "c1", Username: "client", Link: s.l.Addr().Network() + " " + s.addr,
				Identity: "client", Authenticated: true}
			require.Len(t, connects, 1)
			require.NotNil(t, connects[0].Remote)
			assert.Equal(t, c.nc.LocalAddr().String(), connects[0].Remote.String(), "the TCP peer")
			want.Remote = connects[0].Remote
			assert.Equal(t, want, connects[0])
			assert.Nil(t, passwords[0], "the password the client sent is not passed on")
			require.Len(t, publishes, 1)
			assert.Equal(t, want, publishes[0])
		})
	}
}

// TestIdentityNotUsernameByDefault is the same connection on a listener
// without the option: the client's own user name and password go to the
// Authorizer, with the CN only as Identity.
func TestIdentityNotUsernameByDefault(t *testing.T) {
	pki := newTestPKI(t)
	s, auth := identityServer(t, pki, tls.NoClientCert, mqttcore.ListenerOptions{})
	c := dialTLS(t, pki, s.addr, true, packet.V5)
	c.send(&packet.ConnectPacket{ClientID: "c1", CleanStart: true, Username: ptr("mallory"), Password: []byte("guess")})
	require.Equal(t, packet.Success, c.expect(packet.Connack).(*packet.ConnackPacket).ReasonCode)

	connects, passwords, _ := auth.calls()
	require.Len(t, connects, 1)
	assert.Equal(t, "mallory", connects[0].Username)
	assert.Equal(t, "client", connects[0].Identity)
	assert.False(t, connects[0].Authenticated)
	assert.Equal(t, []byte("guess"), passwords[0])
}

// TestUseIdentityAsUsernameWithoutCertificate connects without a verified
// certificate to listeners with the option: over TLS that only asks for a
// certificate, and over plain TCP. Each is refused before the Authorizer
// is asked, whatever user name the client claims.
func TestUseIdentityAsUsernameWithoutCertificate(t *testing.T) {
	pki := newTestPKI(t)
	lopts := mqttcore.ListenerOptions{UseIdentityAsUsername: true}
	tlsServer, tlsAuth := identityServer(t, pki, tls.VerifyClientCertIfGiven, lopts)
	tcpAuth := &recordingAuth{}
	tcpServer := serveBroker(t, &mqttcore.Options{Authorizer: tcpAuth}, lopts)
	dials := map[string]func(v packet.Version) *rawClient{
		"tls without certificate": func(v packet.Version) *rawClient { return dialTLS(t, pki, tlsServer.addr, false, v) },
		"plain tcp":               func(v packet.Version) *rawClient { return dialRaw(t, tcpServer.addr, v) },
	}
	for name, dial := range dials {
		t.Run(name, func(t *testing.T) {
			c := dial(packet.V5)
			c.send(&packet.ConnectPacket{ClientID: "c5", CleanStart: true, Username: ptr("client")})
			assert.Equal(t, packet.NotAuthorized, c.expect(packet.Connack).(*packet.ConnackPacket).ReasonCode)
			c.expectClosed()

			// 3.1.1 §3.2.2.3: return code 5, not authorized, on the wire.
			c = dial(packet.V311)
			c.send(&packet.ConnectPacket{ClientID: "c3", CleanStart: true, Username: ptr("client")})
			raw := make([]byte, 4)
			_, err := io.ReadFull(c.br, raw)
			require.NoError(t, err)
			assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x05}, raw)
			c.expectClosed()
		})
	}
	for _, a := range []*recordingAuth{tlsAuth, tcpAuth} {
		connects, _, _ := a.calls()
		assert.Empty(t, connects)
	}
}
