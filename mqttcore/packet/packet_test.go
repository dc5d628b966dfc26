package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/archtest"
)

func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/mqttcore/packet")
}

// readBytes reads one packet from b and requires that it used all of b.
func readBytes(t *testing.T, b []byte, v Version) (Packet, error) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	p, err := Read(r, v, 0)
	if err == nil {
		_, extra := r.ReadByte()
		require.ErrorIs(t, extra, io.EOF, "Read left bytes unread")
	}
	return p, err
}

func (tp tpacket) writeVersion() Version { return tp.version }

func TestReadTable(t *testing.T) {
	for _, tp := range tpackets {
		t.Run(tp.name, func(t *testing.T) {
			p, err := readBytes(t, tp.raw, tp.readVersion())
			require.NoError(t, err)
			assert.Equal(t, tp.packet, p)
			assert.Equal(t, Type(tp.raw[0]>>4), p.Type())
		})
	}
}

func TestAppendTable(t *testing.T) {
	for _, tp := range tpackets {
		if tp.decodeOnly {
			continue
		}
		t.Run(tp.name, func(t *testing.T) {
			prefix := []byte("prefix")
			b, err := Append(prefix, tp.packet, tp.writeVersion())
			require.NoError(t, err)
			assert.Equal(t, "prefix", string(b[:len(prefix)]), "Append must keep what b held")
			assert.Equal(t, tp.raw, b[len(prefix):])
			n, err := Size(tp.packet, tp.writeVersion())
			require.NoError(t, err)
			assert.Equal(t, len(tp.raw), n)
		})
	}
}

func TestRoundTripTable(t *testing.T) {
	for _, tp := range tpackets {
		t.Run(tp.name, func(t *testing.T) {
			p, err := readBytes(t, tp.raw, tp.readVersion())
			require.NoError(t, err)
			b, err := Append(nil, p, tp.writeVersion())
			require.NoError(t, err)
			n, err := Size(p, tp.writeVersion())
			require.NoError(t, err)
			assert.Len(t, b, n)
			again, err := readBytes(t, b, tp.readVersion())
			require.NoError(t, err)
			assert.Equal(t, p, again)
		})
	}
}

// TestTruncated cuts every table packet at every point: Read must fail with
// io.EOF at the packet boundary and io.ErrUnexpectedEOF inside it, and never
// panic.
func TestTruncated(t *testing.T) {
	for _, tp := range tpackets {
		t.Run(tp.name, func(t *testing.T) {
			for cut := 0; cut < len(tp.raw); cut++ {
				_, err := Read(bufio.NewReader(bytes.NewReader(tp.raw[:cut])), tp.readVersion(), 0)
				if cut == 0 {
					assert.Equal(t, io.EOF, err, "cut at 0")
					continue
				}
				assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", cut)
			}
		})
	}
}

// TestShortBody keeps the header of every table packet but declares and
// supplies fewer body bytes, so the lengths inside the packet overrun it:
// Read must fail cleanly with a sentinel or succeed with a shorter legal
// packet, and never panic.
func TestShortBody(t *testing.T) {
	for _, tp := range tpackets {
		t.Run(tp.name, func(t *testing.T) {
			_, hdr, err := readRemainingLength(bufio.NewReader(bytes.NewReader(tp.raw[1:])))
			require.NoError(t, err)
			body := tp.raw[1+hdr:]
			for n := 0; n < len(body); n++ {
				raw := appendVarInt([]byte{tp.raw[0]}, n)
				raw = append(raw, body[:n]...)
				_, err := readBytes(t, raw, tp.readVersion())
				if err != nil {
					assert.True(t, errors.Is(err, ErrMalformed) || errors.Is(err, ErrProtocolError) ||
						errors.Is(err, ErrUnsupportedVersion), "body cut at %d: %v", n, err)
				}
			}
		})
	}
}

