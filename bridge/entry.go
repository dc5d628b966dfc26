package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/snwgw/snwgw/mqttcore"
)

// entry is one QoS 1 or 2 message waiting for the upstream broker, its topic
// already rewritten for upstream.
type entry struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	props   mqttcore.MessageProperties // MessageExpiry nil: see expires
	expires time.Time                  // zero: never

	// seq names the entry's file in a disk queue; 0 keeps it in memory
	// only (a memory queue, or a disk write that failed).
	seq uint64
	// localID is the packet id of the local delivery still to acknowledge
	// (memory queue), 0 when it was acknowledged already; localQoS says
	// whether Ack (1) or Received and Complete (2) acknowledge it.
	localID  uint16
	localQoS byte
}

// ErrCorruptEntry reports a queue file that cannot be decoded (truncated by a
// crash or damaged); the queue sets it aside as *.corrupt and counts it.
var ErrCorruptEntry = errors.New("bridge: corrupt queue entry")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// entryMagic starts every queue file; its last byte is the format version.
const entryMagic = "SNQ1"

const (
	flagRetain = 1 << iota
	flagPayloadFormat
	flagExpires
)

// appendEntry encodes e for a queue file:
//
//	magic "SNQ1" (4) | CRC-32C of the rest (4) | QoS (1) | flags (1)
//	[payload format (1)] [expiry, Unix ns (8)]
//	topic, content type, response topic, correlation data: each uint16 length + bytes
//	user property count (2), then key and value, each uint16 length + bytes
//	payload: uint32 length + bytes
func appendEntry(b []byte, e *entry) ([]byte, error) {
	start := len(b)
	b = append(b, entryMagic...)
	b = append(b, 0, 0, 0, 0)
	var flags byte
	if e.retain {
		flags |= flagRetain
	}
	if e.props.PayloadFormat != nil {
		flags |= flagPayloadFormat
	}
	if !e.expires.IsZero() {
		flags |= flagExpires
	}
	b = append(b, e.qos, flags)
	if e.props.PayloadFormat != nil {
		b = append(b, *e.props.PayloadFormat)
	}
	if !e.expires.IsZero() {
		b = binary.BigEndian.AppendUint64(b, uint64(e.expires.UnixNano()))
	}
	for _, s := range []string{e.topic, e.props.ContentType, e.props.ResponseTopic, string(e.props.CorrelationData)} {
		if len(s) > math.MaxUint16 {
			return b[:start], fmt.Errorf("bridge: queue entry field of %d bytes is too long", len(s))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	if len(e.props.User) > math.MaxUint16 {
		return b[:start], fmt.Errorf("bridge: %d user properties are too many", len(e.props.User))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.props.User)))
	for _, p := range e.props.User {
		if len(p.Key) > math.MaxUint16 || len(p.Value) > math.MaxUint16 {
			return b[:start], errors.New("bridge: user property too long")
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Key)))
		b = append(b, p.Key...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Value)))
		b = append(b, p.Value...)
	}
	if uint64(len(e.payload)) > math.MaxUint32 {
		return b[:start], errors.New("bridge: payload too long")
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.payload)))
	b = append(b, e.payload...)
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], crcTable))
	return b, nil
}

// cursor reads a queue file with bounds checks; the first failure sticks.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) take(n int) []byte {
	if c.bad || n > len(c.b) {
		c.bad = true
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u8() byte {
	v := c.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (c *cursor) u16() int {
	v := c.take(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

func (c *cursor) str() string { return string(c.take(c.u16())) }

// decodeEntry decodes a queue file written by appendEntry. The entry owns
// its memory.
func decodeEntry(b []byte) (*entry, error) {
	if len(b) < 8 || string(b[:4]) != entryMagic {
		return nil, fmt.Errorf("%w: bad header", ErrCorruptEntry)
	}
	if binary.BigEndian.Uint32(b[4:8]) != crc32.Checksum(b[8:], crcTable) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptEntry)
	}
	c := cursor{b: b[8:]}
	e := &entry{qos: c.u8()}
	flags := c.u8()
	e.retain = flags&flagRetain != 0
	if flags&flagPayloadFormat != 0 {
		pf := c.u8()
		e.props.PayloadFormat = &pf
	}
	if flags&flagExpires != 0 {
		if v := c.take(8); v != nil {
			e.expires = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
	}
	e.topic = c.str()
	e.props.ContentType = c.str()
	e.props.ResponseTopic = c.str()
	if cd := c.take(c.u16()); len(cd) > 0 {
		e.props.CorrelationData = append([]byte(nil), cd...)
	}
	n := c.u16()
	for i := 0; i < n && !c.bad; i++ {
		e.props.User = append(e.props.User, mqttcore.UserProperty{Key: c.str(), Value: c.str()})
	}
	var size int
	if v := c.take(4); v != nil {
		size = int(binary.BigEndian.Uint32(v))
	}
	if p := c.take(size); p != nil {
		e.payload = append([]byte{}, p...)
	}
	switch {
	case c.bad:
		return nil, fmt.Errorf("%w: truncated", ErrCorruptEntry)
	case len(c.b) != 0:
		return nil, fmt.Errorf("%w: %d bytes after the payload", ErrCorruptEntry, len(c.b))
	case e.qos < 1 || e.qos > 2:
		return nil, fmt.Errorf("%w: qos %d", ErrCorruptEntry, e.qos)
	case flags&^(flagRetain|flagPayloadFormat|flagExpires) != 0:
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrCorruptEntry, flags)
	case mqttcore.ValidateTopic(e.topic) != nil:
		return nil, fmt.Errorf("%w: invalid topic", ErrCorruptEntry)
	}
	return e, nil
}
