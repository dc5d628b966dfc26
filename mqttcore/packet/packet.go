package packet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxSize is the largest packet MQTT can express: one type byte, four bytes
// of remaining length and the largest remaining length. Read uses it when
// given a maxSize of 0.
const MaxSize = 1 + 4 + maxVarInt

// Read reads one packet from r.
//
// For the first packet of a connection call it with version 0: only CONNECT
// is accepted then (anything else is ErrProtocolError, [MQTT-3.1.0-1]) and
// the connection's version is the returned ConnectPacket's Version. With a
// version, a CONNECT is ErrProtocolError ([MQTT-3.1.0-2]) and V31 reads like
// V311.
//
// maxSize bounds the whole packet, fixed header included (0 means MaxSize).
// The first byte (type and flags) and the declared remaining length are
// checked before anything else is read, and a packet over maxSize is
// rejected with ErrPacketTooLarge before its body is allocated or read, so
// a peer cannot make Read allocate more than maxSize bytes; and since the
// buffer grows as the body arrives, not more than about twice what it has
// sent either. The connection
// cannot be resynchronised after that error: close it (after a v5
// DISCONNECT 0x95).
//
// At a clean end of stream, before the first byte of a packet, Read returns
// io.EOF itself; a stream that ends inside a packet gives an error wrapping
// io.ErrUnexpectedEOF. Errors of r are wrapped. The returned packet owns its
// memory (its byte slices share one buffer allocated for it).
func Read(r *bufio.Reader, version Version, maxSize uint32) (Packet, error) {
	if version != 0 && !version.valid() {
		return nil, fmt.Errorf("read with %s: %w", version, ErrUnsupportedVersion)
	}
	first, err := r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("packet: read fixed header: %w", err)
	}
	t, flags := Type(first>>4), first&0x0f
	if err := checkHeader(t, flags, version); err != nil {
		return nil, err
	}
	rl, n, err := readRemainingLength(r)
	if err != nil {
		return nil, fmt.Errorf("%s remaining length: %w", t, err)
	}
	if maxSize == 0 || maxSize > MaxSize {
		maxSize = MaxSize
	}
	if total := 1 + n + rl; total > int(maxSize) {
		return nil, fmt.Errorf("%s of %d bytes, limit %d: %w", t, total, maxSize, ErrPacketTooLarge)
	}
	body, err := readBody(r, rl)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s body: %w", t, err)
	}
	return decode(t, flags, &cursor{b: body}, version)
}

// readChunk is the largest body allocated before any of it has arrived.
// A peer can announce maxSize in five bytes and then send nothing; were the
// whole body allocated up front, a few thousand such connections would take
// gigabytes, more than a 32-bit gateway has. Beyond readChunk the buffer
// doubles as bytes arrive, so memory follows what peers actually send, at
// the price of a few copies for the rare large packet. A variable so the
// fuzz targets can reach the growing path with small inputs.
var readChunk = 64 << 10

// readBody reads a body of n bytes into a buffer of exactly n bytes.
func readBody(r io.Reader, n int) ([]byte, error) {
	if n <= readChunk {
		body := make([]byte, n)
		_, err := io.ReadFull(r, body)
		return body, err
	}
	body := make([]byte, readChunk)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	for len(body) < n {
		next := min(2*len(body), n)
		grown := make([]byte, len(body), next)
		copy(grown, body)
		body = grown
		k, err := io.ReadFull(r, body[len(body):next])
		body = body[:len(body)+k]
		if err != nil {
			return nil, err
		}
	}
	return body, nil
}

// checkHeader validates the first byte before anything else is read
// (3.1.1 §2.2, 5.0 §2.1).
func checkHeader(t Type, flags byte, v Version) error {
	switch {
	case t == 0 || (t == Auth && v != V5 && v != 0):
		return fmt.Errorf("%w: reserved packet type %d in MQTT %s", ErrMalformed, t, v)
	case v == 0 && t != Connect:
		return fmt.Errorf("%w: first packet is %s, not CONNECT", ErrProtocolError, t)
	case v != 0 && t == Connect:
		return fmt.Errorf("%w: second CONNECT", ErrProtocolError)
	case t == Publish:
		// DUP, QoS and RETAIN are checked by decodePublish.
		return nil
	case flags != requiredFlags[t]:
		return fmt.Errorf("%s: %w: fixed header flags %04b, want %04b", t, ErrMalformed, flags, requiredFlags[t])
	}
	return nil
}

