package mqttsn

// SearchGW is broadcast by a client looking for a gateway (MQTT-SN 1.2
// §5.4.2).
//
//	Length (1) | MsgType 0x01 (1) | Radius (1)
type SearchGW struct {
	Radius uint8 // broadcast radius in hops; 0 means all nodes
}

// Type returns TypeSearchGW.
func (*SearchGW) Type() MsgType { return TypeSearchGW }

// AppendTo appends the encoded message to b.
func (p *SearchGW) AppendTo(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeSearchGW, 1)
	if err != nil {
		return b, err
	}
	return append(b, p.Radius), nil
}

func (p *SearchGW) decode(r reader) reader {
	*p = SearchGW{Radius: r.u8("radius")}
	return r
}