func TestReadMalformed(t *testing.T) {
	connect311 := func(flags byte, rest ...byte) []byte {
		b := []byte{0x10, byte(10 + len(rest)), 0, 4, 'M', 'Q', 'T', 'T', 4, flags, 0, 60}
		return append(b, rest...)
	}
	publish5 := func(props ...byte) []byte {
		b := []byte{0x32, byte(8 + len(props)), 0, 3, 'a', '/', 'b', 0, 1, byte(len(props))}
		return append(b, props...)
	}
	connect5 := func(props ...byte) []byte {
		b := []byte{0x10, byte(13 + len(props)), 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, byte(len(props))}
		return append(append(b, props...), 0, 0)
	}
	subscribe5 := func(opts byte, props ...byte) []byte {
		b := []byte{0x82, byte(7 + len(props)), 0, 1, byte(len(props))}
		return append(append(b, props...), 0, 1, 'a', opts)
	}
	tests := []struct {
		name    string
		version Version
		raw     []byte
		want    error
	}{
		// fixed header (3.1.1 §2.2, 5.0 §2.1)
		{"reserved type 0", V311, []byte{0x00, 0}, ErrMalformed},
		{"AUTH in 3.1.1", V311, []byte{0xF0, 0}, ErrMalformed},
		{"SUBSCRIBE flags 0000", V311, []byte{0x80, 6, 0, 1, 0, 1, 'a', 0}, ErrMalformed},
		{"UNSUBSCRIBE flags 0000", V311, []byte{0xA0, 5, 0, 1, 0, 1, 'a'}, ErrMalformed},
		{"PUBREL flags 0000", V311, []byte{0x60, 2, 0, 1}, ErrMalformed},
		{"PUBACK flags 0010", V311, []byte{0x42, 2, 0, 1}, ErrMalformed},
		{"PINGREQ flags 0001", V5, []byte{0xC1, 0}, ErrMalformed},
		{"DISCONNECT flags 1000", V5, []byte{0xE8, 0}, ErrMalformed},
		{"CONNECT flags 0010", 0, []byte{0x12, 0}, ErrMalformed},
		{"remaining length of 5 bytes", V5, []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, ErrMalformed},
		{"PINGREQ with body", V311, []byte{0xC0, 1, 0}, ErrMalformed},
		{"PINGRESP with body", V5, []byte{0xD0, 1, 0}, ErrMalformed},
		// connection order
		{"first packet not CONNECT", 0, []byte{0xC0, 0}, ErrProtocolError},
		{"second CONNECT", V311, []byte{0x10, 0}, ErrProtocolError},
		// CONNECT (3.1.1 §3.1.2, 5.0 §3.1.2)
		{"CONNECT reserved flag", 0, connect311(0x03, 0, 0), ErrMalformed},
		{"CONNECT will QoS 3", 0, connect311(0x1E, 0, 0, 0, 1, 'w', 0, 0), ErrMalformed},
		{"CONNECT will retain without will", 0, connect311(0x22, 0, 0), ErrMalformed},
		{"CONNECT will QoS without will", 0, connect311(0x0A, 0, 0), ErrMalformed},
		{"CONNECT 3.1.1 password without user name", 0, connect311(0x42, 0, 0, 0, 1, 'p'), ErrMalformed},
		{"CONNECT trailing bytes", 0, connect311(0x02, 0, 0, 9), ErrMalformed},
		{"CONNECT missing will", 0, connect311(0x06, 0, 0), ErrMalformed},
		{"CONNECT level 6", 0, []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 0}, ErrUnsupportedVersion},
		{"CONNECT level 2", 0, []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 2, 0x02, 0, 60, 0, 0}, ErrUnsupportedVersion},
		{"CONNECT name MQTX", 0, []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'X', 4, 0x02, 0, 60, 0, 0}, ErrUnsupportedVersion},
		{"CONNECT MQIsdp level 4", 0, []byte{0x10, 14, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 0x02, 0, 60, 0, 0}, ErrUnsupportedVersion},
		{"CONNECT client id with U+0000", 0, connect311(0x02, 0, 1, 0), ErrMalformed},
		{"CONNECT v5 authentication data without method", 0, connect5(0x16, 0, 1, 1), ErrProtocolError},
		{"CONNECT v5 receive maximum 0", 0, connect5(0x21, 0, 0), ErrProtocolError},
		{"CONNECT v5 maximum packet size 0", 0, connect5(0x27, 0, 0, 0, 0), ErrProtocolError},
		{"CONNECT v5 request problem information 2", 0, connect5(0x17, 2), ErrProtocolError},
		{"CONNECT v5 duplicate session expiry", 0, connect5(0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2), ErrProtocolError},
		{"CONNECT v5 will delay outside will", 0, connect5(0x18, 0, 0, 0, 1), ErrMalformed},
		{"CONNECT v5 property length past end", 0, []byte{0x10, 11, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 9}, ErrMalformed},
		// CONNACK (3.1.1 §3.2, 5.0 §3.2)
		{"CONNACK reserved flags", V311, []byte{0x20, 2, 0x02, 0}, ErrMalformed},
		{"CONNACK 3.1.1 return code 6", V311, []byte{0x20, 2, 0, 6}, ErrProtocolError},
		{"CONNACK session present with failure", V311, []byte{0x20, 2, 1, 5}, ErrProtocolError},
		{"CONNACK v5 session present with failure", V5, []byte{0x20, 3, 1, 0x87, 0}, ErrProtocolError},
		{"CONNACK v5 reason 0x10", V5, []byte{0x20, 3, 0, 0x10, 0}, ErrProtocolError},
		{"CONNACK v5 maximum QoS 2", V5, []byte{0x20, 5, 0, 0, 2, 0x24, 2}, ErrProtocolError},
		{"CONNACK v5 topic alias in CONNACK", V5, []byte{0x20, 6, 0, 0, 3, 0x23, 0, 1}, ErrMalformed},
		// PUBLISH (3.1.1 §3.3, 5.0 §3.3)
		{"PUBLISH QoS 3", V311, []byte{0x36, 7, 0, 3, 'a', '/', 'b', 0, 1}, ErrMalformed},
		{"PUBLISH DUP on QoS 0", V311, []byte{0x38, 5, 0, 3, 'a', '/', 'b'}, ErrProtocolError},
		{"PUBLISH QoS 1 packet id 0", V311, []byte{0x32, 7, 0, 3, 'a', '/', 'b', 0, 0}, ErrProtocolError},
		{"PUBLISH QoS 1 without packet id", V311, []byte{0x32, 5, 0, 3, 'a', '/', 'b'}, ErrMalformed},
		{"PUBLISH 3.1.1 empty topic", V311, []byte{0x30, 2, 0, 0}, ErrProtocolError},
		{"PUBLISH v5 empty topic without alias", V5, []byte{0x30, 3, 0, 0, 0}, ErrProtocolError},
		{"PUBLISH topic with U+0000", V311, []byte{0x30, 5, 0, 3, 'a', 0, 'b'}, ErrMalformed},
		{"PUBLISH topic not UTF-8", V311, []byte{0x30, 5, 0, 3, 'a', 0xFF, 'b'}, ErrMalformed},
		{"PUBLISH topic overlong UTF-8", V311, []byte{0x30, 4, 0, 2, 0xC0, 0xAF}, ErrMalformed},
		{"PUBLISH topic with surrogate", V311, []byte{0x30, 5, 0, 3, 0xED, 0xA0, 0x80}, ErrMalformed},
		{"PUBLISH topic length past end", V311, []byte{0x30, 3, 0, 5, 'a'}, ErrMalformed},
		{"PUBLISH v5 unknown property", V5, publish5(0x05, 0), ErrMalformed},
		{"PUBLISH v5 session expiry", V5, publish5(0x11, 0, 0, 0, 1), ErrMalformed},
		{"PUBLISH v5 duplicate payload format", V5, publish5(0x01, 0, 0x01, 1), ErrProtocolError},
		{"PUBLISH v5 payload format 2", V5, publish5(0x01, 2), ErrProtocolError},
		{"PUBLISH v5 topic alias 0", V5, publish5(0x23, 0, 0), ErrProtocolError},
		{"PUBLISH v5 duplicate topic alias", V5, publish5(0x23, 0, 1, 0x23, 0, 2), ErrProtocolError},
		{"PUBLISH v5 subscription identifier 0", V5, publish5(0x0B, 0), ErrProtocolError},
		{"PUBLISH v5 subscription identifier of 5 bytes", V5, publish5(0x0B, 0x80, 0x80, 0x80, 0x80, 0x01), ErrMalformed},
		{"PUBLISH v5 response topic wildcard", V5, publish5(0x08, 0, 1, '#'), ErrProtocolError},
		{"PUBLISH v5 user property without value", V5, publish5(0x26, 0, 1, 'k'), ErrMalformed},
		{"PUBLISH v5 content type not UTF-8", V5, publish5(0x03, 0, 1, 0x80), ErrMalformed},
		{"PUBLISH v5 truncated property", V5, publish5(0x02, 0, 0), ErrMalformed},
		// acknowledgements (5.0 §3.4-§3.7)
		{"PUBACK packet id 0", V311, []byte{0x40, 2, 0, 0}, ErrProtocolError},
		{"PUBACK 3.1.1 with reason code", V311, []byte{0x40, 3, 0, 1, 0}, ErrMalformed},
		{"PUBACK missing packet id", V5, []byte{0x40, 1, 0}, ErrMalformed},
		{"PUBACK v5 reason 0x92", V5, []byte{0x40, 3, 0, 1, 0x92}, ErrProtocolError},
		{"PUBREL v5 reason 0x10", V5, []byte{0x62, 3, 0, 1, 0x10}, ErrProtocolError},
		{"PUBCOMP v5 reason 0x80", V5, []byte{0x70, 3, 0, 1, 0x80}, ErrProtocolError},
		{"PUBACK v5 topic alias", V5, []byte{0x40, 7, 0, 1, 0, 3, 0x23, 0, 1}, ErrMalformed},
		// SUBSCRIBE, SUBACK (3.1.1 §3.8-§3.9, 5.0 §3.8-§3.9)
		{"SUBSCRIBE without filters", V311, []byte{0x82, 2, 0, 1}, ErrProtocolError},
		{"SUBSCRIBE v5 without filters", V5, []byte{0x82, 3, 0, 1, 0}, ErrProtocolError},
		{"SUBSCRIBE packet id 0", V311, []byte{0x82, 6, 0, 0, 0, 1, 'a', 0}, ErrProtocolError},
		{"SUBSCRIBE without options", V311, []byte{0x82, 5, 0, 1, 0, 1, 'a'}, ErrMalformed},
		{"SUBSCRIBE 3.1.1 reserved option bits", V311, []byte{0x82, 6, 0, 1, 0, 1, 'a', 0x04}, ErrMalformed},
		{"SUBSCRIBE 3.1.1 QoS 3", V311, []byte{0x82, 6, 0, 1, 0, 1, 'a', 0x03}, ErrMalformed},
		{"SUBSCRIBE v5 reserved option bits", V5, subscribe5(0x40), ErrMalformed},
		{"SUBSCRIBE v5 QoS 3", V5, subscribe5(0x03), ErrProtocolError},
		{"SUBSCRIBE v5 retain handling 3", V5, subscribe5(0x30), ErrProtocolError},
		{"SUBSCRIBE v5 two subscription identifiers", V5, subscribe5(0, 0x0B, 1, 0x0B, 2), ErrProtocolError},
		{"SUBSCRIBE v5 subscription identifier 0", V5, subscribe5(0, 0x0B, 0), ErrProtocolError},
		{"SUBSCRIBE v5 reason string", V5, subscribe5(0, 0x1F, 0, 1, 'x'), ErrMalformed},
		{"SUBACK without codes", V311, []byte{0x90, 2, 0, 1}, ErrProtocolError},
		{"SUBACK 3.1.1 return code 3", V311, []byte{0x90, 3, 0, 1, 3}, ErrProtocolError},
		{"SUBACK v5 reason 0x11", V5, []byte{0x90, 4, 0, 1, 0, 0x11}, ErrProtocolError},
		// UNSUBSCRIBE, UNSUBACK (3.1.1 §3.10-§3.11, 5.0 §3.10-§3.11)
		{"UNSUBSCRIBE without filters", V311, []byte{0xA2, 2, 0, 1}, ErrProtocolError},
		{"UNSUBSCRIBE packet id 0", V5, []byte{0xA2, 6, 0, 0, 0, 0, 1, 'a'}, ErrProtocolError},
		{"UNSUBSCRIBE v5 subscription identifier", V5, []byte{0xA2, 8, 0, 1, 2, 0x0B, 1, 0, 1, 'a'}, ErrMalformed},
		{"UNSUBACK 3.1.1 with codes", V311, []byte{0xB0, 3, 0, 1, 0}, ErrMalformed},
		{"UNSUBACK v5 without codes", V5, []byte{0xB0, 3, 0, 1, 0}, ErrProtocolError},
		{"UNSUBACK v5 reason 0x10", V5, []byte{0xB0, 4, 0, 1, 0, 0x10}, ErrProtocolError},
		// DISCONNECT, AUTH (3.1.1 §3.14, 5.0 §3.14-§3.15)
		{"DISCONNECT 3.1.1 with body", V311, []byte{0xE0, 1, 0}, ErrMalformed},
		{"DISCONNECT v5 reason 0x01", V5, []byte{0xE0, 1, 0x01}, ErrProtocolError},
		{"DISCONNECT v5 session expiry twice", V5, []byte{0xE0, 12, 0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1}, ErrProtocolError},
		{"DISCONNECT v5 property length past end", V5, []byte{0xE0, 2, 0, 5}, ErrMalformed},
		{"DISCONNECT v5 trailing bytes", V5, []byte{0xE0, 3, 0, 0, 0}, ErrMalformed},
		{"AUTH v5 reason 0x01", V5, []byte{0xF0, 2, 0x01, 0}, ErrProtocolError},
		{"AUTH v5 session expiry", V5, []byte{0xF0, 7, 0x18, 5, 0x11, 0, 0, 0, 1}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := readBytes(t, tt.raw, tt.version)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want, "got %v", err)
			assert.Nil(t, p)
			assert.NotPanics(t, func() { _ = err.Error() })
		})
	}
}

