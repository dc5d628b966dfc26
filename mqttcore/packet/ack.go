package packet

import "fmt"

// AckPacket is PUBACK, PUBREC, PUBREL or PUBCOMP, which share one layout
// (3.1.1 §3.4-§3.7, 5.0 §3.4-§3.7).
//
//	Fixed header: type<<4 (PUBREL: 0x62), remaining length
//	Packet Identifier: 2 bytes, not 0
//	Reason Code: 1 byte (5.0 only; absent when the remaining length is 2,
//	    meaning Success)
//	Properties (5.0 only; absent when the remaining length is below 4)
//
// 3.1.1 has no reason codes: writing for V311 drops a success code such as
// NoMatchingSubscribers and refuses a failure code with ErrNotInVersion.
type AckPacket struct {
	PacketType Type // Puback, Pubrec, Pubrel or Pubcomp
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Type returns PacketType.
func (p *AckPacket) Type() Type { return p.PacketType }

func (p *AckPacket) flags() byte { return requiredFlags[p.PacketType] }

// Field names for errors, built once so that reading allocates nothing for
// them.
var ackIDFields, ackReasonFields [Pubcomp + 1]string

func init() {
	for _, t := range []Type{Puback, Pubrec, Pubrel, Pubcomp} {
		ackIDFields[t] = t.String() + " packet identifier"
		ackReasonFields[t] = t.String() + " reason code"
	}
}

func decodeAck(c *cursor, t Type, v Version) (*AckPacket, error) {
	p := &AckPacket{PacketType: t}
	var err error
	if p.PacketID, err = c.readUint16(ackIDFields[t]); err != nil {
		return nil, err
	}
	if v == V5 && c.remaining() > 0 { // 5.0 §3.4.2.1: absent means Success
		code, err := c.readByte(ackReasonFields[t])
		if err != nil {
			return nil, err
		}
		p.ReasonCode = ReasonCode(code)
		if c.remaining() > 0 { // 5.0 §3.4.2.2.1: absent below 4 bytes
			if err := p.Properties.decode(c, ctxAck); err != nil {
				return nil, err
			}
		}
	}
	return p, p.check(v)
}

// check applies the rules shared by reading and writing.
func (p *AckPacket) check(v Version) error {
	t := p.PacketType
	reasons := &pubackReasons
	switch t {
	case Puback, Pubrec:
	case Pubrel, Pubcomp:
		reasons = &pubrelReasons
	default:
		return fmt.Errorf("acknowledgement: %w: packet type %s", ErrMalformed, t)
	}
	if p.PacketID == 0 {
		return fmt.Errorf("%s: %w: packet identifier 0", t, ErrProtocolError)
	}
	if v == V5 && !reasons.has(p.ReasonCode) {
		return fmt.Errorf("%s: %w: reason code 0x%02x not allowed", t, ErrProtocolError, byte(p.ReasonCode))
	}
	return nil
}

func (p *AckPacket) size(v Version) (int, error) {
	if err := p.check(v); err != nil {
		return 0, err
	}
	if v != V5 {
		if p.ReasonCode.IsError() {
			return 0, fmt.Errorf("%s with %s in MQTT %s: %w", p.PacketType, p.ReasonCode, v, ErrNotInVersion)
		}
		return 2, nil
	}
	if err := p.Properties.validate(ctxAck); err != nil {
		return 0, err
	}
	switch n := p.Properties.length(); {
	case n > 0:
		return 3 + varIntLen(n) + n, nil
	case p.ReasonCode != Success:
		return 3, nil
	}
	return 2, nil
}

func (p *AckPacket) appendBody(b []byte, v Version) []byte {
	b = appendUint16(b, p.PacketID)
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
