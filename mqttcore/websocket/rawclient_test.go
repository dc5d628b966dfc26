package websocket_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ioTimeout bounds every read and write of the raw client, so that a
// broken server fails the test instead of hanging it. It is a deadlock
// guard, not a timing claim.
const ioTimeout = 10 * time.Second

// Frame opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// rawClient is a WebSocket client written from RFC 6455 alone, on a plain
// socket, so that the server is checked against the specification rather
// than against the library it is built on.
type rawClient struct {
	t       *testing.T
	nc      net.Conn
	br      *bufio.Reader
	pending []byte // message bytes read but not yet taken by readStream
}

// handshake is the client's side of an opening handshake.
type handshake struct {
	path      string
	protocols string // the Sec-WebSocket-Protocol header; "" sends none
	origin    string
}

// dialRaw connects to addr and sends the opening handshake (RFC 6455
// §4.1); it returns the client and the server's response. On a 101 it
// checks the response as §4.2.2 requires it.
func dialRaw(t *testing.T, addr string, h handshake) (*rawClient, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	return upgradeRaw(t, nc, addr, h)
}

// upgradeRaw sends the opening handshake over nc, which may be a TLS
// connection.
func upgradeRaw(t *testing.T, nc net.Conn, host string, h handshake) (*rawClient, *http.Response) {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(ioTimeout)))
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", h.path, host)
	fmt.Fprintf(&req, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	if h.protocols != "" {
		fmt.Fprintf(&req, "Sec-WebSocket-Protocol: %s\r\n", h.protocols)
	}
	if h.origin != "" {
		fmt.Fprintf(&req, "Origin: %s\r\n", h.origin)
	}
	req.WriteString("\r\n")
	_, err := io.WriteString(nc, req.String())
	require.NoError(t, err)

	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	require.NoError(t, err)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// §4.2.2 step 5.4: base64(SHA-1(key + GUID)).
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), resp.Header.Get("Sec-WebSocket-Accept"))
		assert.True(t, strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"), "Upgrade: %q", resp.Header.Get("Upgrade"))
		assert.True(t, strings.EqualFold(resp.Header.Get("Connection"), "upgrade"), "Connection: %q", resp.Header.Get("Connection"))
	} else {
		_ = resp.Body.Close()
	}
	require.NoError(t, nc.SetDeadline(time.Time{}))
	return c, resp
}

// dialMQTT completes a handshake offering "mqtt" and requires the
// upgrade.
func dialMQTT(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, resp := dialRaw(t, addr, handshake{path: "/mqtt", protocols: "mqtt"})
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, "mqtt", resp.Header.Get("Sec-WebSocket-Protocol"))
	return c
}

// writeFrame sends one frame (RFC 6455 §5.2), masked with a random key as
// a client must unless masked is false:
//
//	FIN(1) RSV(3) opcode(4) | MASK(1) payload len(7) [len 16 | len 64]
//	[masking key(32)] payload
func (c *rawClient) writeFrame(fin bool, op byte, payload []byte, masked bool) {
	c.t.Helper()
	b0 := op
	if fin {
		b0 |= 0x80
	}
	frame := []byte{b0}
	var maskBit byte
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		frame = append(frame, maskBit|byte(n))
	case n <= 0xFFFF:
		frame = append(frame, maskBit|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	default:
		frame = append(frame, maskBit|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	body := append([]byte(nil), payload...)
	if masked {
		var key [4]byte
		_, _ = rand.Read(key[:])
		frame = append(frame, key[:]...)
		for i := range body {
			body[i] ^= key[i%4]
		}
	}
	frame = append(frame, body...)
	require.NoError(c.t, c.nc.SetWriteDeadline(time.Now().Add(ioTimeout)))
	_, err := c.nc.Write(frame)
	require.NoError(c.t, err)
}

// send sends payload as one masked binary message.
func (c *rawClient) send(payload []byte) { c.writeFrame(true, opBinary, payload, true) }

// frame is one frame read from the server.
type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// readFrame reads one frame and checks that the server did not mask it
// (RFC 6455 §5.1: a server MUST NOT mask).
func (c *rawClient) readFrame() (frame, error) {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(time.Now().Add(ioTimeout)))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return frame{}, err
	}
	assert.Zero(c.t, h[0]&0x70, "RSV bits set")
	assert.Zero(c.t, h[1]&0x80, "server frame is masked")
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	require.Less(c.t, n, uint64(1<<24), "frame too long for a test")
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return frame{}, err
	}
	return frame{fin: h[0]&0x80 != 0, op: h[0] & 0x0F, payload: p}, nil
}

// mustFrame reads a frame and requires one.
func (c *rawClient) mustFrame() frame {
	c.t.Helper()
	f, err := c.readFrame()
	require.NoError(c.t, err)
	return f
}

// readMessage reads the payload of the next binary message, whatever
// frames carry it.
func (c *rawClient) readMessage() []byte {
	c.t.Helper()
	var msg []byte
	for {
		f := c.mustFrame()
		require.Contains(c.t, []byte{opBinary, opContinuation}, f.op, "frame %+v", f)
		msg = append(msg, f.payload...)
		if f.fin {
			return msg
		}
	}
}

// expectClose reads frames up to a close frame and returns its status
// code (RFC 6455 §5.5.1: the first two bytes of the payload).
func (c *rawClient) expectClose() uint16 {
	c.t.Helper()
	for {
		f := c.mustFrame()
		if f.op != opClose {
			continue
		}
		require.GreaterOrEqual(c.t, len(f.payload), 2, "close frame without a status")
		return binary.BigEndian.Uint16(f.payload)
	}
}

// expectEOF requires the server to close the socket, after any frames.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	for {
		_, err := c.readFrame()
		if err != nil {
			assert.ErrorIs(c.t, err, io.EOF)
			return
		}
	}
}

// closePayload is a close frame's payload with status code.
func closePayload(code uint16) []byte { return binary.BigEndian.AppendUint16(nil, code) }

// readStream returns the next n bytes of the server's binary messages
// taken as one stream, wherever the message boundaries fall.
func (c *rawClient) readStream(n int) []byte {
	c.t.Helper()
	for len(c.pending) < n {
		c.pending = append(c.pending, c.readMessage()...)
	}
	b := c.pending[:n:n]
	c.pending = c.pending[n:]
	return b
}