func TestReadUnknownVersion(t *testing.T) {
	_, err := readBytes(t, []byte{0xC0, 0}, Version(7))
	assert.ErrorIs(t, err, ErrUnsupportedVersion)
}

func TestReadV31AfterConnect(t *testing.T) {
	p, err := readBytes(t, []byte{0x62, 2, 0, 7}, V31)
	require.NoError(t, err)
	assert.Equal(t, &AckPacket{PacketType: Pubrel, PacketID: 7}, p)
}

func TestReadStream(t *testing.T) {
	// Two packets back to back, then a clean end: the second read must not
	// see bytes of the first and the third must be io.EOF itself.
	var stream []byte
	stream = append(stream, 0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i')
	stream = append(stream, 0x30, 7, 0, 3, 'c', '/', 'd', 'y', 'o')
	r := bufio.NewReader(bytes.NewReader(stream))
	first, err := Read(r, V311, 0)
	require.NoError(t, err)
	second, err := Read(r, V311, 0)
	require.NoError(t, err)
	_, err = Read(r, V311, 0)
	assert.Equal(t, io.EOF, err)
	assert.Equal(t, &PublishPacket{Topic: "a/b", Payload: []byte("hi")}, first)
	assert.Equal(t, &PublishPacket{Topic: "c/d", Payload: []byte("yo")}, second)
}

// TestReadOwnsMemory checks that a decoded packet shares nothing with the
// reader's buffer, which the next Read overwrites, and that its byte slices
// have their capacity clipped, so appending to one cannot overwrite another
// field of the same packet.
func TestReadOwnsMemory(t *testing.T) {
	var src []byte
	for _, tp := range tpackets {
		if tp.name == "publish v5 qos1 all properties" {
			src = bytes.Clone(tp.raw)
		}
	}
	require.NotNil(t, src)
	src = append(src, 0xC0, 0) // a PINGREQ behind it fills the reader again
	r := bufio.NewReaderSize(bytes.NewReader(src), 16)
	p, err := Read(r, V5, 0)
	require.NoError(t, err)
	_, err = Read(r, V5, 0)
	require.NoError(t, err)
	for i := range src {
		src[i] = 0xAA
	}
	pub := p.(*PublishPacket)
	assert.Equal(t, "a/b", pub.Topic)
	assert.Equal(t, []byte{1, 2}, pub.Properties.CorrelationData)
	assert.Equal(t, []byte("{}"), pub.Payload)
	assert.Equal(t, len(pub.Properties.CorrelationData), cap(pub.Properties.CorrelationData))
	assert.Equal(t, len(pub.Payload), cap(pub.Payload))
}

// headerOnlyReader serves a fixed header and fails any read past it, so a
// Read that tried to fetch the body would report errBodyRead instead.
type headerOnlyReader struct{ hdr []byte }

var errBodyRead = errors.New("body was read")

func (h *headerOnlyReader) Read(p []byte) (int, error) {
	if len(h.hdr) == 0 {
		return 0, errBodyRead
	}
	n := copy(p, h.hdr)
	h.hdr = h.hdr[n:]
	return n, nil
}

func TestPacketTooLargeBeforeAllocation(t *testing.T) {
	const claimed = 200 << 20 // 200 MiB
	hdr := appendVarInt([]byte{0x30}, claimed)
	read := func() error {
		_, err := Read(bufio.NewReaderSize(&headerOnlyReader{hdr: hdr}, 16), V5, 1<<20)
		return err
	}
	err := read()
	require.ErrorIs(t, err, ErrPacketTooLarge)
	assert.NotErrorIs(t, err, errBodyRead)

	// AllocsPerRun does one warm-up run and then 20 measured ones. Each
	// costs a bufio.Reader, the fake reader and an error: a handful of
	// small allocations (the race detector adds some), and bytes far below
	// what even a 1 MiB body would take, let alone 200 MiB.
	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(runs, func() { _ = read() })
	runtime.ReadMemStats(&after)
	assert.LessOrEqual(t, allocs, 16.0, "allocations per rejected read")
	perRun := (after.TotalAlloc - before.TotalAlloc) / (runs + 1)
	assert.Less(t, perRun, uint64(16<<10), "bytes allocated per rejected read")
}

func TestMaxSize(t *testing.T) {
	raw := []byte{0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'} // 9 bytes in all
	_, err := Read(bufio.NewReader(bytes.NewReader(raw)), V311, 9)
	assert.NoError(t, err, "a packet of exactly maxSize is allowed")
	_, err = Read(bufio.NewReader(bytes.NewReader(raw)), V311, 8)
	assert.ErrorIs(t, err, ErrPacketTooLarge, "maxSize counts the fixed header")
	assert.Equal(t, PacketTooLarge, ReasonFor(err))
}

func TestAppendErrors(t *testing.T) {
	long := strings.Repeat("a", maxFieldLen+1)
	tests := []struct {
		name    string
		version Version
		packet  Packet
		want    error
	}{
		{"unknown version", Version(6), &PingreqPacket{}, ErrUnsupportedVersion},
		{"version 0", 0, &PingreqPacket{}, ErrUnsupportedVersion},
		{"foreign packet type", V5, foreignPacket{}, ErrMalformed},
		{"AUTH in 3.1.1", V311, &AuthPacket{}, ErrNotInVersion},
		{"PUBACK failure in 3.1.1", V311, &AckPacket{PacketType: Puback, PacketID: 1, ReasonCode: NotAuthorized}, ErrNotInVersion},
		{"CONNACK quota exceeded in 3.1.1", V311, &ConnackPacket{ReasonCode: QuotaExceeded}, ErrNotInVersion},
		{"CONNACK session present with failure", V5, &ConnackPacket{SessionPresent: true, ReasonCode: NotAuthorized}, ErrProtocolError},
		{"CONNACK v5 reason 0x10", V5, &ConnackPacket{ReasonCode: NoMatchingSubscribers}, ErrProtocolError},
		{"DISCONNECT reason in 3.1.1", V311, &DisconnectPacket{ReasonCode: DisconnectWithWill}, ErrNotInVersion},
		{"DISCONNECT v5 reason 0x01", V5, &DisconnectPacket{ReasonCode: GrantedQoS1}, ErrProtocolError},
		{"AUTH v5 reason 0x80", V5, &AuthPacket{ReasonCode: UnspecifiedError}, ErrProtocolError},
		{"CONNECT password without user name in 3.1.1", V311, &ConnectPacket{ClientID: "c", Password: []byte("p")}, ErrNotInVersion},
		{"CONNECT version mismatch", V5, &ConnectPacket{Version: V311, ClientID: "c"}, ErrNotInVersion},
		{"CONNECT protocol name mismatch", V311, &ConnectPacket{ProtocolName: "MQIsdp", ClientID: "c"}, ErrUnsupportedVersion},
		{"CONNECT will QoS 3", V311, &ConnectPacket{ClientID: "c", Will: &Will{Topic: "t", QoS: 3}}, ErrMalformed},
		{"CONNECT client id too long", V311, &ConnectPacket{ClientID: long}, ErrMalformed},
		{"CONNECT will payload too long", V311, &ConnectPacket{ClientID: "c", Will: &Will{Topic: "t", Payload: []byte(long)}}, ErrMalformed},
		{"CONNECT v5 will delay in CONNECT", V5, &ConnectPacket{ClientID: "c", Properties: Properties{WillDelay: u32(1)}}, ErrMalformed},
		{"CONNECT v5 session expiry in will", V5, &ConnectPacket{ClientID: "c", Will: &Will{Topic: "t", Properties: Properties{SessionExpiry: u32(1)}}}, ErrMalformed},
		{"PUBLISH QoS 3", V311, &PublishPacket{QoS: 3, Topic: "t", PacketID: 1}, ErrMalformed},
		{"PUBLISH QoS 1 packet id 0", V311, &PublishPacket{QoS: 1, Topic: "t"}, ErrProtocolError},
		{"PUBLISH QoS 0 packet id", V311, &PublishPacket{Topic: "t", PacketID: 1}, ErrProtocolError},
		{"PUBLISH QoS 0 DUP", V311, &PublishPacket{DUP: true, Topic: "t"}, ErrProtocolError},
		{"PUBLISH empty topic", V5, &PublishPacket{}, ErrProtocolError},
		{"PUBLISH empty topic with alias in 3.1.1", V311, &PublishPacket{Properties: Properties{TopicAlias: u16(1)}}, ErrProtocolError},
		{"PUBLISH topic with U+0000", V311, &PublishPacket{Topic: "a\x00b"}, ErrMalformed},
		{"PUBLISH topic with surrogate", V311, &PublishPacket{Topic: "\xed\xa0\x80"}, ErrMalformed},
		{"PUBLISH topic too long", V311, &PublishPacket{Topic: long}, ErrMalformed},
		{"PUBLISH v5 session expiry", V5, &PublishPacket{Topic: "t", Properties: Properties{SessionExpiry: u32(1)}}, ErrMalformed},
		{"PUBLISH v5 payload format 2", V5, &PublishPacket{Topic: "t", Properties: Properties{PayloadFormat: u8(2)}}, ErrProtocolError},
		{"PUBLISH v5 subscription identifier too large", V5, &PublishPacket{Topic: "t", Properties: Properties{SubscriptionIDs: []uint32{maxVarInt + 1}}}, ErrProtocolError},
		{"PUBLISH v5 user property not UTF-8", V5, &PublishPacket{Topic: "t", Properties: Properties{User: []UserProperty{{Key: "k", Value: "\xff"}}}}, ErrMalformed},
		{"PUBLISH v5 correlation data too long", V5, &PublishPacket{Topic: "t", Properties: Properties{CorrelationData: []byte(long)}}, ErrMalformed},
		{"PUBLISH v5 reason string", V5, &PublishPacket{Topic: "t", Properties: Properties{ReasonString: "r"}}, ErrMalformed},
		{"ack with type PUBLISH", V5, &AckPacket{PacketType: Publish, PacketID: 1}, ErrMalformed},
		{"PUBACK packet id 0", V5, &AckPacket{PacketType: Puback}, ErrProtocolError},
		{"PUBREL v5 reason 0x10", V5, &AckPacket{PacketType: Pubrel, PacketID: 1, ReasonCode: NoMatchingSubscribers}, ErrProtocolError},
		{"SUBSCRIBE without filters", V5, &SubscribePacket{PacketID: 1}, ErrProtocolError},
		{"SUBSCRIBE packet id 0", V5, &SubscribePacket{Subscriptions: []Subscription{{Filter: "a"}}}, ErrProtocolError},
		{"SUBSCRIBE QoS 3", V5, &SubscribePacket{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}}, ErrProtocolError},
		{"SUBSCRIBE retain handling 3", V5, &SubscribePacket{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 3}}}, ErrProtocolError},
		{"SUBSCRIBE two subscription identifiers", V5, &SubscribePacket{PacketID: 1, Properties: Properties{SubscriptionIDs: []uint32{1, 2}}, Subscriptions: []Subscription{{Filter: "a"}}}, ErrProtocolError},
		{"SUBACK without codes", V5, &SubackPacket{PacketID: 1}, ErrProtocolError},
		{"SUBACK reason 0x11", V311, &SubackPacket{PacketID: 1, ReasonCodes: []ReasonCode{NoSubscriptionExisted}}, ErrProtocolError},
		{"UNSUBSCRIBE without filters", V311, &UnsubscribePacket{PacketID: 1}, ErrProtocolError},
		{"UNSUBACK v5 without codes", V5, &UnsubackPacket{PacketID: 1}, ErrProtocolError},
		{"UNSUBACK packet id 0", V311, &UnsubackPacket{}, ErrProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Append([]byte("keep"), tt.packet, tt.version)
			assert.ErrorIs(t, err, tt.want, "got %v", err)
			assert.Equal(t, "keep", string(b), "b is unchanged on error")
			_, sizeErr := Size(tt.packet, tt.version)
			assert.ErrorIs(t, sizeErr, tt.want, "Size fails exactly when Append does")
		})
	}
}

