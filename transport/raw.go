package transport

import (
	"encoding/binary"
	"fmt"
	"net"
)

// Raw framing limits. MQTT-SN 1.2 §5.2.1: the Length field is one octet
// (2..255, counting itself) or three octets 0x01, MSB, LSB (counting all
// three), so a packet is at least 2 octets and at most 65535.
const (
	// DefaultRawMaxPacket is the largest packet a raw link accepts unless
	// configured otherwise. Keeping it small bounds how long a corrupted
	// length can hold back the frames behind it.
	DefaultRawMaxPacket = 1024
	// MaxRawPacket is the largest packet MQTT-SN can express.
	MaxRawPacket = 65535
	minRawPacket = 2
	// A 3-octet length counts its own three octets and the MsgType octet.
	minLongRawPacket = 4
)

// RawFramer delimits MQTT-SN packets sent back to back with no sync byte,
// as serial-to-UDP bridges do, using each packet's own length field. A
// length that cannot be valid (0x00, a long form below 4, or above the
// maximum) is skipped one byte at a time until a plausible packet starts.
type RawFramer struct {
	max int
	sb  streamBuf
	c   framerCounters
}

// NewRawFramer returns a raw framer that accepts packets of up to
// maxPacket octets (0 selects DefaultRawMaxPacket).
func NewRawFramer(maxPacket int) (*RawFramer, error) {
	if maxPacket == 0 {
		maxPacket = DefaultRawMaxPacket
	}
	if maxPacket < minLongRawPacket || maxPacket > MaxRawPacket {
		return nil, fmt.Errorf("%w: raw max packet %d outside %d..%d", ErrInvalidOptions, maxPacket, minLongRawPacket, MaxRawPacket)
	}
	return &RawFramer{max: maxPacket, sb: newStreamBuf(max(2*maxPacket, 4096))}, nil
}

// rawLength reports the total length of the packet starting at b:
// n > 0 is a plausible length, n == 0 means more input is needed to tell,
// n < 0 means b[0] cannot start a packet.
func rawLength(b []byte, maxPacket int) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case 0x00:
		return -1
	case 0x01:
		// 0x01, Length MSB, Length LSB
		if len(b) < 3 {
			return 0
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if n < minLongRawPacket || n > maxPacket {
			return -1
		}
		return n
	default:
		n := int(b[0])
		if n > maxPacket {
			return -1
		}
		if len(b) < 2 {
			return 0
		}
		if b[1] != typeEncapsulated {
			return n
		}
		// A forwarder's Encapsulated message (MQTT-SN 1.2 §5.5): its Length
		// octet counts only Length, MsgType, Ctrl and the Wireless Node Id;
		// the wrapped message follows with its own length field. Several
		// nodes can thus share one raw line behind a forwarder.
		if n < 3 {
			return -1
		}
		if len(b) < n+1 {
			return 0
		}
		inner := rawLength(b[n:], maxPacket-n)
		switch {
		case inner <= 0:
			return inner
		case len(b) > n+1 && b[n] != 0x01 && b[n+1] == typeEncapsulated:
			return -1 // nested encapsulation
		}
		return n + inner
	}
}

// typeEncapsulated is the MsgType of a forwarder's Encapsulated message.
const typeEncapsulated = 0xFE

// Decode implements Framer.
func (f *RawFramer) Decode(p []byte) (int, Frame, bool) {
	return decodeLoop(&f.sb, p, f.extract)
}

func (f *RawFramer) extract() (Frame, bool) {
	for {
		b := f.sb.pending()
		n := rawLength(b, f.max)
		switch {
		case n < 0:
			f.sb.skip(1, &f.c)
		case n == 0 || n > len(b):
			return Frame{}, false
		default:
			f.c.framesIn.Add(1)
			return Frame{Payload: f.sb.take(n)}, true
		}
	}
}

// Pending implements Framer.
func (f *RawFramer) Pending() bool { return f.sb.r < f.sb.w }

// Expire implements Framer.
func (f *RawFramer) Expire() {
	if f.sb.r < f.sb.w {
		f.c.timeouts.Add(1)
		f.sb.skip(1, &f.c)
	}
}

// Reset implements Framer.
func (f *RawFramer) Reset() { f.sb.reset() }

// MaxPayload implements Framer.
func (f *RawFramer) MaxPayload() int { return f.max }

// Stats implements Framer.
func (f *RawFramer) Stats() FramerStats { return f.c.snapshot() }

// AppendFrame implements Framer. The payload must be exactly one MQTT-SN
// packet, since its own length field is the only delimiter the far end
// has. A raw line has a single peer, so dst must be a SerialAddr (or nil).
func (f *RawFramer) AppendFrame(b, payload []byte, dst net.Addr) ([]byte, error) {
	switch v := dst.(type) {
	case nil, SerialAddr:
	case *SerialAddr:
		if v == nil {
			return b, fmt.Errorf("%w: nil *SerialAddr", ErrAddrType)
		}
	default:
		return b, fmt.Errorf("%w: raw serial link cannot send to %T", ErrAddrType, dst)
	}
	if len(payload) > f.max {
		return b, fmt.Errorf("%w: %d octets, raw link maximum %d", ErrPayloadTooLarge, len(payload), f.max)
	}
	if n := rawLength(payload, f.max); n != len(payload) || n < minRawPacket {
		return b, fmt.Errorf("%w: length field says %d, packet has %d octets", ErrBadPacket, max(n, 0), len(payload))
	}
	f.c.framesOut.Add(1)
	return append(b, payload...), nil
}
