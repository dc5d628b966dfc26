package mqttsn

// PingReq is the keep-alive probe, in either direction (MQTT-SN 1.2
// §5.4.19).
//
//	Length (1|3) | MsgType 0x16 (1) | ClientId (0..n)
//
// A sleeping client that wakes to collect its buffered messages includes
// its ClientId (§6.14); otherwise ClientID is empty and the message is 2
// octets.
type PingReq struct {
	ClientID string
}

// Type returns TypePingReq.
func (*PingReq) Type() MsgType { return TypePingReq }

// AppendTo appends the encoded message to b.
func (p *PingReq) AppendTo(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypePingReq, len(p.ClientID))
	if err != nil {
		return b, err
	}
	return append(b, p.ClientID...), nil
}

func (p *PingReq) decode(r reader) reader {
	*p = PingReq{ClientID: string(r.rest())}
	return r
}
