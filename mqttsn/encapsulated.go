package mqttsn

import "fmt"

// Encapsulated is a message relayed by a forwarder (MQTT-SN 1.2 §5.5).
//
//	Length (1) | MsgType 0xFE (1) | Ctrl (1) | Wireless Node Id (0..252) | MQTT-SN message (2..n)
//
// Unlike every other message, Length counts only up to the end of the
// Wireless Node Id (3 + the node id length) and always has the 1-octet
// form. Ctrl bits 1:0 are the broadcast radius (Table 29), relevant only
// from gateway to forwarder; bits 7:2 are reserved, ignored on decode and
// written as 0.
//
// Message holds the raw encapsulated message, to be decoded with Parse or
// Parser.Parse. Decoding and encoding check only that it is exactly one
// well-framed message (its own Length equals its size) and not itself an
// encapsulation, which §5.5 does not provide for.
type Encapsulated struct {
	Radius  uint8  // 0..3
	NodeID  []byte // identifies the wireless node to the forwarder; at most 252 octets
	Message []byte
}

// maxNodeID keeps 3 + the node id length within the 1-octet Length.
const maxNodeID = 0xFF - 3

// Type returns TypeEncapsulated.
func (*Encapsulated) Type() MsgType { return TypeEncapsulated }

// AppendTo appends the encoded message to b.
func (p *Encapsulated) AppendTo(b []byte) ([]byte, error) {
	if p.Radius > 0b11 {
		return b, &FieldError{Type: TypeEncapsulated, Field: "ctrl", Err: fmt.Errorf("%w: radius %d does not fit 2 bits", ErrInvalidField, p.Radius)}
	}
	if len(p.NodeID) > maxNodeID {
		return b, &FieldError{Type: TypeEncapsulated, Field: "wireless node id", Err: fmt.Errorf("%w: %d octets, at most %d", ErrTooLarge, len(p.NodeID), maxNodeID)}
	}
	if err := checkFrame(p.Message); err != nil {
		return b, &FieldError{Type: TypeEncapsulated, Field: "message", Err: err}
	}
	b = append(b, byte(3+len(p.NodeID)), byte(TypeEncapsulated), p.Radius)
	return append(append(b, p.NodeID...), p.Message...), nil
}

func (p *Encapsulated) decode(r reader) reader {
	ctrl := r.u8("ctrl")
	node := r.bytes("wireless node id", r.length-3)
	msg := r.rest()
	if r.err == nil {
		if err := checkFrame(msg); err != nil {
			r.fail("message", err)
		}
	}
	*p = Encapsulated{Radius: ctrl & 0b11, NodeID: node, Message: msg}
	return r
}

// checkFrame checks that m is exactly one well-framed message other than
// an encapsulation.
func checkFrame(m []byte) error {
	r, err := readHeader(m)
	if err != nil {
		return err
	}
	if r.t == TypeEncapsulated {
		return ErrNestedEncapsulation
	}
	return nil
}
