package websocket_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpki"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/websocket"
)

// MQTT 3.1.1 packets written out by hand (3.1.1 §3), so that the test
// does not lean on the broker's own codec.
var (
	// CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s,
	// client id "ws1".
	connect311 = []byte{0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03, 'w', 's', '1'}
	// CONNACK: session present 0, return code 0 (accepted).
	connackOK = []byte{0x20, 0x02, 0x00, 0x00}
	// CONNACK: return code 5 (not authorized).
	connackNotAuthorized = []byte{0x20, 0x02, 0x00, 0x05}
	// SUBSCRIBE: packet id 1, filter "t" at QoS 0.
	subscribeT = []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 't', 0x00}
	// SUBACK: packet id 1, granted QoS 0.
	subackT = []byte{0x90, 0x03, 0x00, 0x01, 0x00}
	// PUBLISH QoS 0: topic "t", payload "hi".
	publishT = []byte{0x30, 0x05, 0x00, 0x01, 't', 'h', 'i'}
	pingreq  = []byte{0xC0, 0x00}
	pingresp = []byte{0xD0, 0x00}
	// DISCONNECT.
	disconnect = []byte{0xE0, 0x00}
)

// listen opens a WebSocket listener on loopback, closed when the test
// ends.
func listen(t *testing.T, opts websocket.Options) net.Listener {
	t.Helper()
	l, err := websocket.Listen("tcp", "127.0.0.1:0", opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	return l
}

// serveBroker starts a broker serving a WebSocket listener; both are
// closed when the test ends.
func serveBroker(t *testing.T, opts websocket.Options, lopts mqttcore.ListenerOptions) net.Listener {
	t.Helper()
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	l, err := websocket.Listen("tcp", "127.0.0.1:0", opts)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- b.Serve(l, lopts) }()
	t.Cleanup(func() {
		assert.NoError(t, l.Close())
		assert.NoError(t, <-served)
		assert.NoError(t, b.Close(context.Background()))
	})
	return l
}

// accept takes the next connection from l, which a client has already
// upgraded: the handshake's answer goes out before Accept hands the
// connection over.
func accept(t *testing.T, l net.Listener) *websocket.Conn {
	t.Helper()
	nc, err := l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	c, ok := nc.(*websocket.Conn)
	require.True(t, ok, "Accept returned %T", nc)
	return c
}

// readAsync reads from c on another goroutine until an error and reports
// the bytes read and the error.
type readResult struct {
	data []byte
	err  error
}

func readAsync(c net.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		var r readResult
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			r.data = append(r.data, buf[:n]...)
			if err != nil {
				r.err = err
				ch <- r
				return
			}
		}
	}()
	return ch
}

func TestMQTTOverWebSocket(t *testing.T) {
	l := serveBroker(t, websocket.Options{}, mqttcore.ListenerOptions{})
	c := dialMQTT(t, l.Addr().String())

	// client --CONNECT, split over two messages--> broker
	c.send(connect311[:5])
	c.send(connect311[5:])
	assert.Equal(t, connackOK, c.readStream(len(connackOK)))

	// client --SUBSCRIBE, PUBLISH in one message--> broker: a message may
	// carry several packets.
	c.send(append(append([]byte(nil), subscribeT...), publishT...))
	assert.Equal(t, subackT, c.readStream(len(subackT)))
	assert.Equal(t, publishT, c.readStream(len(publishT)))

	// A fragmented message (RFC 6455 §5.4) with a ping between its
	// fragments (§5.5: control frames may be interleaved): the ping is
	// answered with its payload, and the PINGREQ split over the fragments
	// is answered too.
	c.writeFrame(false, opBinary, pingreq[:1], true)
	c.writeFrame(true, opPing, []byte("are you there"), true)
	f := c.mustFrame()
	assert.Equal(t, frame{fin: true, op: opPong, payload: []byte("are you there")}, f)
	c.writeFrame(true, opContinuation, pingreq[1:], true)
	assert.Equal(t, pingresp, c.readStream(len(pingresp)))

	// An unsolicited pong is ignored (§5.5.3).
	c.writeFrame(true, opPong, []byte("x"), true)
	c.send(pingreq)
	assert.Equal(t, pingresp, c.readStream(len(pingresp)))

	// client --DISCONNECT--> broker: the broker closes with status 1000
	// and, once the client answers its close frame, the socket.
	c.send(disconnect)
	assert.Equal(t, uint16(1000), c.expectClose())
	c.writeFrame(true, opClose, closePayload(1000), true)
	c.expectEOF()
}

