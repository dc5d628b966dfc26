package mqttsn

// Advertise is broadcast periodically by a gateway (MQTT-SN 1.2 §5.4.1).
//
//	Length (1) | MsgType 0x00 (1) | GwId (1) | Duration (2)
type Advertise struct {
	GatewayID uint8
	Duration  uint16 // seconds until the next ADVERTISE
}

// Type returns TypeAdvertise.
func (*Advertise) Type() MsgType { return TypeAdvertise }

// AppendTo appends the encoded message to b.
func (p *Advertise) AppendTo(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeAdvertise, 3)
	if err != nil {
		return b, err
	}
	return appendUint16(append(b, p.GatewayID), p.Duration), nil
}

func (p *Advertise) decode(r reader) reader {
	*p = Advertise{GatewayID: r.u8("gateway id"), Duration: r.u16("duration")}
	return r
}
