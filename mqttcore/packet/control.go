package packet

import "fmt"

// PingreqPacket is PINGREQ, a client's keep-alive probe: the fixed header
// 0xC0 0x00 alone (3.1.1 §3.12, 5.0 §3.12).
type PingreqPacket struct{}

// Type returns Pingreq.
func (*PingreqPacket) Type() Type { return Pingreq }

func (*PingreqPacket) flags() byte                           { return 0 }
func (*PingreqPacket) size(Version) (int, error)             { return 0, nil }
func (*PingreqPacket) appendBody(b []byte, _ Version) []byte { return b }

// PingrespPacket is PINGRESP, the answer to PINGREQ: 0xD0 0x00 (3.1.1 §3.13,
// 5.0 §3.13).
type PingrespPacket struct{}

// Type returns Pingresp.
func (*PingrespPacket) Type() Type { return Pingresp }

func (*PingrespPacket) flags() byte                           { return 0 }
func (*PingrespPacket) size(Version) (int, error)             { return 0, nil }
func (*PingrespPacket) appendBody(b []byte, _ Version) []byte { return b }

// DisconnectPacket is DISCONNECT (3.1.1 §3.14, 5.0 §3.14). In 3.1.1 only a
// client sends it and it has no body; in 5.0 either side may, with a reason.
//
//	Fixed header: 0xE0, remaining length
//	Reason Code: 1 byte (5.0 only; absent when the remaining length is 0,
//	    meaning normal disconnection)
//	Properties (5.0 only; absent when the remaining length is below 2)
type DisconnectPacket struct {
	ReasonCode ReasonCode
	Properties Properties
}

// Type returns Disconnect.
func (*DisconnectPacket) Type() Type { return Disconnect }

func (*DisconnectPacket) flags() byte { return 0 }

func decodeDisconnect(c *cursor, v Version) (*DisconnectPacket, error) {
	p := &DisconnectPacket{}
	if v != V5 || c.remaining() == 0 {
		return p, nil
	}
	var err error
	if p.ReasonCode, err = decodeReasonAndProperties(c, "DISCONNECT reason code", ctxDisconnect, &p.Properties); err != nil {
		return nil, err
	}
	if !disconnectReasons.has(p.ReasonCode) {
		return nil, fmt.Errorf("DISCONNECT: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(p.ReasonCode))
	}
	return p, nil
}

// decodeReasonAndProperties reads the reason code and optional properties
// that end DISCONNECT and AUTH; the properties may be omitted when the
// remaining length is below 2 (5.0 §3.14.2.2.1, §3.15.2.2.1).
func decodeReasonAndProperties(c *cursor, field string, ctx propContext, props *Properties) (ReasonCode, error) {
	code, err := c.readByte(field)
	if err != nil {
		return 0, err
	}
	if c.remaining() > 0 {
		if err := props.decode(c, ctx); err != nil {
			return 0, err
		}
	}
	return ReasonCode(code), nil
}

func (p *DisconnectPacket) size(v Version) (int, error) {
	if v != V5 {
		if p.ReasonCode != Success {
			return 0, fmt.Errorf("DISCONNECT with %s in MQTT %s: %w", p.ReasonCode, v, ErrNotInVersion)
		}
		return 0, nil
	}
	if !disconnectReasons.has(p.ReasonCode) {
		return 0, fmt.Errorf("DISCONNECT: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(p.ReasonCode))
	}
	if err := p.Properties.validate(ctxDisconnect); err != nil {
		return 0, err
	}
	switch n := p.Properties.length(); {
	case n > 0:
		return 1 + varIntLen(n) + n, nil
	case p.ReasonCode != Success:
		return 1, nil
	}
	return 0, nil
}

func (p *DisconnectPacket) appendBody(b []byte, v Version) []byte {
	if v != V5 {
		return b
	}
	hasProps := p.Properties.length() > 0
	if p.ReasonCode != Success || hasProps {
		b = append(b, byte(p.ReasonCode))
	}
	if hasProps {
		b = p.Properties.appendTo(b)
	}
	return b
}

// AuthPacket is AUTH, the MQTT 5 extended authentication exchange (5.0
// §3.15). It does not exist in 3.1.1, where type 15 is reserved.
//
//	Fixed header: 0xF0, remaining length
//	Reason Code: 1 byte (absent when the remaining length is 0, meaning
//	    Success)
//	Properties (absent when the remaining length is below 2)
type AuthPacket struct {
	ReasonCode ReasonCode
	Properties Properties
}

// Type returns Auth.
func (*AuthPacket) Type() Type { return Auth }

func (*AuthPacket) flags() byte { return 0 }

func decodeAuth(c *cursor) (*AuthPacket, error) {
	p := &AuthPacket{}
	if c.remaining() == 0 {
		return p, nil
	}
	var err error
	if p.ReasonCode, err = decodeReasonAndProperties(c, "AUTH reason code", ctxAuth, &p.Properties); err != nil {
		return nil, err
	}
	if !authReasons.has(p.ReasonCode) {
		return nil, fmt.Errorf("AUTH: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(p.ReasonCode))
	}
	return p, nil
}

// size writes the reason code whenever it is not Success, and then the
// property length too, even if zero: the short form without properties is
// legal only for DISCONNECT in every reading of the specification.
func (p *AuthPacket) size(v Version) (int, error) {
	if v != V5 {
		return 0, fmt.Errorf("AUTH in MQTT %s: %w", v, ErrNotInVersion)
	}
	if !authReasons.has(p.ReasonCode) {
		return 0, fmt.Errorf("AUTH: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(p.ReasonCode))
	}
	if err := p.Properties.validate(ctxAuth); err != nil {
		return 0, err
	}
	n := p.Properties.length()
	if n == 0 && p.ReasonCode == Success {
		return 0, nil
	}
	return 1 + varIntLen(n) + n, nil
}

func (p *AuthPacket) appendBody(b []byte, _ Version) []byte {
	if p.Properties.length() == 0 && p.ReasonCode == Success {
		return b
	}
	return p.Properties.appendTo(append(b, byte(p.ReasonCode)))
}