func TestHandshake(t *testing.T) {
	l := listen(t, websocket.Options{
		CheckOrigin: func(r *http.Request) bool {
			o := r.Header.Get("Origin")
			return o == "" || o == "https://dashboard.example"
		},
	})
	addr := l.Addr().String()
	tests := []struct {
		name   string
		h      handshake
		status int
		chosen string
	}{
		{"mqtt", handshake{path: "/mqtt", protocols: "mqtt"}, http.StatusSwitchingProtocols, "mqtt"},
		{"MQTT 3.1 clients", handshake{path: "/mqtt", protocols: "mqttv3.1"}, http.StatusSwitchingProtocols, "mqttv3.1"},
		{"mqtt preferred", handshake{path: "/mqtt", protocols: "mqttv3.1, mqtt"}, http.StatusSwitchingProtocols, "mqtt"},
		{"among others", handshake{path: "/mqtt", protocols: "wamp, mqtt"}, http.StatusSwitchingProtocols, "mqtt"},
		{"allowed origin", handshake{path: "/mqtt", protocols: "mqtt", origin: "https://dashboard.example"}, http.StatusSwitchingProtocols, "mqtt"},
		{"other path", handshake{path: "/other", protocols: "mqtt"}, http.StatusNotFound, ""},
		{"path prefix", handshake{path: "/mqtt/x", protocols: "mqtt"}, http.StatusNotFound, ""},
		{"no subprotocol", handshake{path: "/mqtt"}, http.StatusBadRequest, ""},
		{"other subprotocol", handshake{path: "/mqtt", protocols: "wamp"}, http.StatusBadRequest, ""},
		{"refused origin", handshake{path: "/mqtt", protocols: "mqtt", origin: "https://evil.example"}, http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp := dialRaw(t, addr, tt.h)
			assert.Equal(t, tt.status, resp.StatusCode)
			if tt.status != http.StatusSwitchingProtocols {
				return
			}
			assert.Equal(t, tt.chosen, resp.Header.Get("Sec-WebSocket-Protocol"))
			wc := accept(t, l)
			assert.Equal(t, tt.chosen, wc.Subprotocol())
			assert.Equal(t, c.nc.LocalAddr().String(), wc.RemoteAddr().String(), "RemoteAddr is the TCP peer")
			assert.Equal(t, addr, wc.LocalAddr().String())
		})
	}
}

func TestPlainHTTPRequestIsRefused(t *testing.T) {
	l := listen(t, websocket.Options{Path: "/ws"})
	resp, err := http.Get("http://" + l.Addr().String() + "/ws")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestAnyOriginByDefault(t *testing.T) {
	l := listen(t, websocket.Options{})
	_, resp := dialRaw(t, l.Addr().String(), handshake{path: "/mqtt", protocols: "mqtt", origin: "https://elsewhere.example"})
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
}

func TestByteStream(t *testing.T) {
	l := listen(t, websocket.Options{})
	c := dialMQTT(t, l.Addr().String())
	wc := accept(t, l)

	// Each Write is one binary message.
	n, err := wc.Write([]byte("one"))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	_, err = wc.Write([]byte("two"))
	require.NoError(t, err)
	assert.Equal(t, frame{fin: true, op: opBinary, payload: []byte("one")}, c.mustFrame())
	assert.Equal(t, frame{fin: true, op: opBinary, payload: []byte("two")}, c.mustFrame())

	// Reads run across messages, fragments and empty messages.
	c.send([]byte("abc"))
	c.send(nil)
	c.writeFrame(false, opBinary, []byte("de"), true)
	c.writeFrame(false, opContinuation, nil, true)
	c.writeFrame(true, opContinuation, []byte("fgh"), true)
	got := make([]byte, 0, 8)
	buf := make([]byte, 2)
	for len(got) < 8 {
		n, err := wc.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, "abcdefgh", string(got))

	// A close frame from the client ends the stream with io.EOF, and the
	// server answers it (RFC 6455 §5.5.1).
	c.writeFrame(true, opClose, closePayload(1000), true)
	_, err = wc.Read(buf)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, uint16(1000), c.expectClose())
	_, err = wc.Read(buf)
	assert.ErrorIs(t, err, io.EOF, "the error stays")
	require.NoError(t, wc.Close())
	c.expectEOF()
}

func TestCloseFromServer(t *testing.T) {
	l := listen(t, websocket.Options{})
	c := dialMQTT(t, l.Addr().String())
	wc := accept(t, l)
	read := readAsync(wc)
	require.NoError(t, wc.Close())
	assert.Equal(t, uint16(1000), c.expectClose())
	c.expectEOF()
	r := <-read
	assert.ErrorIs(t, r.err, net.ErrClosed)
	assert.Error(t, wc.Close(), "the socket is closed already")
}

