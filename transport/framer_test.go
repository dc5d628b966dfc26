package transport

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// got is a decoded frame copied out of the framer's buffer.
type got struct {
	Payload []byte
	Source  net.Addr
}

// decodeAll feeds chunks to fr in order and returns every frame.
func decodeAll(t testing.TB, fr Framer, chunks ...[]byte) []got {
	t.Helper()
	var out []got
	for _, p := range chunks {
		for {
			n, f, ok := fr.Decode(p)
			p = p[n:]
			if !ok {
				break
			}
			out = append(out, got{Payload: bytes.Clone(f.Payload), Source: f.Source})
		}
		if len(p) != 0 {
			t.Fatalf("Decode left %d bytes unconsumed without a frame", len(p))
		}
	}
	return out
}

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	var b []byte
	for _, f := range bytes.Fields([]byte(s)) {
		var v byte
		_, err := fmt.Sscanf(string(f), "%02X", &v)
		require.NoError(t, err, "hex %q", f)
		b = append(b, v)
	}
	return b
}

func newXBee(t testing.TB, escaped bool) *XBeeFramer {
	t.Helper()
	x, err := NewXBeeFramer(XBeeOptions{Escaped: escaped})
	require.NoError(t, err)
	return x
}

func newRaw(t testing.TB, maxPacket int) *RawFramer {
	t.Helper()
	r, err := NewRawFramer(maxPacket)
	require.NoError(t, err)
	return r
}

var node = XBeeAddr{Addr64: 0x0013A20040A1B2C3, Addr16: 0xFFFE}

// Transmit requests written out by hand from the Digi 0x10 layout:
// 7E, length (2), 10, frame id, 64-bit dest (8), 16-bit dest (2), radius,
// options, RF data, checksum = FF - (sum of frame data & FF).
var xbeeTxVectors = []struct {
	name    string
	escaped bool
	frameID byte // the framer numbers frames from 1
	dst     XBeeAddr
	payload []byte
	wire    string
}{
	{
		// Digi's own example: "TxData0A" to 0013A200400A0127, checksum 13.
		name: "digi example", frameID: 1,
		dst:     XBeeAddr{Addr64: 0x0013A200400A0127, Addr16: 0xFFFE},
		payload: []byte("TxData0A"),
		wire:    "7E 00 16 10 01 00 13 A2 00 40 0A 01 27 FF FE 00 00 54 78 44 61 74 61 30 41 13",
	},
	{
		// PINGREQ (02 16); sum of frame data 0x31 → checksum CE.
		name: "pingreq mode 1", frameID: 1, dst: node, payload: []byte{0x02, 0x16},
		wire: "7E 00 10 10 01 00 13 A2 00 40 A1 B2 C3 FF FE 00 00 02 16 CE",
	},
	{
		// Same frame in API mode 2: the 0x13 of the address becomes 7D 33.
		name: "pingreq mode 2", escaped: true, frameID: 1, dst: node, payload: []byte{0x02, 0x16},
		wire: "7E 00 10 10 01 00 7D 33 A2 00 40 A1 B2 C3 FF FE 00 00 02 16 CE",
	},
	{
		// Payload holding every escaped value; second frame, so id 02.
		name: "special bytes mode 1", frameID: 2, dst: node, payload: []byte{0x06, 0x0C, 0x7E, 0x7D, 0x11, 0x13},
		wire: "7E 00 14 10 02 00 13 A2 00 40 A1 B2 C3 FF FE 00 00 06 0C 7E 7D 11 13 B4",
	},
	{
		name: "special bytes mode 2", escaped: true, frameID: 2, dst: node, payload: []byte{0x06, 0x0C, 0x7E, 0x7D, 0x11, 0x13},
		wire: "7E 00 14 10 02 00 7D 33 A2 00 40 A1 B2 C3 FF FE 00 00 06 0C 7D 5E 7D 5D 7D 31 7D 33 B4",
	},
	{
		// Broadcast: 000000000000FFFF / FFFE; sum 0x424 → checksum DB.
		name: "broadcast", frameID: 1, dst: XBeeBroadcast, payload: []byte{0x02, 0x16},
		wire: "7E 00 10 10 01 00 00 00 00 00 00 FF FF FF FE 00 00 02 16 DB",
	},
}

