package mqttsn

// GWInfo answers a SEARCHGW (MQTT-SN 1.2 §5.4.3).
//
//	Length (1|3) | MsgType 0x02 (1) | GwId (1) | GwAdd (0..n)
//
// A gateway sends only its id; a client answering for a gateway it knows
// adds the gateway's address. §5.3.5 says the address format "is indicated
// in the first octet", but Table 8 and the Paho implementations carry the
// raw address to the end of the message, and so does this codec.
type GWInfo struct {
	GatewayID   uint8
	GatewayAddr []byte // raw address octets; nil when sent by a gateway
}

// Type returns TypeGWInfo.
func (*GWInfo) Type() MsgType { return TypeGWInfo }

// AppendTo appends the encoded message to b.
func (p *GWInfo) AppendTo(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeGWInfo, 1+len(p.GatewayAddr))
	if err != nil {
		return b, err
	}
	return append(append(b, p.GatewayID), p.GatewayAddr...), nil
}

func (p *GWInfo) decode(r reader) reader {
	*p = GWInfo{GatewayID: r.u8("gateway id"), GatewayAddr: r.rest()}
	return r
}