// readRemainingLength reads the Variable Byte Integer of the fixed header
// (3.1.1 §2.2.3, 5.0 §2.1.4) and returns it with its encoded length. A fifth
// byte is malformed, which caps the value at maxVarInt.
func readRemainingLength(r *bufio.Reader) (int, int, error) {
	v := 0
	for i := 0; i < 4; i++ {
		d, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, err
		}
		v |= int(d&0x7f) << (7 * i)
		if d&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: variable byte integer longer than 4 bytes", ErrMalformed)
}

// decode parses a body whose header checkHeader accepted.
func decode(t Type, flags byte, c *cursor, v Version) (Packet, error) {
	var (
		p   Packet
		err error
	)
	switch t {
	case Connect:
		p, err = decodeConnect(c)
	case Connack:
		p, err = decodeConnack(c, v)
	case Publish:
		p, err = decodePublish(c, flags, v)
	case Puback, Pubrec, Pubrel, Pubcomp:
		p, err = decodeAck(c, t, v)
	case Subscribe:
		p, err = decodeSubscribe(c, v)
	case Suback:
		p, err = decodeSuback(c, v)
	case Unsubscribe:
		p, err = decodeUnsubscribe(c, v)
	case Unsuback:
		p, err = decodeUnsuback(c, v)
	case Pingreq:
		p = &PingreqPacket{}
	case Pingresp:
		p = &PingrespPacket{}
	case Disconnect:
		p, err = decodeDisconnect(c, v)
	case Auth:
		p, err = decodeAuth(c)
	}
	if err != nil {
		return nil, err
	}
	if err := c.end(t); err != nil {
		return nil, err
	}
	return p, nil
}

// Append encodes p for version v and appends it to b. Fields v does not have
// (properties, reason codes and the 3.1.1 forms of acknowledgements) are
// omitted; a value v cannot express is ErrNotInVersion, and a packet that
// breaks a rule Read enforces is ErrMalformed or ErrProtocolError, so what
// Append writes Read accepts. On error b is returned unchanged.
//
// Acknowledgements use the shortest form MQTT 5 allows (5.0 §3.4.2.1,
// §3.14.2.1): a PUBACK with Success and no properties is 2 bytes of body,
// a DISCONNECT with normal disconnection and no properties none.
func Append(b []byte, p Packet, v Version) ([]byte, error) {
	e, rl, err := prepare(p, v)
	if err != nil {
		return b, err
	}
	b = slices.Grow(b, 1+varIntLen(rl)+rl)
	b = append(b, byte(e.Type())<<4|e.flags())
	b = appendVarInt(b, rl)
	return e.appendBody(b, v), nil
}

// Size returns the number of bytes Append would write for p, so a sender can
// honour a peer's Maximum Packet Size before encoding. It fails exactly when
// Append would.
func Size(p Packet, v Version) (int, error) {
	_, rl, err := prepare(p, v)
	if err != nil {
		return 0, err
	}
	return 1 + varIntLen(rl) + rl, nil
}

func prepare(p Packet, v Version) (encoder, int, error) {
	if !v.valid() {
		return nil, 0, fmt.Errorf("write with %s: %w", v, ErrUnsupportedVersion)
	}
	e, ok := p.(encoder)
	if !ok {
		return nil, 0, fmt.Errorf("%w: cannot encode %T", ErrMalformed, p)
	}
	rl, err := e.size(v)
	if err != nil {
		return nil, 0, err
	}
	if rl > maxVarInt {
		return nil, 0, fmt.Errorf("%s with remaining length %d: %w", e.Type(), rl, ErrPacketTooLarge)
	}
	return e, rl, nil
}