func TestXBeeEncodeVectors(t *testing.T) {
	for _, tc := range xbeeTxVectors {
		t.Run(tc.name, func(t *testing.T) {
			x := newXBee(t, tc.escaped)
			var b []byte
			var err error
			for range tc.frameID {
				b, err = x.AppendFrame(b[:0], tc.payload, tc.dst)
				require.NoError(t, err)
			}
			assert.Equal(t, hexBytes(t, tc.wire), b)
			assert.Equal(t, uint64(tc.frameID), x.Stats().FramesOut)
		})
	}
}

func TestXBeeEncodeNoTxStatusUsesFrameIDZero(t *testing.T) {
	x, err := NewXBeeFramer(XBeeOptions{NoTxStatus: true})
	require.NoError(t, err)
	b, err := x.AppendFrame(nil, []byte{0x02, 0x16}, node)
	require.NoError(t, err)
	// Frame id 00: the sum drops by one, so the checksum rises by one.
	assert.Equal(t, hexBytes(t, "7E 00 10 10 00 00 13 A2 00 40 A1 B2 C3 FF FE 00 00 02 16 CF"), b)
}

func TestXBeeEncodeFrameIDWrapsPastZero(t *testing.T) {
	x := newXBee(t, false)
	var b []byte
	var err error
	for range 256 {
		b, err = x.AppendFrame(b[:0], []byte{0x02, 0x16}, node)
		require.NoError(t, err)
	}
	assert.Equal(t, byte(1), b[4], "frame id after 255 must skip 0")
}

func TestXBeeEncodeErrors(t *testing.T) {
	x, err := NewXBeeFramer(XBeeOptions{MaxPayload: 84})
	require.NoError(t, err)
	_, err = x.AppendFrame(nil, make([]byte, 85), node)
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	assert.Contains(t, err.Error(), "85")
	_, err = x.AppendFrame(nil, make([]byte, 84), node)
	require.NoError(t, err)
	_, err = x.AppendFrame(nil, []byte{2, 0x16}, SerialAddr{Device: "/dev/ttyUSB0"})
	require.ErrorIs(t, err, ErrAddrType)
	_, err = x.AppendFrame(nil, []byte{2, 0x16}, (*XBeeAddr)(nil))
	require.ErrorIs(t, err, ErrAddrType)
	b, err := x.AppendFrame(nil, []byte{2, 0x16}, &node)
	require.NoError(t, err)
	assert.Equal(t, node.Addr64>>56, uint64(b[5]))
}

// Receive packets written out by hand from the Digi 0x90 layout:
// 7E, length (2), 90, 64-bit source (8), 16-bit source (2), options, RF
// data, checksum.
var xbeeRxVectors = []struct {
	name    string
	escaped bool
	wire    string
	src     XBeeAddr
	payload []byte
}{
	{
		// Digi's own example: "RxData" from 0013A20040522BAA/7D84, checksum 0D.
		name: "digi example mode 1", wire: "7E 00 12 90 00 13 A2 00 40 52 2B AA 7D 84 01 52 78 44 61 74 61 0D",
		src: XBeeAddr{Addr64: 0x0013A20040522BAA, Addr16: 0x7D84}, payload: []byte("RxData"),
	},
	{
		name: "digi example mode 2", escaped: true, wire: "7E 00 12 90 00 7D 33 A2 00 40 52 2B AA 7D 5D 84 01 52 78 44 61 74 61 0D",
		src: XBeeAddr{Addr64: 0x0013A20040522BAA, Addr16: 0x7D84}, payload: []byte("RxData"),
	},
	{
		// PINGREQ from 0013A20040A1B2C3/1234; sum FA → checksum 05.
		name: "pingreq mode 1", wire: "7E 00 0E 90 00 13 A2 00 40 A1 B2 C3 12 34 01 02 16 05",
		src: XBeeAddr{Addr64: 0x0013A20040A1B2C3, Addr16: 0x1234}, payload: []byte{0x02, 0x16},
	},
	{
		name: "pingreq mode 2", escaped: true, wire: "7E 00 0E 90 00 7D 33 A2 00 40 A1 B2 C3 12 34 01 02 16 05",
		src: XBeeAddr{Addr64: 0x0013A20040A1B2C3, Addr16: 0x1234}, payload: []byte{0x02, 0x16},
	},
}