type foreignPacket struct{}

func (foreignPacket) Type() Type { return Pingreq }

func TestSizeTooLarge(t *testing.T) {
	// A payload one byte over what a remaining length can express. Size
	// never touches the payload's bytes.
	p := &PublishPacket{Topic: "t", Payload: make([]byte, maxVarInt-2)}
	_, err := Size(p, V311)
	assert.ErrorIs(t, err, ErrPacketTooLarge)
	p.Payload = p.Payload[:maxVarInt-3]
	n, err := Size(p, V311)
	require.NoError(t, err)
	assert.Equal(t, MaxSize, n)
}

// TestAppendV311Omits checks that writing for 3.1.1 drops what 3.1.1 does
// not have instead of failing.
func TestAppendV311Omits(t *testing.T) {
	props := Properties{ReasonString: "x", User: userKV}
	tests := []struct {
		name   string
		packet Packet
		raw    []byte
	}{
		{"PUBLISH properties", &PublishPacket{Topic: "t", Properties: Properties{ContentType: "c"}}, []byte{0x30, 3, 0, 1, 't'}},
		{"PUBACK success code", &AckPacket{PacketType: Puback, PacketID: 1, ReasonCode: NoMatchingSubscribers, Properties: props}, []byte{0x40, 2, 0, 1}},
		{"SUBSCRIBE v5 options", &SubscribePacket{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}, []byte{0x82, 6, 0, 1, 0, 1, 'a', 1}},
		{"SUBACK failure codes", &SubackPacket{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS2, NotAuthorized, TopicFilterInvalid}}, []byte{0x90, 5, 0, 1, 2, 0x80, 0x80}},
		{"UNSUBACK codes", &UnsubackPacket{PacketID: 1, ReasonCodes: []ReasonCode{NoSubscriptionExisted}, Properties: props}, []byte{0xB0, 2, 0, 1}},
		{"CONNACK server busy", &ConnackPacket{ReasonCode: ServerBusy, Properties: props}, []byte{0x20, 2, 0, 3}},
		{"CONNACK banned", &ConnackPacket{ReasonCode: Banned}, []byte{0x20, 2, 0, 5}},
		{"DISCONNECT properties", &DisconnectPacket{Properties: props}, []byte{0xE0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Append(nil, tt.packet, V311)
			require.NoError(t, err)
			assert.Equal(t, tt.raw, b)
		})
	}
}

