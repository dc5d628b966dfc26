package mqttsn

import "encoding/binary"

// reader is the bounds-checked cursor through which every field of a
// datagram is read. The field methods keep the first error and return
// zero values after it, so a decoder reads all its fields and checks once.
type reader struct {
	b   []byte  // unread input
	t   MsgType // message being decoded, for errors
	err error   // first error
	// length is the value of the Length field; only the encapsulation,
	// whose Length does not cover the whole datagram, needs it.
	length int
}

func (r *reader) fail(field string, err error) {
	if r.err == nil {
		r.err = &FieldError{Type: r.t, Field: field, Err: err}
	}
}

func (r *reader) u8(field string) uint8 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(field, ErrShortPacket)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16(field string) uint16 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 2 {
		r.fail(field, ErrShortPacket)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

// bytes reads n octets; the result aliases the input and is nil when n is 0.
func (r *reader) bytes(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(field, ErrShortPacket)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	if n == 0 {
		return nil
	}
	return v
}

// rest reads the remaining octets, for the fields that run to the end of
// the message; the result aliases the input and is nil when none remain.
func (r *reader) rest() []byte {
	return r.bytes("", len(r.b))
}

// len returns the number of unread octets.
func (r *reader) len() int { return len(r.b) }

// finish records ErrTrailingBytes if input remains, and returns the first
// error.
func (r *reader) finish() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("", ErrTrailingBytes)
	}
	return r.err
}
