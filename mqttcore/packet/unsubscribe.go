package packet

import "fmt"

// UnsubscribePacket is UNSUBSCRIBE (3.1.1 §3.10, 5.0 §3.10).
//
//	Fixed header: 0xA2, remaining length
//	Packet Identifier: 2 bytes, not 0
//	Properties (5.0 only)
//	Payload: one or more Topic Filters (UTF-8 strings)
type UnsubscribePacket struct {
	PacketID   uint16
	Properties Properties
	Filters    []string // at least one
}

// Type returns Unsubscribe.
func (*UnsubscribePacket) Type() Type { return Unsubscribe }

func (*UnsubscribePacket) flags() byte { return requiredFlags[Unsubscribe] }

func decodeUnsubscribe(c *cursor, v Version) (*UnsubscribePacket, error) {
	p := &UnsubscribePacket{}
	var err error
	if p.PacketID, err = c.readUint16("UNSUBSCRIBE packet identifier"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := p.Properties.decode(c, ctxUnsubscribe); err != nil {
			return nil, err
		}
	}
	for c.remaining() > 0 {
		f, err := c.readString("UNSUBSCRIBE topic filter")
		if err != nil {
			return nil, err
		}
		p.Filters = append(p.Filters, f)
	}
	return p, p.check()
}

func (p *UnsubscribePacket) check() error {
	if p.PacketID == 0 {
		return fmt.Errorf("UNSUBSCRIBE: %w: packet identifier 0", ErrProtocolError)
	}
	if len(p.Filters) == 0 { // 3.1.1 [MQTT-3.10.3-2], 5.0 [MQTT-3.10.3-2]
		return fmt.Errorf("UNSUBSCRIBE: %w: no topic filters", ErrProtocolError)
	}
	return nil
}

func (p *UnsubscribePacket) size(v Version) (int, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	n := 2
	if v == V5 {
		if err := p.Properties.validate(ctxUnsubscribe); err != nil {
			return 0, err
		}
		n += p.Properties.blockSize()
	}
	for _, f := range p.Filters {
		if err := validString("UNSUBSCRIBE topic filter", f); err != nil {
			return 0, err
		}
		n += 2 + len(f)
	}
	return n, nil
}

func (p *UnsubscribePacket) appendBody(b []byte, v Version) []byte {
	b = appendUint16(b, p.PacketID)
	if v == V5 {
		b = p.Properties.appendTo(b)
	}
	for _, f := range p.Filters {
		b = appendString(b, f)
	}
	return b
}

// UnsubackPacket is UNSUBACK (3.1.1 §3.11, 5.0 §3.11).
//
//	Fixed header: 0xB0, remaining length
//	Packet Identifier: 2 bytes, not 0
//	Properties (5.0 only)
//	Payload (5.0 only): one reason code per topic filter of the UNSUBSCRIBE
//
// In 3.1.1 the packet is the identifier alone; ReasonCodes is nil when read
// and ignored when written.
type UnsubackPacket struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode // 5.0 only, at least one
}

// Type returns Unsuback.
func (*UnsubackPacket) Type() Type { return Unsuback }

func (*UnsubackPacket) flags() byte { return 0 }

func decodeUnsuback(c *cursor, v Version) (*UnsubackPacket, error) {
	p := &UnsubackPacket{}
	var err error
	if p.PacketID, err = c.readUint16("UNSUBACK packet identifier"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := p.Properties.decode(c, ctxUnsuback); err != nil {
			return nil, err
		}
		codes := c.rest()
		p.ReasonCodes = make([]ReasonCode, len(codes))
		for i, code := range codes {
			p.ReasonCodes[i] = ReasonCode(code)
		}
	}
	return p, p.check(v)
}

func (p *UnsubackPacket) check(v Version) error {
	if p.PacketID == 0 {
		return fmt.Errorf("UNSUBACK: %w: packet identifier 0", ErrProtocolError)
	}
	if v != V5 {
		return nil
	}
	if len(p.ReasonCodes) == 0 {
		return fmt.Errorf("UNSUBACK: %w: no reason codes", ErrProtocolError)
	}
	for _, rc := range p.ReasonCodes {
		if !unsubackReasons.has(rc) {
			return fmt.Errorf("UNSUBACK: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(rc))
		}
	}
	return nil
}

func (p *UnsubackPacket) size(v Version) (int, error) {
	if err := p.check(v); err != nil {
		return 0, err
	}
	if v != V5 {
		return 2, nil
	}
	if err := p.Properties.validate(ctxUnsuback); err != nil {
		return 0, err
	}
	return 2 + p.Properties.blockSize() + len(p.ReasonCodes), nil
}

func (p *UnsubackPacket) appendBody(b []byte, v Version) []byte {
	b = appendUint16(b, p.PacketID)
	if v != V5 {
		return b
	}
	b = p.Properties.appendTo(b)
	for _, rc := range p.ReasonCodes {
		b = append(b, byte(rc))
	}
	return b
}