func TestXBeeDecodeVectors(t *testing.T) {
	for _, tc := range xbeeRxVectors {
		t.Run(tc.name, func(t *testing.T) {
			x := newXBee(t, tc.escaped)
			frames := decodeAll(t, x, hexBytes(t, tc.wire))
			require.Len(t, frames, 1)
			assert.Equal(t, tc.payload, frames[0].Payload)
			assert.Equal(t, net.Addr(tc.src), frames[0].Source)
			assert.Equal(t, FramerStats{FramesIn: 1}, x.Stats())
		})
	}
}

func TestXBeeDecodeSplitAtEveryBoundary(t *testing.T) {
	for _, tc := range xbeeRxVectors {
		wire := hexBytes(t, tc.wire)
		// Three frames back to back, so splits also fall between frames.
		stream := bytes.Repeat(wire, 3)
		for i := 0; i <= len(stream); i++ {
			for j := i; j <= len(stream); j++ {
				x := newXBee(t, tc.escaped)
				frames := decodeAll(t, x, stream[:i], stream[i:j], stream[j:])
				require.Len(t, frames, 3, "%s split at %d,%d", tc.name, i, j)
				for _, f := range frames {
					assert.Equal(t, tc.payload, f.Payload)
				}
			}
		}
	}
}

func TestXBeeStatusFramesConsumed(t *testing.T) {
	// 8B: frame id, 16-bit dest, retries, delivery status, discovery status.
	ok := hexBytes(t, "7E 00 07 8B 01 FF FE 00 00 00 76")
	fail := hexBytes(t, "7E 00 07 8B 02 FF FE 03 21 00 51") // 0x21: network ACK failure
	// 8A: status 06, coordinator started.
	modem := hexBytes(t, "7E 00 02 8A 06 6F")
	// 88 AT command response: not used by the link.
	at := hexBytes(t, "7E 00 05 88 01 42 44 00 F0")
	rx := hexBytes(t, xbeeRxVectors[2].wire)
	x := newXBee(t, false)
	frames := decodeAll(t, x, bytes.Join([][]byte{ok, fail, modem, at, rx}, nil))
	require.Len(t, frames, 1)
	assert.Equal(t, []byte{0x02, 0x16}, frames[0].Payload)
	assert.Equal(t, FramerStats{FramesIn: 1, TxStatusOK: 1, TxStatusFail: 1, ModemStatus: 1, Ignored: 1}, x.Stats())
}

func TestXBeeMalformedShortFrames(t *testing.T) {
	// A 0x90 with only 5 bytes of frame data, a 0x8B and a 0x8A too short.
	x := newXBee(t, false)
	var stream []byte
	for _, data := range [][]byte{{0x90, 0, 0x13, 0xA2, 0}, {0x8B, 1}, {0x8A}} {
		stream = appendAPIFrame(stream, data, false)
	}
	stream = append(stream, hexBytes(t, xbeeRxVectors[2].wire)...)
	frames := decodeAll(t, x, stream)
	require.Len(t, frames, 1)
	assert.Equal(t, uint64(3), x.Stats().Malformed)
}

