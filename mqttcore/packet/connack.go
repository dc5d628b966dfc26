package packet

import "fmt"

// ConnackPacket is CONNACK, the server's answer to CONNECT (3.1.1 §3.2,
// 5.0 §3.2).
//
//	Fixed header: 0x20, remaining length
//	Acknowledge Flags: 1 byte, bit 0 session present, bits 7-1 reserved (0)
//	Reason Code: 1 byte (3.1.1: return code 0-5)
//	Properties (5.0 only)
//
// In 3.1.1 the return codes map onto reason codes: 1 UnsupportedProtocolVersion,
// 2 ClientIdentifierNotValid, 3 ServerUnavailable, 4 BadUserNameOrPassword,
// 5 NotAuthorized. Writing for V311 maps them back, and also ServerBusy to 3
// and Banned to 5; other failure codes are ErrNotInVersion.
type ConnackPacket struct {
	SessionPresent bool // must be false unless ReasonCode is Success
	ReasonCode     ReasonCode
	Properties     Properties
}

// Type returns Connack.
func (*ConnackPacket) Type() Type { return Connack }

func (*ConnackPacket) flags() byte { return 0 }

func decodeConnack(c *cursor, v Version) (*ConnackPacket, error) {
	ack, err := c.readByte("CONNACK acknowledge flags")
	if err != nil {
		return nil, err
	}
	if ack&^1 != 0 { // 3.1.1 §3.2.2.1, 5.0 [MQTT-3.2.2-1]
		return nil, fmt.Errorf("CONNACK acknowledge flags: %w: reserved bits set", ErrMalformed)
	}
	code, err := c.readByte("CONNACK reason code")
	if err != nil {
		return nil, err
	}
	p := &ConnackPacket{SessionPresent: ack == 1, ReasonCode: ReasonCode(code)}
	if v == V5 {
		if err := p.Properties.decode(c, ctxConnack); err != nil {
			return nil, err
		}
	} else {
		if int(code) >= len(connackReasonCodes) {
			return nil, fmt.Errorf("CONNACK: %w: reserved return code %d", ErrProtocolError, code)
		}
		p.ReasonCode = connackReasonCodes[code]
	}
	return p, p.check(v)
}

// check applies the rules shared by reading and writing.
func (p *ConnackPacket) check(v Version) error {
	if v == V5 && !connackReasons.has(p.ReasonCode) {
		return fmt.Errorf("CONNACK: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(p.ReasonCode))
	}
	if p.SessionPresent && p.ReasonCode != Success { // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]
		return fmt.Errorf("CONNACK: %w: session present with %s", ErrProtocolError, p.ReasonCode)
	}
	return nil
}

func (p *ConnackPacket) size(v Version) (int, error) {
	if err := p.check(v); err != nil {
		return 0, err
	}
	if v != V5 {
		if _, ok := connackReturnCode(p.ReasonCode); !ok {
			return 0, fmt.Errorf("CONNACK with %s in MQTT %s: %w", p.ReasonCode, v, ErrNotInVersion)
		}
		return 2, nil
	}
	if err := p.Properties.validate(ctxConnack); err != nil {
		return 0, err
	}
	return 2 + p.Properties.blockSize(), nil
}

func (p *ConnackPacket) appendBody(b []byte, v Version) []byte {
	var ack byte
	if p.SessionPresent {
		ack = 1
	}
	if v != V5 {
		code, _ := connackReturnCode(p.ReasonCode)
		return append(b, ack, code)
	}
	b = append(b, ack, byte(p.ReasonCode))
	return p.Properties.appendTo(b)
}
