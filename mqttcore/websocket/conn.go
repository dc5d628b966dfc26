package websocket

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	gws "github.com/gorilla/websocket"
)

// closeWait bounds the sending of a close frame, so that closing a
// connection whose peer has stopped reading does not hang.
const closeWait = time.Second

// Conn is one upgraded WebSocket connection as a byte stream: a net.Conn
// whose Read runs across binary messages and whose every Write is one
// binary message. Like any net.Conn it may be used from several
// goroutines; reads are serialised among themselves, and so are writes.
type Conn struct {
	ws  *gws.Conn
	tls *tls.ConnectionState // nil on a plain ws connection

	rmu  sync.Mutex
	r    io.Reader // the message being read; nil between messages
	rerr error     // the first read error, returned from then on

	wmu sync.Mutex
}

func newConn(ws *gws.Conn, state *tls.ConnectionState, maxMessage int64) *Conn {
	ws.SetReadLimit(maxMessage)
	return &Conn{ws: ws, tls: state}
}

// Read reads the payload of the client's binary messages as one stream.
// Pings are answered and pongs ignored while it reads. A close frame with
// status 1000 (normal), 1001 (going away) or none reads as io.EOF; other
// ends are errors wrapping ErrMessageTooLarge, ErrTextMessage,
// io.ErrUnexpectedEOF (the socket ended without a close frame),
// gorilla/websocket's *CloseError (another status) or
// os.ErrDeadlineExceeded (the read deadline passed). Once Read has
// failed, it returns the same error from then on.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return 0, c.rerr
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.rerr = c.readError(err)
				return 0, c.rerr
			}
			if typ != gws.BinaryMessage {
				// MQTT 5 §6 [MQTT-6.0.0-1]: anything but binary data
				// closes the connection.
				_ = c.ws.WriteControl(gws.CloseMessage,
					gws.FormatCloseMessage(gws.CloseUnsupportedData, "MQTT needs binary messages"), time.Now().Add(closeWait))
				c.rerr = ErrTextMessage
				return 0, c.rerr
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		switch {
		case err == io.EOF:
			// The end of one message, not of the stream.
			c.r = nil
			if n > 0 {
				return n, nil
			}
		case err != nil:
			c.rerr = c.readError(err)
			return n, c.rerr
		default:
			return n, nil
		}
	}
}

// readError maps gorilla/websocket's read errors onto those a net.Conn
// user expects.
func (c *Conn) readError(err error) error {
	var ce *gws.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		switch ce.Code {
		case gws.CloseNormalClosure, gws.CloseGoingAway, gws.CloseNoStatusReceived:
			return io.EOF
		case gws.CloseAbnormalClosure:
			// The socket ended without a close frame.
			return fmt.Errorf("websocket: read from %s: %w", c.RemoteAddr(), io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("websocket: read from %s: %w", c.RemoteAddr(), err)
	case errors.Is(err, gws.ErrReadLimit):
		return fmt.Errorf("websocket: read from %s: %w", c.RemoteAddr(), ErrMessageTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		// gorilla/websocket hides the deadline error behind its own type.
		return fmt.Errorf("websocket: read from %s: %w", c.RemoteAddr(), os.ErrDeadlineExceeded)
	}
	return err
}

// Write sends p as one binary message. After CloseWrite or Close it
// returns an error wrapping net.ErrClosed; a write deadline that passes
// returns an error wrapping os.ErrDeadlineExceeded, and the connection
// cannot be written any more.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(gws.BinaryMessage, p); err != nil {
		return 0, c.writeError(err)
	}
	return len(p), nil
}

func (c *Conn) writeError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, gws.ErrCloseSent):
		return fmt.Errorf("websocket: write to %s: %w", c.RemoteAddr(), net.ErrClosed)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("websocket: write to %s: %w", c.RemoteAddr(), os.ErrDeadlineExceeded)
	}
	return err
}

// CloseWrite starts the closing handshake (RFC 6455 §7.1.2): it sends a
// close frame with status 1000 and leaves the read side open, so that the
// peer's own close frame ends Read with io.EOF. Writes fail from then on.
func (c *Conn) CloseWrite() error {
	err := c.ws.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, ""), time.Now().Add(closeWait))
	if err != nil && !errors.Is(err, gws.ErrCloseSent) {
		return c.writeError(err)
	}
	return nil
}

// Close sends a close frame with status 1000, unless one has gone already,
// and closes the socket. It may be called concurrently with Read and
// Write, and more than once.
func (c *Conn) Close() error {
	_ = c.CloseWrite()
	return c.ws.Close()
}

// LocalAddr returns the listener's address.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the address of the TCP peer. Headers such as
// X-Forwarded-For are not consulted: any client can write them.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read. A Read that times out ends
// the connection's reading for good: the frame under way cannot be resumed.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for Write; a Write blocked on the
// socket is held to it too.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	// The socket's deadline first, to release a Write blocked on it;
	// gorilla/websocket, which sets it again for every frame, keeps its
	// own copy, written under wmu since its writes read it unguarded.
	if err := c.ws.NetConn().SetWriteDeadline(t); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.SetWriteDeadline(t)
}

// Subprotocol returns the subprotocol the handshake chose: "mqtt" or
// "mqttv3.1".
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// ConnectionState returns the TLS handshake of a wss connection, with the
// client's verified certificate chains if it presented one, or the zero
// value on a plain ws connection. It has the signature of
// (*tls.Conn).ConnectionState, so the broker reads client certificates
// from either alike.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if c.tls == nil {
		return tls.ConnectionState{}
	}
	return *c.tls
}