func TestXBeeBadChecksumResyncs(t *testing.T) {
	for _, escaped := range []bool{false, true} {
		t.Run(fmt.Sprint("escaped=", escaped), func(t *testing.T) {
			good := hexBytes(t, xbeeRxVectors[2].wire)
			if escaped {
				good = hexBytes(t, xbeeRxVectors[3].wire)
			}
			bad := bytes.Clone(good)
			bad[len(bad)-1] ^= 0x01
			x := newXBee(t, escaped)
			frames := decodeAll(t, x, bad, good)
			require.Len(t, frames, 1)
			st := x.Stats()
			assert.Equal(t, uint64(1), st.BadChecksums)
			assert.Equal(t, uint64(1), st.Resyncs)
			assert.Equal(t, uint64(len(bad)), st.GarbageBytes)
		})
	}
}

func TestXBeeGarbageBetweenFrames(t *testing.T) {
	for _, escaped := range []bool{false, true} {
		t.Run(fmt.Sprint("escaped=", escaped), func(t *testing.T) {
			good := hexBytes(t, xbeeRxVectors[2].wire)
			if escaped {
				good = hexBytes(t, xbeeRxVectors[3].wire)
			}
			garbage := []byte{0x00, 0x55, 0xAA, 0x13, 0x11}
			stream := bytes.Join([][]byte{garbage, good, garbage, good, garbage}, nil)
			x := newXBee(t, escaped)
			frames := decodeAll(t, x, stream)
			assert.Len(t, frames, 2)
			st := x.Stats()
			assert.Equal(t, uint64(3*len(garbage)), st.GarbageBytes)
			assert.Equal(t, uint64(3), st.Resyncs)
			assert.False(t, x.Pending())
		})
	}
}

func TestXBeeBadLengthResyncs(t *testing.T) {
	// A delimiter followed by a zero length, then one with a length beyond
	// any frame the link accepts: both are skipped at once, without waiting
	// for the bytes such a length announces.
	good := hexBytes(t, xbeeRxVectors[2].wire)
	stream := append([]byte{0x7E, 0x00, 0x00, 0x7E, 0xFF, 0xFF}, good...)
	x := newXBee(t, false)
	frames := decodeAll(t, x, stream)
	require.Len(t, frames, 1)
	assert.Equal(t, uint64(6), x.Stats().GarbageBytes)
}

func TestXBeeMode2DelimiterCutsFrame(t *testing.T) {
	// In API mode 2 a bare 0x7E always starts a frame, so a frame cut short
	// by one is abandoned at once; the bytes before it are garbage.
	good := hexBytes(t, xbeeRxVectors[3].wire)
	stream := append(bytes.Clone(good[:9]), good...)
	x := newXBee(t, true)
	frames := decodeAll(t, x, stream)
	require.Len(t, frames, 1)
	assert.Equal(t, uint64(9), x.Stats().GarbageBytes)
	// An escape followed by a delimiter is cut the same way.
	stream = append(append(bytes.Clone(good[:9]), 0x7D), good...)
	x = newXBee(t, true)
	frames = decodeAll(t, x, stream)
	require.Len(t, frames, 1)
	assert.Equal(t, uint64(10), x.Stats().GarbageBytes)
}

func TestXBeeExpireRecoversFromFalseStart(t *testing.T) {
	// In API mode 1 a stray 0x7E with a plausible length swallows the real
	// frame behind it until Expire abandons it.
	good := hexBytes(t, xbeeRxVectors[2].wire)
	x := newXBee(t, false)
	frames := decodeAll(t, x, []byte{0x7E, 0x00, 0x40}, good)
	require.Empty(t, frames)
	require.True(t, x.Pending())
	x.Expire()
	frames = decodeAll(t, x, nil)
	require.Len(t, frames, 1)
	assert.Equal(t, []byte{0x02, 0x16}, frames[0].Payload)
	st := x.Stats()
	assert.Equal(t, uint64(1), st.Timeouts)
	assert.Equal(t, uint64(3), st.GarbageBytes)
}

