package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/internal/testpki"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// MQTT over WebSocket end to end: `snwgw serve` with a plain MQTT
// listener, a ws listener and a wss listener that takes client
// certificates as user names. Paho's autopaho, an MQTT client stack of its
// own, speaks over ws:// and wss://; MQTT-SN sensors on UDP and
// mosquitto_sub on TCP are on the other sides.

// wsACL lets every client use sensors/# and commands/#, lets MQTT-SN
// sensors write below secure/, and lets only the user "dashboard" (a
// certificate's CN on the wss listener) read there.
const wsACL = `topic readwrite sensors/#
topic readwrite commands/#
topic write secure/#
user dashboard
topic read secure/#
`

// wsSite is a running gateway with its listeners.
type wsSite struct {
	e        *e2e // its mqtt field is the plain MQTT listener
	logs     *syncBuffer
	pki      *testpki.PKI
	ws, wss  string // host:port
	wssPath  string
	dashCert tls.Certificate
}

func startWSSite(t *testing.T) *wsSite {
	t.Helper()
	s := &wsSite{pki: testpki.New(t, "ws-site"), wssPath: "/secure/mqtt"}
	certFile, keyFile := s.pki.Issue(t, "dashboard", time.Now().Add(24*time.Hour), testpki.Client)
	var err error
	s.dashCert, err = tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	acl := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(acl, []byte(wsACL), 0o600))
	cfg := writeConfig(t, fmt.Sprintf(`[auth]
acl_file = %q

[[udp]]
address = "127.0.0.1:0"

[[broker.listener]]
address = "127.0.0.1:0"

[[broker.listener]]
address = "127.0.0.1:0"
protocol = "websocket"

[[broker.listener]]
address = "127.0.0.1:0"
protocol = "websocket"
websocket_path = %q
cert_file = %q
key_file = %q
client_ca_file = %q
use_identity_as_username = true
`, acl, s.wssPath, s.pki.ServerCertFile, s.pki.ServerKeyFile, s.pki.CAFile))

	testpeer.Look(t, "mosquitto_sub", "mosquitto-clients")
	srv, logs := startServeAsIs(t, "--config", cfg)
	require.Len(t, srv.mqtt, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	s.e = &e2e{t: t, srv: srv, udp: srv.udp[0].LocalAddr(), mqtt: srv.mqtt[0].Addr().String(), ctx: ctx}
	s.logs = logs
	s.ws = srv.mqtt[1].Addr().String()
	s.wss = srv.mqtt[2].Addr().String()
	return s
}

// pahoClient is an autopaho connection and what it receives.
type pahoClient struct {
	cm       *autopaho.ConnectionManager
	received chan *paho.Publish
}

// dialPaho connects autopaho to rawURL and waits for the connection, or
// for the first failed attempt, whose error it returns.
func dialPaho(t *testing.T, ctx context.Context, rawURL, clientID string, tlsCfg *tls.Config) (*pahoClient, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	pc := &pahoClient{received: make(chan *paho.Publish, 16)}
	connErrs := make(chan error, 1)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        tlsCfg,
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ConnectTimeout:                10 * time.Second,
		// The first attempt at once; a failed one ends dialPaho, so later
		// ones are not hurried.
		ReconnectBackoff: func(attempt int) time.Duration {
			if attempt == 0 {
				return 0
			}
			return time.Second
		},
		OnConnectError: func(err error) {
			select {
			case connErrs <- err:
			default:
			}
		},
		ClientConfig: paho.ClientConfig{
			ClientID: clientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				select {
				case pc.received <- pr.Packet:
				default:
				}
				return true, nil
			}},
		},
	}
	cctx, cancel := context.WithCancel(ctx)
	cm, err := autopaho.NewConnection(cctx, cfg)
	require.NoError(t, err)
	pc.cm = cm
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		_ = cm.Disconnect(dctx)
		cancel()
		<-cm.Done()
	})
	up := make(chan error, 1)
	go func() { up <- cm.AwaitConnection(cctx) }()
	select {
	case err := <-up:
		return pc, err
	case err := <-connErrs:
		return pc, err
	}
}

