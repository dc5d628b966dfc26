package packet

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxVarInt is the largest Variable Byte Integer, four bytes of seven bits
// (3.1.1 §2.2.3, 5.0 §1.5.5). It bounds the remaining length and every
// property length.
const maxVarInt = 268435455

// maxFieldLen is the largest string or binary field: a two-byte length
// prefix (5.0 §1.5.4, §1.5.6).
const maxFieldLen = 65535

// cursor reads the fields of one packet body. Every read is bounds checked;
// running past the end means a length inside the packet lied about the
// bytes that follow, which is a malformed packet, never a panic. The body is
// owned by the packet being decoded, so binary fields may alias it.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) remaining() int { return len(c.b) - c.off }

func (c *cursor) readByte(field string) (byte, error) {
	if c.off >= len(c.b) {
		return 0, fmt.Errorf("%s: %w: missing 1 byte", field, ErrMalformed)
	}
	v := c.b[c.off]
	c.off++
	return v, nil
}

func (c *cursor) readUint16(field string) (uint16, error) {
	if c.remaining() < 2 {
		return 0, fmt.Errorf("%s: %w: missing 2-byte integer", field, ErrMalformed)
	}
	v := binary.BigEndian.Uint16(c.b[c.off:])
	c.off += 2
	return v, nil
}

func (c *cursor) readUint32(field string) (uint32, error) {
	if c.remaining() < 4 {
		return 0, fmt.Errorf("%s: %w: missing 4-byte integer", field, ErrMalformed)
	}
	v := binary.BigEndian.Uint32(c.b[c.off:])
	c.off += 4
	return v, nil
}

// readVarInt reads a Variable Byte Integer of at most four bytes (5.0
// §1.5.5). Non-minimal encodings are accepted; a fifth byte is not.
func (c *cursor) readVarInt(field string) (uint32, error) {
	var v uint32
	for i := 0; i < 4; i++ {
		if c.off >= len(c.b) {
			return 0, fmt.Errorf("%s: %w: truncated variable byte integer", field, ErrMalformed)
		}
		d := c.b[c.off]
		c.off++
		v |= uint32(d&0x7f) << (7 * i)
		if d&0x80 == 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%s: %w: variable byte integer longer than 4 bytes", field, ErrMalformed)
}

// readBinary reads Binary Data (5.0 §1.5.6): a two-byte length and that many
// bytes. The result aliases the body with its capacity clipped, so an append
// by the caller can never overwrite the next field. It is never nil.
func (c *cursor) readBinary(field string) ([]byte, error) {
	n, err := c.readUint16(field)
	if err != nil {
		return nil, err
	}
	if c.remaining() < int(n) {
		return nil, fmt.Errorf("%s: %w: length %d exceeds the %d bytes left", field, ErrMalformed, n, c.remaining())
	}
	v := c.b[c.off : c.off+int(n) : c.off+int(n)]
	c.off += int(n)
	return v, nil
}

// readString reads a UTF-8 Encoded String (3.1.1 §1.5.3, 5.0 §1.5.4) and
// checks it as validString does.
func (c *cursor) readString(field string) (string, error) {
	b, err := c.readBinary(field)
	if err != nil {
		return "", err
	}
	s := string(b)
	if err := checkUTF8(s); err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return s, nil
}

// rest returns the bytes left, clipped like readBinary's.
func (c *cursor) rest() []byte {
	v := c.b[c.off:len(c.b):len(c.b)]
	c.off = len(c.b)
	return v
}

// end reports trailing bytes after the last field of a packet, which is
// malformed: the remaining length must account for every byte.
func (c *cursor) end(t Type) error {
	if n := c.remaining(); n != 0 {
		return fmt.Errorf("%s: %w: %d unexpected trailing bytes", t, ErrMalformed, n)
	}
	return nil
}

// checkUTF8 enforces the rules for UTF-8 strings: well-formed UTF-8 without
// surrogate code points (utf8.ValidString rejects their encodings) and
// without U+0000 ([MQTT-1.5.3-1], [MQTT-1.5.3-2]; 5.0 [MQTT-1.5.4-1],
// [MQTT-1.5.4-2]).
func checkUTF8(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: string contains U+0000", ErrMalformed)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: string is not well-formed UTF-8", ErrMalformed)
	}
	return nil
}

// validString is the encoding-side check of a string field: the UTF-8
// rules plus the two-byte length limit.
func validString(field, s string) error {
	if len(s) > maxFieldLen {
		return fmt.Errorf("%s: %w: %d bytes, more than %d", field, ErrMalformed, len(s), maxFieldLen)
	}
	if err := checkUTF8(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func validBinary(field string, b []byte) error {
	if len(b) > maxFieldLen {
		return fmt.Errorf("%s: %w: %d bytes, more than %d", field, ErrMalformed, len(b), maxFieldLen)
	}
	return nil
}

func hasWildcard(topic string) bool { return strings.ContainsAny(topic, "+#") }

// varIntLen returns the encoded length of v, which is at most maxVarInt.
func varIntLen(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	}
	return 4
}

func appendVarInt(b []byte, v int) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendUint16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

func appendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func appendString(b []byte, s string) []byte {
	b = appendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBinary(b []byte, v []byte) []byte {
	b = appendUint16(b, uint16(len(v)))
	return append(b, v...)
}