func TestReasonFor(t *testing.T) {
	_, malformed := readBytes(t, []byte{0x00, 0}, V5)
	_, protocol := readBytes(t, []byte{0xC0, 0}, 0)
	_, version := readBytes(t, []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 9, 0x02, 0, 60, 0, 0}, 0)
	_, truncated := readBytes(t, []byte{0x30, 5, 0}, V5)
	tests := []struct {
		err  error
		want ReasonCode
	}{
		{nil, Success},
		{malformed, MalformedPacket},
		{protocol, ProtocolError},
		{version, UnsupportedProtocolVersion},
		{ErrPacketTooLarge, PacketTooLarge},
		{truncated, UnspecifiedError},
		{errors.New("other"), UnspecifiedError},
		{NotAuthorized, NotAuthorized},
		{errors.Join(errors.New("wrapped"), QuotaExceeded), QuotaExceeded},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ReasonFor(tt.err), "%v", tt.err)
	}
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "PUBLISH", Publish.String())
	assert.Equal(t, "AUTH", Auth.String())
	assert.Equal(t, "Type(0)", Type(0).String())
	assert.Equal(t, "3.1", V31.String())
	assert.Equal(t, "3.1.1", V311.String())
	assert.Equal(t, "5.0", V5.String())
	assert.Equal(t, "Version(9)", Version(9).String())
	assert.Equal(t, "MQIsdp", V31.ProtocolName())
	assert.Equal(t, "MQTT", V5.ProtocolName())
	assert.Equal(t, "session taken over", SessionTakenOver.String())
	assert.Equal(t, "reason code 0x3", ReasonCode(3).String())
	assert.Equal(t, "mqtt: not authorized", NotAuthorized.Error())
	assert.True(t, UnspecifiedError.IsError())
	assert.False(t, NoMatchingSubscribers.IsError())
	var err error = NotAuthorized
	assert.ErrorIs(t, err, NotAuthorized)
	// Every code a packet may carry has a name.
	for _, set := range []reasonSet{connackReasons, pubackReasons, pubrelReasons, subackReasons, unsubackReasons, disconnectReasons, authReasons} {
		for c := 0; c < 256; c++ {
			if set.has(ReasonCode(c)) {
				assert.NotContains(t, ReasonCode(c).String(), "reason code", "0x%02x", c)
			}
		}
	}
	// Every property has a name and at least one packet.
	for id, info := range propInfo {
		if info.name != "" {
			assert.NotZero(t, info.in, "property 0x%02x", id)
		}
	}
}

