package mqttsn

import "fmt"

// protocolID is the only ProtocolId MQTT-SN 1.2 defines (§5.3.8).
const protocolID = 0x01

// Connect opens a connection (MQTT-SN 1.2 §5.4.4).
//
//	Length (1|3) | MsgType 0x04 (1) | Flags (1) | ProtocolId 0x01 (1) | Duration (2) | ClientId (0..n)
//
// Of the Flags only Will and CleanSession are used. The ProtocolId is
// always 0x01; decoding anything else fails with ErrUnsupportedProtocol.
type Connect struct {
	Will         bool   // the client will send WILLTOPIC and WILLMSG when asked
	CleanSession bool   // also covers the Will data (§6.3)
	Duration     uint16 // keep-alive period in seconds
	ClientID     string
}

// Type returns TypeConnect.
func (*Connect) Type() MsgType { return TypeConnect }

// AppendTo appends the encoded message to b.
func (p *Connect) AppendTo(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeConnect, 4+len(p.ClientID))
	if err != nil {
		return b, err
	}
	b = append(b, boolBit(p.Will, flagWill)|boolBit(p.CleanSession, flagClean), protocolID)
	return append(appendUint16(b, p.Duration), p.ClientID...), nil
}

func (p *Connect) decode(r reader) reader {
	flags := r.u8("flags")
	if id := r.u8("protocol id"); r.err == nil && id != protocolID {
		r.fail("protocol id", fmt.Errorf("%w 0x%02x", ErrUnsupportedProtocol, id))
	}
	*p = Connect{
		Will:         flags&flagWill != 0,
		CleanSession: flags&flagClean != 0,
		Duration:     r.u16("duration"),
		ClientID:     string(r.rest()),
	}
	return r
}
