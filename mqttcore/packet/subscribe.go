package packet

import "fmt"

// SubscribePacket is SUBSCRIBE (3.1.1 §3.8, 5.0 §3.8).
//
//	Fixed header: 0x82, remaining length
//	Packet Identifier: 2 bytes, not 0
//	Properties (5.0 only)
//	Payload: one or more of Topic Filter (UTF-8 string), Subscription Options (1 byte)
//
// The topic filters are checked only as UTF-8 strings: a filter that is not
// valid gets reason TopicFilterInvalid in the SUBACK, so judging it is the
// receiver's business.
type SubscribePacket struct {
	PacketID      uint16
	Properties    Properties
	Subscriptions []Subscription // at least one
}

// Subscription is one topic filter of a SUBSCRIBE with its options (5.0
// §3.8.3.1). 3.1.1 has only the QoS; the other options are dropped when
// writing for V311.
//
//	Subscription Options: bits 7-6 reserved (0), 5-4 Retain Handling,
//	    3 Retain As Published, 2 No Local, 1-0 Maximum QoS
type Subscription struct {
	Filter            string
	QoS               byte // 0, 1 or 2
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0, 1 or 2
}

// Subscription option bits (5.0 §3.8.3.1).
const (
	subQoS               = 0x03
	subNoLocal           = 0x04
	subRetainAsPublished = 0x08
	subRetainHandling    = 0x30
	subReserved5         = 0xC0
	subReserved311       = 0xFC
)

// Type returns Subscribe.
func (*SubscribePacket) Type() Type { return Subscribe }

func (*SubscribePacket) flags() byte { return requiredFlags[Subscribe] }

func decodeSubscribe(c *cursor, v Version) (*SubscribePacket, error) {
	p := &SubscribePacket{}
	var err error
	if p.PacketID, err = c.readUint16("SUBSCRIBE packet identifier"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := p.Properties.decode(c, ctxSubscribe); err != nil {
			return nil, err
		}
	}
	for c.remaining() > 0 {
		var s Subscription
		if s.Filter, err = c.readString("SUBSCRIBE topic filter"); err != nil {
			return nil, err
		}
		opts, err := c.readByte("SUBSCRIBE options")
		if err != nil {
			return nil, err
		}
		reserved := byte(subReserved311)
		if v == V5 {
			reserved = subReserved5
		}
		if opts&reserved != 0 { // 3.1.1 [MQTT-3-8.3-4], 5.0 [MQTT-3.8.3-5]
			return nil, fmt.Errorf("SUBSCRIBE options %08b: %w: reserved bits set", opts, ErrMalformed)
		}
		s.QoS = opts & subQoS
		s.NoLocal = opts&subNoLocal != 0
		s.RetainAsPublished = opts&subRetainAsPublished != 0
		s.RetainHandling = opts & subRetainHandling >> 4
		p.Subscriptions = append(p.Subscriptions, s)
	}
	return p, p.check(v)
}

// check applies the rules shared by reading and writing.
func (p *SubscribePacket) check(v Version) error {
	if p.PacketID == 0 {
		return fmt.Errorf("SUBSCRIBE: %w: packet identifier 0", ErrProtocolError)
	}
	if len(p.Subscriptions) == 0 { // 3.1.1 [MQTT-3.8.3-3], 5.0 [MQTT-3.8.3-2]
		return fmt.Errorf("SUBSCRIBE: %w: no topic filters", ErrProtocolError)
	}
	for _, s := range p.Subscriptions {
		if s.QoS > 2 { // 3.1.1 [MQTT-3-8.3-4] malformed; 5.0 §3.8.3.1 protocol error
			err := ErrProtocolError
			if v != V5 {
				err = ErrMalformed
			}
			return fmt.Errorf("SUBSCRIBE %q: %w: QoS %d", s.Filter, err, s.QoS)
		}
		if v == V5 && s.RetainHandling > 2 { // 5.0 §3.8.3.1
			return fmt.Errorf("SUBSCRIBE %q: %w: retain handling %d", s.Filter, ErrProtocolError, s.RetainHandling)
		}
	}
	return nil
}