func TestXBeeLargestFrame(t *testing.T) {
	for _, escaped := range []bool{false, true} {
		x := newXBee(t, escaped)
		payload := bytes.Repeat([]byte{0x7E}, DefaultXBeeMaxPayload) // worst case for escaping
		wire := appendRxFrame(nil, node, payload, escaped)
		frames := decodeAll(t, x, wire, wire)
		require.Len(t, frames, 2)
		assert.Equal(t, payload, frames[1].Payload)
	}
}

func TestXBeeAddr(t *testing.T) {
	assert.Equal(t, "0013a20040a1b2c3/fffe", node.String())
	assert.Equal(t, "xbee", node.Network())
	assert.Equal(t, "000000000000ffff/fffe", XBeeBroadcast.String())
	for _, s := range []string{"0013a20040a1b2c3/fffe", "0013A20040A1B2C3/FFFE", "13a20040a1b2c3"} {
		a, err := ParseXBeeAddr(s)
		require.NoError(t, err, s)
		assert.Equal(t, node, a, s)
	}
	for _, s := range []string{"", "/fffe", "0013a20040a1b2c3/", "0013a20040a1b2c3/12345", "0013a20040a1b2c3ff", "xyz", "12/zz"} {
		_, err := ParseXBeeAddr(s)
		assert.ErrorIs(t, err, ErrInvalidOptions, s)
	}
}

func TestFramerOptionErrors(t *testing.T) {
	for _, n := range []int{-1, 3, MaxRawPacket + 1} {
		_, err := NewRawFramer(n)
		assert.ErrorIs(t, err, ErrInvalidOptions, n)
	}
	for _, n := range []int{-1, maxXBeePayload + 1} {
		_, err := NewXBeeFramer(XBeeOptions{MaxPayload: n})
		assert.ErrorIs(t, err, ErrInvalidOptions, n)
	}
}

// Raw framing: MQTT-SN packets back to back, delimited by their length.
var (
	rawPingreq  = []byte{0x02, 0x16}                                           // 1-octet length
	rawSearchgw = []byte{0x03, 0x01, 0x00}                                     // SEARCHGW radius 0
	rawLongForm = append([]byte{0x01, 0x01, 0x04, 0x0C}, make([]byte, 256)...) // 260 octets, 3-octet length
	rawShortAs3 = []byte{0x01, 0x00, 0x04, 0x16}                               // a 4-octet packet in the 3-octet form
)

func TestRawDecode(t *testing.T) {
	stream := bytes.Join([][]byte{rawPingreq, rawSearchgw, rawLongForm, rawShortAs3}, nil)
	want := [][]byte{rawPingreq, rawSearchgw, rawLongForm, rawShortAs3}
	for i := 0; i <= len(stream); i++ {
		r := newRaw(t, 0)
		frames := decodeAll(t, r, stream[:i], stream[i:])
		require.Len(t, frames, len(want), "split at %d", i)
		for k, f := range frames {
			assert.Equal(t, want[k], f.Payload)
			assert.Nil(t, f.Source)
		}
	}
	// And one byte at a time.
	r := newRaw(t, 0)
	var chunks [][]byte
	for i := range stream {
		chunks = append(chunks, stream[i:i+1])
	}
	assert.Len(t, decodeAll(t, r, chunks...), len(want))
	assert.Equal(t, FramerStats{FramesIn: uint64(len(want))}, r.Stats())
}