func TestCloseWrite(t *testing.T) {
	l := listen(t, websocket.Options{})
	c := dialMQTT(t, l.Addr().String())
	wc := accept(t, l)
	require.NoError(t, wc.CloseWrite())
	require.NoError(t, wc.CloseWrite(), "a second CloseWrite sends nothing more")
	_, err := wc.Write([]byte("late"))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Equal(t, uint16(1000), c.expectClose())

	// The read side stays open until the client's close frame.
	c.send([]byte("still"))
	c.writeFrame(true, opClose, closePayload(1000), true)
	r := <-readAsync(wc)
	assert.Equal(t, "still", string(r.data))
	assert.ErrorIs(t, r.err, io.EOF)
}

func TestClientCloseStatus(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"normal", closePayload(1000), io.EOF},
		{"going away", closePayload(1001), io.EOF},
		{"no status", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, websocket.Options{})
			c := dialMQTT(t, l.Addr().String())
			wc := accept(t, l)
			c.writeFrame(true, opClose, tt.payload, true)
			r := <-readAsync(wc)
			assert.ErrorIs(t, r.err, tt.want)
		})
	}
	t.Run("error status", func(t *testing.T) {
		l := listen(t, websocket.Options{})
		c := dialMQTT(t, l.Addr().String())
		wc := accept(t, l)
		c.writeFrame(true, opClose, closePayload(1011), true)
		r := <-readAsync(wc)
		require.Error(t, r.err)
		assert.NotErrorIs(t, r.err, io.EOF)
		assert.Contains(t, r.err.Error(), "1011")
	})
	t.Run("socket closed without close frame", func(t *testing.T) {
		l := listen(t, websocket.Options{})
		c := dialMQTT(t, l.Addr().String())
		wc := accept(t, l)
		require.NoError(t, c.nc.Close())
		r := <-readAsync(wc)
		assert.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
	})
}

func TestProtocolViolationsClose(t *testing.T) {
	tests := []struct {
		name   string
		send   func(c *rawClient)
		status uint16
		err    error
	}{
		{
			// RFC 6455 §5.1: a server MUST close on an unmasked client frame.
			name:   "unmasked frame",
			send:   func(c *rawClient) { c.writeFrame(true, opBinary, []byte{0x10}, false) },
			status: 1002,
		},
		{
			name:   "message above MaxMessageSize",
			send:   func(c *rawClient) { c.send(make([]byte, 65)) },
			status: 1009,
			err:    websocket.ErrMessageTooLarge,
		},
		{
			// Fragments add up: the limit is on the message.
			name: "fragmented message above MaxMessageSize",
			send: func(c *rawClient) {
				c.writeFrame(false, opBinary, make([]byte, 40), true)
				c.writeFrame(true, opContinuation, make([]byte, 40), true)
			},
			status: 1009,
			err:    websocket.ErrMessageTooLarge,
		},
		{
			// MQTT 5 §6 [MQTT-6.0.0-1]: binary data frames only.
			name:   "text message",
			send:   func(c *rawClient) { c.writeFrame(true, opText, []byte("hello"), true) },
			status: 1003,
			err:    websocket.ErrTextMessage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, websocket.Options{MaxMessageSize: 64})
			c := dialMQTT(t, l.Addr().String())
			wc := accept(t, l)
			read := readAsync(wc)
			tt.send(c)
			assert.Equal(t, tt.status, c.expectClose())
			r := <-read
			require.Error(t, r.err)
			if tt.err != nil {
				assert.ErrorIs(t, r.err, tt.err)
			}
			require.NoError(t, wc.Close())
			c.expectEOF()
		})
	}
}

func TestMessageAtMaxMessageSize(t *testing.T) {
	l := listen(t, websocket.Options{MaxMessageSize: 64})
	c := dialMQTT(t, l.Addr().String())
	wc := accept(t, l)
	c.send(make([]byte, 64))
	c.writeFrame(true, opClose, closePayload(1000), true)
	r := <-readAsync(wc)
	assert.Len(t, r.data, 64)
	assert.ErrorIs(t, r.err, io.EOF)
}

func TestDeadlines(t *testing.T) {
	l := listen(t, websocket.Options{})
	dialMQTT(t, l.Addr().String())
	wc := accept(t, l)
	require.NoError(t, wc.SetDeadline(time.Now().Add(-time.Second)))
	_, err := wc.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	_, err = wc.Write([]byte("x"))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestListenerClose(t *testing.T) {
	l, err := websocket.Listen("tcp", "127.0.0.1:0", websocket.Options{})
	require.NoError(t, err)
	addr := l.Addr().(*net.TCPAddr)
	assert.NotZero(t, addr.Port, "port 0 is resolved")

	// A client upgraded but not yet accepted is closed with the listener.
	// Nobody accepts it: Close must not wait for Accept.
	c := dialMQTT(t, l.Addr().String())
	require.NoError(t, l.Close())
	assert.Equal(t, uint16(1000), c.expectClose())

	require.NoError(t, l.Close(), "Close is idempotent")
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = net.Dial("tcp", l.Addr().String())
	assert.Error(t, err, "the socket is closed")
}

func TestAcceptUnblocksOnClose(t *testing.T) {
	l, err := websocket.Listen("tcp", "127.0.0.1:0", websocket.Options{})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	require.NoError(t, l.Close())
	assert.ErrorIs(t, <-errc, net.ErrClosed)
}

func TestInvalidOptions(t *testing.T) {
	for name, opts := range map[string]websocket.Options{
		"relative path":    {Path: "mqtt"},
		"negative size":    {MaxMessageSize: -1},
		"negative timeout": {HandshakeTimeout: -time.Second},
		"negative buffer":  {ReadBufferSize: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := websocket.Listen("tcp", "127.0.0.1:0", opts)
			assert.ErrorIs(t, err, websocket.ErrInvalidOptions)
		})
	}
	_, err := websocket.Listen("udp", "127.0.0.1:0", websocket.Options{})
	assert.ErrorIs(t, err, websocket.ErrInvalidOptions)
}