// receive waits for the next message.
func (pc *pahoClient) receive(t *testing.T, ctx context.Context) *paho.Publish {
	t.Helper()
	select {
	case p := <-pc.received:
		return p
	case <-ctx.Done():
		t.Fatal("no message reached the WebSocket client")
		return nil
	}
}

// TestWebSocketClientWithMQTTSNAndMosquitto: a browser-style client on
// ws:// receives what an MQTT-SN sensor publishes, commands an MQTT-SN
// actuator, and mosquitto_sub on plain TCP sees what it publishes.
func TestWebSocketClientWithMQTTSNAndMosquitto(t *testing.T) {
	s := startWSSite(t)
	e := s.e
	pc, err := dialPaho(t, e.ctx, "ws://"+s.ws+"/mqtt", "browser-1", nil)
	require.NoError(t, err)
	// Serve logged its name before it accepted the client.
	assert.Contains(t, s.logs.String(), `listener="ws `+s.ws+`"`)
	suback, err := pc.cm.Subscribe(e.ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sensors/#", QoS: 1}}})
	require.NoError(t, err)
	assert.Equal(t, []byte{1}, suback.Reasons)

	// MQTT-SN sensor --PUBLISH QoS 1--> gateway --> ws client.
	sensor := e.snClient("sensor-1", snclient.Options{CleanSession: true})
	require.NoError(t, sensor.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName("sensors/sensor-1/temp"),
		Payload: []byte("21.5"), QoS: mqttsn.QoS1}))
	p := pc.receive(t, e.ctx)
	assert.Equal(t, "sensors/sensor-1/temp", p.Topic)
	assert.Equal(t, "21.5", string(p.Payload))
	assert.Equal(t, byte(1), p.QoS)

	// ws client --PUBLISH QoS 1--> gateway --> MQTT-SN actuator.
	got := make(chan snclient.Message, 1)
	valve := e.snClient("valve-1", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { got <- m }})
	_, _, err = valve.Subscribe(e.ctx, snclient.TopicName("commands/valve-1"), mqttsn.QoS1)
	require.NoError(t, err)
	pr, err := pc.cm.Publish(e.ctx, &paho.Publish{Topic: "commands/valve-1", QoS: 1, Payload: []byte("open")})
	require.NoError(t, err)
	assert.Equal(t, byte(0), pr.ReasonCode)
	select {
	case m := <-got:
		assert.Equal(t, "commands/valve-1", m.Topic.Name)
		assert.Equal(t, "open", string(m.Payload))
	case <-e.ctx.Done():
		t.Fatal("the command never reached the MQTT-SN actuator")
	}

	// ws client --> gateway --> mosquitto_sub on the TCP listener, and a
	// large message, several WebSocket frames' worth.
	lines, _ := e.mosquittoSub("mqttv311", 1, "sensors/browser/#")
	_, err = pc.cm.Publish(e.ctx, &paho.Publish{Topic: "sensors/browser/state", QoS: 1, Payload: []byte("online")})
	require.NoError(t, err)
	assert.Equal(t, "sensors/browser/state online", e.line(lines))
	big := strings.Repeat("x", 50_000) // under bufio.Scanner's 64 KiB line limit
	_, err = pc.cm.Publish(e.ctx, &paho.Publish{Topic: "sensors/browser/blob", QoS: 1, Payload: []byte(big)})
	require.NoError(t, err)
	assert.Equal(t, "sensors/browser/blob "+big, e.line(lines))
	// The ws client's own subscription (sensors/#) sees them too.
	assert.Equal(t, "online", string(pc.receive(t, e.ctx).Payload))
	assert.Len(t, pc.receive(t, e.ctx).Payload, len(big))
}