func TestRawGarbageResync(t *testing.T) {
	cases := []struct {
		name    string
		garbage []byte
	}{
		{"zero octets", []byte{0x00, 0x00, 0x00}},
		{"long form below minimum", []byte{0x01, 0x00, 0x00}},
		{"long form above maximum", []byte{0x01, 0xFF, 0xFF}}, // and 0xFF alone exceeds 64
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := bytes.Join([][]byte{tc.garbage, rawPingreq, tc.garbage, rawSearchgw}, nil)
			for i := 0; i <= len(stream); i++ {
				r := newRaw(t, 64)
				frames := decodeAll(t, r, stream[:i], stream[i:])
				require.Len(t, frames, 2, "split at %d", i)
				assert.Equal(t, rawPingreq, frames[0].Payload)
				assert.Equal(t, rawSearchgw, frames[1].Payload)
				st := r.Stats()
				assert.Equal(t, uint64(2*len(tc.garbage)), st.GarbageBytes)
				assert.Equal(t, uint64(2), st.Resyncs)
			}
		})
	}
}

func TestRawRescanAfterBadLongForm(t *testing.T) {
	// Skipping the 0x01 of an impossible long form rescans the octets
	// after it: here 0x00 is skipped too and 0x03 starts a valid packet.
	r := newRaw(t, 0)
	frames := decodeAll(t, r, []byte{0x01, 0x00, 0x03, 0x02, 0x16})
	require.Len(t, frames, 1)
	assert.Equal(t, []byte{0x03, 0x02, 0x16}, frames[0].Payload)
	assert.Equal(t, uint64(2), r.Stats().GarbageBytes)
}

func TestRawOversizeSkipped(t *testing.T) {
	r := newRaw(t, 64)
	// 0xFF announces 255 octets, more than the maximum of 64: skipped at once.
	frames := decodeAll(t, r, append([]byte{0xFF}, rawPingreq...))
	require.Len(t, frames, 1)
	assert.Equal(t, uint64(1), r.Stats().GarbageBytes)
}

func TestRawExpireRecoversFromPlausibleGarbage(t *testing.T) {
	// 0x40 looks like the start of a 64-octet packet and would hold back the
	// PINGREQ behind it until 64 octets arrived; Expire gives up on it.
	r := newRaw(t, 0)
	frames := decodeAll(t, r, []byte{0x40}, rawPingreq)
	require.Empty(t, frames)
	require.True(t, r.Pending())
	r.Expire()
	frames = decodeAll(t, r, nil)
	require.Len(t, frames, 1)
	assert.Equal(t, rawPingreq, frames[0].Payload)
	assert.False(t, r.Pending())
	st := r.Stats()
	assert.Equal(t, uint64(1), st.Timeouts)
	assert.Equal(t, uint64(1), st.GarbageBytes)
	r.Expire() // nothing pending: no effect
	assert.Equal(t, uint64(1), r.Stats().Timeouts)
}

func TestRawReset(t *testing.T) {
	r := newRaw(t, 0)
	assert.Empty(t, decodeAll(t, r, rawSearchgw[:2]))
	r.Reset()
	assert.False(t, r.Pending())
	frames := decodeAll(t, r, rawPingreq)
	require.Len(t, frames, 1)
	assert.Equal(t, rawPingreq, frames[0].Payload)
}

func TestRawEncode(t *testing.T) {
	r := newRaw(t, 300)
	for _, p := range [][]byte{rawPingreq, rawSearchgw, rawLongForm, rawShortAs3} {
		b, err := r.AppendFrame([]byte{0xAA}, p, nil)
		require.NoError(t, err)
		assert.Equal(t, append([]byte{0xAA}, p...), b)
	}
	for name, p := range map[string][]byte{
		"empty":           {},
		"one octet":       {0x02},
		"length too long": {0x05, 0x16},
		"length short":    {0x02, 0x16, 0x00},
		"zero length":     {0x00, 0x16},
		"long form short": {0x01, 0x00},
		"long form below": {0x01, 0x00, 0x03},
	} {
		_, err := r.AppendFrame(nil, p, nil)
		assert.ErrorIs(t, err, ErrBadPacket, name)
	}
	_, err := r.AppendFrame(nil, append([]byte{0x01, 0x01, 0x2D}, make([]byte, 298)...), nil)
	assert.ErrorIs(t, err, ErrPayloadTooLarge)
}