// TestTableCoverage keeps the shared table honest: every packet type in both
// versions (AUTH in 5.0 only) and every property at least once.
func TestTableCoverage(t *testing.T) {
	types := map[Version]map[Type]bool{V311: {}, V5: {}}
	var props uint64
	for _, tp := range tpackets {
		v := tp.version
		if v == V31 {
			v = V311
		}
		types[v][tp.packet.Type()] = true
		var list []*Properties
		switch p := tp.packet.(type) {
		case *ConnectPacket:
			list = append(list, &p.Properties)
			if p.Will != nil {
				list = append(list, &p.Will.Properties)
			}
		case *ConnackPacket:
			list = append(list, &p.Properties)
		case *PublishPacket:
			list = append(list, &p.Properties)
		case *AckPacket:
			list = append(list, &p.Properties)
		case *SubscribePacket:
			list = append(list, &p.Properties)
		case *SubackPacket:
			list = append(list, &p.Properties)
		case *UnsubscribePacket:
			list = append(list, &p.Properties)
		case *UnsubackPacket:
			list = append(list, &p.Properties)
		case *DisconnectPacket:
			list = append(list, &p.Properties)
		case *AuthPacket:
			list = append(list, &p.Properties)
		}
		for _, pp := range list {
			props |= pp.present()
		}
	}
	for ty := Connect; ty <= Auth; ty++ {
		assert.True(t, types[V5][ty], "no 5.0 %s in the table", ty)
		if ty != Auth {
			assert.True(t, types[V311][ty], "no 3.1.1 %s in the table", ty)
		}
	}
	for id, info := range propInfo {
		if info.name != "" {
			assert.NotZero(t, props&(1<<id), "no %s in the table", info.name)
		}
	}
}