// TestWebSocketTLSCertificateStandsForUsername: on the wss listener with
// use_identity_as_username the client certificate's CN ("dashboard") is
// the user name the ACL's user section grants; the same subscription from
// an anonymous ws client is refused.
func TestWebSocketTLSCertificateStandsForUsername(t *testing.T) {
	s := startWSSite(t)
	e := s.e
	tlsCfg := &tls.Config{RootCAs: s.pki.Pool(), Certificates: []tls.Certificate{s.dashCert}}
	dash, err := dialPaho(t, e.ctx, "wss://"+s.wss+s.wssPath, "dashboard-1", tlsCfg)
	require.NoError(t, err)
	assert.Contains(t, s.logs.String(), `listener="wss `+s.wss+`"`)
	suback, err := dash.cm.Subscribe(e.ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "secure/#", QoS: 1}}})
	require.NoError(t, err)
	assert.Equal(t, []byte{1}, suback.Reasons)

	sensor := e.snClient("vault-sensor", snclient.Options{CleanSession: true})
	require.NoError(t, sensor.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName("secure/door"),
		Payload: []byte("closed"), QoS: mqttsn.QoS1}))
	p := dash.receive(t, e.ctx)
	assert.Equal(t, "secure/door", p.Topic)
	assert.Equal(t, "closed", string(p.Payload))

	anon, err := dialPaho(t, e.ctx, "ws://"+s.ws+"/mqtt", "anonymous-1", nil)
	require.NoError(t, err)
	// paho returns the SUBACK with an error for a refused filter.
	suback, err = anon.cm.Subscribe(e.ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "secure/#", QoS: 1}}})
	assert.Error(t, err)
	require.NotNil(t, suback)
	assert.Equal(t, []byte{0x87}, suback.Reasons)

	// Without a client certificate the wss listener is closed to it, and
	// the wrong path finds nothing.
	_, err = dialPaho(t, e.ctx, "wss://"+s.wss+s.wssPath, "nocert-1", &tls.Config{RootCAs: s.pki.Pool()})
	assert.Error(t, err)
	_, err = dialPaho(t, e.ctx, "wss://"+s.wss+"/mqtt", "lost-1", tlsCfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad handshake")
}

// TestWebSocketListenerDefaults: the default addresses and path, as
// `config check` prints them.
func TestWebSocketListenerDefaults(t *testing.T) {
	pki := testpki.New(t, "ws-defaults")
	p := writeConfig(t, fmt.Sprintf(`[[broker.listener]]
protocol = "websocket"

[[broker.listener]]
protocol = "websocket"
cert_file = %q
key_file = %q

[[broker.listener]]
`, pki.ServerCertFile, pki.ServerKeyFile))
	var out bytes.Buffer
	require.NoError(t, runConfig([]string{"check", p}, &out))
	c, err := loadConfig(p)
	require.NoError(t, err)
	eff, err := c.effective()
	require.NoError(t, err)
	var got [][3]string
	for _, l := range eff.Broker.Listeners {
		got = append(got, [3]string{l.Protocol, l.Address, l.WebSocketPath})
	}
	assert.Equal(t, [][3]string{
		{"websocket", ":8083", "/mqtt"},
		{"websocket", ":8084", "/mqtt"},
		{"mqtt", ":1883", "/mqtt"},
	}, got)
	assert.Contains(t, out.String(), `protocol = "websocket"`)
	assert.Contains(t, out.String(), `address = ":8084"`)
}

// TestWebSocketConfigErrors: a wrong protocol or path, or a wss listener
// taking identities without a client CA, stops `config check` naming the
// listener.
func TestWebSocketConfigErrors(t *testing.T) {
	pki := testpki.New(t, "ws-errors")
	for name, tc := range map[string]struct {
		listener string
		says     string
		is       error
	}{
		"unknown protocol": {"protocol = \"mqtt-sn\"\n", `protocol "mqtt-sn" is not "mqtt" or "websocket"`, nil},
		"relative path":    {"protocol = \"websocket\"\nwebsocket_path = \"mqtt\"\n", `websocket_path "mqtt" does not start with "/"`, nil},
		"identity without client CA": {fmt.Sprintf("protocol = \"websocket\"\ncert_file = %q\nkey_file = %q\nuse_identity_as_username = true\n",
			pki.ServerCertFile, pki.ServerKeyFile), "listener :8084", errIdentityWithoutClientCA},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeConfig(t, "[[broker.listener]]\n"+tc.listener)
			var out bytes.Buffer
			err := runConfig([]string{"check", p}, &out)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			assert.Equal(t, "broker.listener[0]", ce.Key)
			assert.Contains(t, err.Error(), tc.says)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}
