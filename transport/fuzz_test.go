package transport

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer/openssl"
)

// splitBySeed cuts data into chunks whose sizes a seed byte chooses, so the
// fuzzer explores split points along with the content.
func splitBySeed(data []byte, seed byte) [][]byte {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(len(data))))
	maxChunk := 1 + int(seed%32)
	var chunks [][]byte
	for len(data) > 0 {
		n := min(1+r.IntN(maxChunk), len(data))
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return chunks
}

// checkSplitInvariance decodes data in one piece and in seed-chosen pieces
// and requires the same frames and counters from both.
func checkSplitInvariance(t *testing.T, mk func() Framer, data []byte, seed byte) []got {
	t.Helper()
	whole := mk()
	want := decodeAll(t, whole, data)
	split := mk()
	have := decodeAll(t, split, splitBySeed(data, seed)...)
	require.Equal(t, want, have)
	require.Equal(t, whole.Stats(), split.Stats())
	return want
}

// checkExpireNeverPanics feeds data with Expire calls between pieces.
func checkExpireNeverPanics(t *testing.T, fr Framer, data []byte, seed byte, bufLen func() int) {
	t.Helper()
	size := bufLen()
	for i, c := range splitBySeed(data, seed) {
		decodeAll(t, fr, c)
		if (int(seed)>>(i%8))&1 == 1 {
			fr.Expire()
			decodeAll(t, fr, nil)
		}
	}
	require.Equal(t, size, bufLen(), "decode buffer must not grow")
}

var rawFuzzSeeds = [][]byte{
	{0x02, 0x16},
	{0x03, 0x01, 0x00, 0x02, 0x16},
	append([]byte{0x01, 0x01, 0x04, 0x0C}, make([]byte, 256)...),
	{0x00, 0x00, 0x01, 0x00, 0x03, 0x02, 0x16},
	{0x01, 0xFF, 0xFF, 0x02, 0x16, 0xFF},
	{0x01},
}

func FuzzRawFramer(f *testing.F) {
	for i, s := range rawFuzzSeeds {
		f.Add(s, byte(i*37))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed byte) {
		maxPacket := 64 + int(seed)*4
		mk := func() Framer {
			r, err := NewRawFramer(maxPacket)
			require.NoError(t, err)
			return r
		}
		frames := checkSplitInvariance(t, mk, data, seed)
		total := 0
		for _, fr := range frames {
			// Each frame is one packet whose length field equals its size.
			assert.Equal(t, len(fr.Payload), rawLength(fr.Payload, maxPacket))
			total += len(fr.Payload)
		}
		assert.LessOrEqual(t, total, len(data))
		r := mk().(*RawFramer)
		checkExpireNeverPanics(t, r, data, seed, func() int { return len(r.sb.buf) })
	})
}

func xbeeFuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, v := range xbeeRxVectors {
		seeds = append(seeds, hexBytes(t, v.wire))
	}
	seeds = append(seeds,
		hexBytes(t, "7E 00 07 8B 01 FF FE 00 00 00 76 7E 00 02 8A 06 6F"),
		hexBytes(t, "00 7E 00 00 7E FF FF 7E 00 0E 90 00 13 A2 00 40 A1 B2 C3 12 34 01 02 16 06"),
		appendRxFrame(nil, node, bytes.Repeat([]byte{0x7D, 0x7E}, 40), true),
	)
	return seeds
}

func FuzzXBeeFramer(f *testing.F) {
	for i, s := range xbeeFuzzSeeds(f) {
		f.Add(s, byte(i*53), i%2 == 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed byte, escaped bool) {
		mk := func() Framer {
			x, err := NewXBeeFramer(XBeeOptions{Escaped: escaped, MaxPayload: 1 + int(seed)})
			require.NoError(t, err)
			return x
		}
		frames := checkSplitInvariance(t, mk, data, seed)
		for _, fr := range frames {
			require.IsType(t, XBeeAddr{}, fr.Source)
			assert.LessOrEqual(t, len(fr.Payload), len(data))
		}
		x := mk().(*XBeeFramer)
		checkExpireNeverPanics(t, x, data, seed, func() int { return len(x.sb.buf) + len(x.fbuf) })
	})
}

func FuzzXBeeRoundTrip(f *testing.F) {
	f.Add([]byte{0x02, 0x16}, node.Addr64, node.Addr16, false)
	f.Add([]byte{0x06, 0x0C, 0x7E, 0x7D, 0x11, 0x13}, uint64(0x7E7D11137E7D1113), uint16(0x7D7E), true)
	f.Add([]byte{}, XBeeBroadcast.Addr64, XBeeBroadcast.Addr16, true)
	f.Fuzz(func(t *testing.T, payload []byte, a64 uint64, a16 uint16, escaped bool) {
		addr := XBeeAddr{Addr64: a64, Addr16: a16}
		x := newXBee(t, escaped)

		// Encoding: a transmit request with the right fields and checksum.
		wire, err := x.AppendFrame(nil, payload, addr)
		if len(payload) > DefaultXBeeMaxPayload {
			require.ErrorIs(t, err, ErrPayloadTooLarge)
			return
		}
		require.NoError(t, err)
		data, err := parseAPIFrame(wire, escaped)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(data), xbeeTxHeader)
		assert.Equal(t, byte(xbeeTransmitRequest), data[0])
		assert.Equal(t, byte(1), data[1])
		assert.Equal(t, a64, binary.BigEndian.Uint64(data[2:10]))
		assert.Equal(t, a16, binary.BigEndian.Uint16(data[10:12]))
		assert.Equal(t, payload, data[xbeeTxHeader:])

		// Decoding: the receive packet a module would send back.
		frames := decodeAll(t, x, appendRxFrame(nil, addr, payload, escaped))
		require.Len(t, frames, 1)
		assert.Equal(t, payload, frames[0].Payload)
		assert.Equal(t, addr, frames[0].Source)
	})
}

// FuzzDTLSHelloCookie feeds the listener's readers of first flights with
// arbitrary datagrams, which reach them from anyone: they must never
// panic, must agree with isClientHello, and must find again a cookie put
// into a ClientHello they accept.
func FuzzDTLSHelloCookie(f *testing.F) {
	// A ClientHello without a cookie: record header, handshake header,
	// client_version, random, empty session_id and cookie, one cipher
	// suite, null compression.
	body := append([]byte{0xFE, 0xFD}, make([]byte, 32)...)
	body = append(body, 0, 0, 0, 2, 0xC0, 0xA8, 1, 0)
	hello := []byte{22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(12 + len(body))}
	hello = append(hello, 1, 0, 0, byte(len(body)), 0, 0, 0, 0, 0, 0, 0, byte(len(body)))
	hello = append(hello, body...)
	_, ok := clientHelloCookie(hello)
	require.True(f, ok, "the seed is a ClientHello")
	f.Add(hello, []byte("cookie"))
	withCookie, err := openssl.WithCookie(hello, bytes.Repeat([]byte{7}, 20))
	require.NoError(f, err)
	f.Add(withCookie, []byte{})
	f.Add([]byte{22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 3, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0xFE, 0xFF, 0}, []byte{1})
	f.Fuzz(func(t *testing.T, p, cookie []byte) {
		helloVerifyCookie(p)
		got, ok := clientHelloCookie(p)
		if !ok {
			return
		}
		require.True(t, isClientHello(p))
		if len(cookie) > 255 {
			return
		}
		q, err := openssl.WithCookie(p, cookie)
		require.NoError(t, err)
		got, ok = clientHelloCookie(q)
		require.True(t, ok, "% x", q)
		require.Equal(t, cookie, append([]byte{}, got...))
	})
}