// appendAPIFrame appends an API frame around frame data, as a module would
// send it; written independently of the framer's encoder.
func appendAPIFrame(b, data []byte, escaped bool) []byte {
	var sum byte
	for _, c := range data {
		sum += c
	}
	body := append([]byte{byte(len(data) >> 8), byte(len(data))}, data...)
	body = append(body, 0xFF-sum)
	b = append(b, 0x7E)
	for _, c := range body {
		if escaped && (c == 0x7E || c == 0x7D || c == 0x11 || c == 0x13) {
			b = append(b, 0x7D, c^0x20)
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendRxFrame appends a 0x90 Receive Packet from src carrying payload.
func appendRxFrame(b []byte, src XBeeAddr, payload []byte, escaped bool) []byte {
	data := []byte{0x90}
	data = append(data, byte(src.Addr64>>56), byte(src.Addr64>>48), byte(src.Addr64>>40), byte(src.Addr64>>32),
		byte(src.Addr64>>24), byte(src.Addr64>>16), byte(src.Addr64>>8), byte(src.Addr64))
	data = append(data, byte(src.Addr16>>8), byte(src.Addr16), 0x01)
	data = append(data, payload...)
	return appendAPIFrame(b, data, escaped)
}

// parseAPIFrame undoes appendAPIFrame for exactly one frame, checking the
// checksum, and returns the frame data.
func parseAPIFrame(wire []byte, escaped bool) ([]byte, error) {
	if len(wire) < 1 || wire[0] != 0x7E {
		return nil, fmt.Errorf("no start delimiter")
	}
	var body []byte
	for i := 1; i < len(wire); i++ {
		c := wire[i]
		if escaped && c == 0x7D {
			if i+1 >= len(wire) {
				return nil, fmt.Errorf("dangling escape")
			}
			i++
			c = wire[i] ^ 0x20
		} else if escaped && (c == 0x7E || c == 0x11 || c == 0x13) {
			return nil, fmt.Errorf("unescaped %#x at %d", c, i)
		}
		body = append(body, c)
	}
	if len(body) < 3 {
		return nil, fmt.Errorf("short frame")
	}
	n := int(body[0])<<8 | int(body[1])
	if n != len(body)-3 {
		return nil, fmt.Errorf("length %d, frame data %d", n, len(body)-3)
	}
	data := body[2 : 2+n]
	if checksum(data) != body[len(body)-1] {
		return nil, fmt.Errorf("bad checksum")
	}
	return data, nil
}

// TestRawFramerEncapsulated: messages a forwarder wraps for several nodes
// share one raw line; each frame is the whole Encapsulated message.
func TestRawFramerEncapsulated(t *testing.T) {
	f, err := NewRawFramer(DefaultRawMaxPacket)
	require.NoError(t, err)
	inner := []byte{0x04, 0x16, 'h', 'i'}                            // PINGREQ(ClientId "hi")
	enc1 := append([]byte{0x05, 0xFE, 0x00, 0x00, 0x01}, inner...)   // node 0x0001
	enc2 := append([]byte{0x05, 0xFE, 0x00, 0x00, 0x02}, 0x02, 0x17) // node 0x0002, PINGRESP
	stream := append(append(append([]byte{}, enc1...), enc2...), 0x02, 0x17)
	var got [][]byte
	for i := range stream { // one byte at a time: every split point
		p := stream[i : i+1]
		for {
			n, fr, ok := f.Decode(p)
			p = p[n:]
			if !ok {
				break
			}
			got = append(got, append([]byte(nil), fr.Payload...))
		}
	}
	require.Equal(t, [][]byte{enc1, enc2, {0x02, 0x17}}, got)
	out, err := f.AppendFrame(nil, enc1, nil)
	require.NoError(t, err)
	assert.Equal(t, enc1, out)
}
