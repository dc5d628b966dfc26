package websocket_test

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore/websocket"
)

// maskedFrame builds a client frame (RFC 6455 §5.2) with a fixed masking
// key, for seeds.
func maskedFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// FuzzConnRead sends arbitrary bytes after a completed handshake and reads
// the server's side as a stream until it fails: the stream must end with
// an error (never hang once the client has finished sending), never give
// more bytes than were sent, and keep returning its error on every later
// Read, without ever reaching the frame parser again (gorilla/websocket
// panics on a thousand reads of a failed connection).
func FuzzConnRead(f *testing.F) {
	f.Add(maskedFrame(true, 0x2, connect311))
	f.Add(cat(maskedFrame(false, 0x2, connect311[:3]), maskedFrame(true, 0x9, []byte("p")), maskedFrame(true, 0x0, connect311[3:])))
	f.Add(cat(maskedFrame(true, 0x2, nil), maskedFrame(true, 0xA, nil), maskedFrame(true, 0x8, []byte{0x03, 0xE8})))
	f.Add(maskedFrame(true, 0x1, []byte("text")))
	f.Add(maskedFrame(true, 0x2, make([]byte, 200)))
	f.Add([]byte{0x82, 0x01, 0x10})       // unmasked
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0}) // 64-bit length, truncated
	f.Add(maskedFrame(true, 0x9, make([]byte, 126)))
	l, err := websocket.Listen("tcp", "127.0.0.1:0", websocket.Options{MaxMessageSize: 128})
	require.NoError(f, err)
	f.Cleanup(func() { l.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		c := dialMQTT(t, l.Addr().String())
		nc, err := l.Accept()
		require.NoError(t, err)
		defer nc.Close()
		_, err = c.nc.Write(data)
		require.NoError(t, err)
		require.NoError(t, c.nc.(*net.TCPConn).CloseWrite())

		total := 0
		buf := make([]byte, 7)
		for {
			n, err := nc.Read(buf)
			require.LessOrEqual(t, n, len(buf))
			total += n
			if err != nil {
				for range 1100 {
					_, again := nc.Read(buf)
					require.Equal(t, err, again)
				}
				break
			}
		}
		assert.LessOrEqual(t, total, len(data))
	})
}
