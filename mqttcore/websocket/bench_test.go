package websocket_test

import (
	"context"
	"io"
	"net"
	"testing"

	gws "github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/websocket"
)

// clientStream is the client's side of a WebSocket byte stream for the
// benchmark: one binary message per Write, reads across messages.
type clientStream struct {
	ws *gws.Conn
	r  io.Reader
}

func (c *clientStream) Write(p []byte) (int, error) {
	return len(p), c.ws.WriteMessage(gws.BinaryMessage, p)
}

func (c *clientStream) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// BenchmarkRoundTrip measures QoS 0 messages per second through the
// broker and back on one connection, over WebSocket and over plain TCP:
// the client subscribes to "b", publishes 64-byte messages to it, one
// write (one WebSocket message) per packet, in windows of 100, and reads
// each window back before the next.
func BenchmarkRoundTrip(b *testing.B) {
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(b, err)
	require.NoError(b, broker.Start(context.Background()))
	b.Cleanup(func() { _ = broker.Close(context.Background()) })
	serve := func(l net.Listener) {
		done := make(chan struct{})
		go func() { defer close(done); _ = broker.Serve(l, mqttcore.ListenerOptions{}) }()
		b.Cleanup(func() { _ = l.Close(); <-done })
	}
	tl, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(b, err)
	serve(tl)
	wl, err := websocket.Listen("tcp", "127.0.0.1:0", websocket.Options{})
	require.NoError(b, err)
	serve(wl)

	dial := map[string]func(b *testing.B) io.ReadWriteCloser{
		"tcp": func(b *testing.B) io.ReadWriteCloser {
			nc, err := net.Dial("tcp", tl.Addr().String())
			require.NoError(b, err)
			return nc
		},
		"websocket": func(b *testing.B) io.ReadWriteCloser {
			d := gws.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: ioTimeout}
			ws, _, err := d.Dial("ws://"+wl.Addr().String()+"/mqtt", nil)
			require.NoError(b, err)
			return struct {
				*clientStream
				io.Closer
			}{&clientStream{ws: ws}, ws}
		},
	}
	const window = 100
	publish := append([]byte{0x30, 67, 0x00, 0x01, 'b'}, make([]byte, 64)...)
	subscribe := []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'b', 0x00}
	for _, name := range []string{"tcp", "websocket"} {
		b.Run(name, func(b *testing.B) {
			c := dial[name](b)
			defer c.Close()
			_, err := c.Write(connect311)
			require.NoError(b, err)
			_, err = c.Write(subscribe)
			require.NoError(b, err)
			buf := make([]byte, len(publish)*window)
			_, err = io.ReadFull(c, buf[:len(connackOK)+len(subackT)])
			require.NoError(b, err)
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n := min(window, b.N-sent)
				for range n {
					if _, err := c.Write(publish); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := io.ReadFull(c, buf[:n*len(publish)]); err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