func (p *SubscribePacket) size(v Version) (int, error) {
	if err := p.check(v); err != nil {
		return 0, err
	}
	n := 2
	if v == V5 {
		if err := p.Properties.validate(ctxSubscribe); err != nil {
			return 0, err
		}
		n += p.Properties.blockSize()
	}
	for _, s := range p.Subscriptions {
		if err := validString("SUBSCRIBE topic filter", s.Filter); err != nil {
			return 0, err
		}
		n += 2 + len(s.Filter) + 1
	}
	return n, nil
}

func (p *SubscribePacket) appendBody(b []byte, v Version) []byte {
	b = appendUint16(b, p.PacketID)
	if v == V5 {
		b = p.Properties.appendTo(b)
	}
	for _, s := range p.Subscriptions {
		b = appendString(b, s.Filter)
		opts := s.QoS
		if v == V5 {
			opts |= s.RetainHandling << 4
			if s.NoLocal {
				opts |= subNoLocal
			}
			if s.RetainAsPublished {
				opts |= subRetainAsPublished
			}
		}
		b = append(b, opts)
	}
	return b
}

// SubackPacket is SUBACK (3.1.1 §3.9, 5.0 §3.9).
//
//	Fixed header: 0x90, remaining length
//	Packet Identifier: 2 bytes, not 0
//	Properties (5.0 only)
//	Payload: one reason code per topic filter of the SUBSCRIBE
//
// 3.1.1 return codes are 0, 1, 2 and 0x80 (failure); writing for V311 sends
// every failure reason code as 0x80.
type SubackPacket struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode // at least one
}

// Type returns Suback.
func (*SubackPacket) Type() Type { return Suback }

func (*SubackPacket) flags() byte { return 0 }

func decodeSuback(c *cursor, v Version) (*SubackPacket, error) {
	p := &SubackPacket{}
	var err error
	if p.PacketID, err = c.readUint16("SUBACK packet identifier"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := p.Properties.decode(c, ctxSuback); err != nil {
			return nil, err
		}
	}
	codes := c.rest()
	p.ReasonCodes = make([]ReasonCode, len(codes))
	for i, code := range codes {
		p.ReasonCodes[i] = ReasonCode(code)
		if v != V5 && code > 2 && code != 0x80 { // 3.1.1 §3.9.3
			return nil, fmt.Errorf("SUBACK: %w: return code 0x%02x", ErrProtocolError, code)
		}
	}
	return p, p.check()
}

func (p *SubackPacket) check() error {
	if p.PacketID == 0 {
		return fmt.Errorf("SUBACK: %w: packet identifier 0", ErrProtocolError)
	}
	if len(p.ReasonCodes) == 0 {
		return fmt.Errorf("SUBACK: %w: no reason codes", ErrProtocolError)
	}
	for _, rc := range p.ReasonCodes {
		if !subackReasons.has(rc) {
			return fmt.Errorf("SUBACK: %w: reason code 0x%02x not allowed", ErrProtocolError, byte(rc))
		}
	}
	return nil
}

func (p *SubackPacket) size(v Version) (int, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	n := 2 + len(p.ReasonCodes)
	if v == V5 {
		if err := p.Properties.validate(ctxSuback); err != nil {
			return 0, err
		}
		n += p.Properties.blockSize()
	}
	return n, nil
}

func (p *SubackPacket) appendBody(b []byte, v Version) []byte {
	b = appendUint16(b, p.PacketID)
	if v == V5 {
		b = p.Properties.appendTo(b)
	}
	for _, rc := range p.ReasonCodes {
		if v != V5 && rc.IsError() {
			rc = UnspecifiedError // the 3.1.1 failure code 0x80
		}
		b = append(b, byte(rc))
	}
	return b
}