// TestClientCertificateIdentity: over wss, the verified client
// certificate reaches the broker, whose UseIdentityAsUsername admits the
// client on it; over plain ws there is none, and the client is refused.
func TestClientCertificateIdentity(t *testing.T) {
	pki := testpki.New(t, "ws-test-ca")
	cfg, err := mqttcore.LoadTLSConfig(pki.ServerCertFile, pki.ServerKeyFile, pki.CAFile)
	require.NoError(t, err)
	lopts := mqttcore.ListenerOptions{UseIdentityAsUsername: true}
	wss := serveBroker(t, websocket.Options{TLSConfig: cfg}, lopts)
	certFile, keyFile := pki.Issue(t, "sensor-7", time.Now().Add(time.Hour), testpki.Client)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)

	// A browser offers h2 first; WebSocket needs HTTP/1.1.
	tc, err := tls.Dial("tcp", wss.Addr().String(), &tls.Config{
		RootCAs: pki.Pool(), Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	assert.Equal(t, "http/1.1", tc.ConnectionState().NegotiatedProtocol)
	c, resp := upgradeRaw(t, tc, wss.Addr().String(), handshake{path: "/mqtt", protocols: "mqtt"})
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	c.send(connect311)
	assert.Equal(t, connackOK, c.readStream(len(connackOK)))

	ws := serveBroker(t, websocket.Options{}, lopts)
	c = dialMQTT(t, ws.Addr().String())
	c.send(connect311)
	assert.Equal(t, connackNotAuthorized, c.readStream(len(connackNotAuthorized)))
}

func TestConnectionState(t *testing.T) {
	pki := testpki.New(t, "ws-state-ca")
	cfg, err := mqttcore.LoadTLSConfig(pki.ServerCertFile, pki.ServerKeyFile, pki.CAFile)
	require.NoError(t, err)
	l := listen(t, websocket.Options{TLSConfig: cfg})
	certFile, keyFile := pki.Issue(t, "dashboard", time.Now().Add(time.Hour), testpki.Client)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	tc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pki.Pool(), Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	_, resp := upgradeRaw(t, tc, l.Addr().String(), handshake{path: "/mqtt", protocols: "mqtt"})
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	st := accept(t, l).ConnectionState()
	assert.True(t, st.HandshakeComplete)
	require.NotEmpty(t, st.VerifiedChains)
	assert.Equal(t, "dashboard", st.PeerCertificates[0].Subject.CommonName)

	// A client without a certificate does not get past the TLS handshake.
	tc, err = tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pki.Pool()})
	if err == nil {
		// TLS 1.3 reports the refusal on the first read.
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
	}
	assert.Error(t, err)

	plain := listen(t, websocket.Options{})
	dialMQTT(t, plain.Addr().String())
	assert.Equal(t, tls.ConnectionState{}, accept(t, plain).ConnectionState())
}

// TestConcurrentCloseAndWrite runs Close against writes and reads under
// the race detector: the close frame and the messages never interleave
// badly, and nothing panics.
func TestConcurrentCloseAndWrite(t *testing.T) {
	l := listen(t, websocket.Options{})
	c := dialMQTT(t, l.Addr().String())
	wc := accept(t, l)
	read := readAsync(wc)
	wrote := make(chan error, 1)
	go func() {
		for {
			if _, err := wc.Write([]byte("data")); err != nil {
				wrote <- err
				return
			}
		}
	}()
	// The client sees data messages, then the close frame.
	f := c.mustFrame()
	assert.Equal(t, byte(opBinary), f.op)
	closed := make(chan error, 2)
	go func() { closed <- wc.Close() }()
	go func() { closed <- wc.Close() }()
	assert.Equal(t, uint16(1000), c.expectClose())
	<-closed
	<-closed
	err := <-wrote
	assert.True(t, errors.Is(err, net.ErrClosed), "write after close: %v", err)
	assert.Error(t, (<-read).err)
}