// TestAnnouncedBodyNotAllocated is a peer on a real TCP connection that
// announces a packet of the largest allowed size in its first bytes and
// then sends nothing: Read must not allocate the announced size, or a few
// thousand such connections exhaust a 32-bit gateway's memory.
func TestAnnouncedBodyNotAllocated(t *testing.T) {
	const maxSize = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()

	hdr := appendVarInt([]byte{0x30}, maxSize-4) // PUBLISH: 4 header bytes + body = maxSize
	require.Len(t, hdr, 4)
	_, err = client.Write(hdr)
	require.NoError(t, err)
	require.NoError(t, client.(*net.TCPConn).CloseWrite())

	r := bufio.NewReader(server)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = Read(r, V5, maxSize)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(maxSize/8),
		"bytes allocated for a body that never came")
}

// TestBodyMemoryFollowsBytes feeds part of a large body: what Read
// allocates stays within a small multiple of what arrived.
func TestBodyMemoryFollowsBytes(t *testing.T) {
	const announced, sent = 8 << 20, 300 << 10
	raw := appendVarInt([]byte{0x30}, announced)
	raw = append(raw, make([]byte, sent)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Read(bufio.NewReader(bytes.NewReader(raw)), V5, 0)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	got := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, got, uint64(4*sent), "bytes allocated for %d bytes received", sent)
}

// TestReadLargeBody reads packets around and far above the size Read
// allocates at once, delivered a few bytes at a time, and checks that the
// packet is whole and owns exactly its memory.
func TestReadLargeBody(t *testing.T) {
	for _, size := range []int{readChunk - 1, readChunk, readChunk + 1, 5*readChunk + 7} {
		payload := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		in := &PublishPacket{Topic: "a/b", QoS: 1, PacketID: 7, Payload: payload}
		raw, err := Append(nil, in, V5)
		require.NoError(t, err)
		p, err := Read(bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(raw)), 16), V5, 0)
		require.NoError(t, err, "size %d", size)
		got := p.(*PublishPacket)
		assert.Equal(t, "a/b", got.Topic)
		assert.True(t, bytes.Equal(payload, got.Payload), "payload of size %d", size)
		assert.Equal(t, len(got.Payload), cap(got.Payload))
	}
}
