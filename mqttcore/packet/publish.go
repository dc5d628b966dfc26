package packet

import "fmt"

// PublishPacket is PUBLISH, an application message in either direction
// (3.1.1 §3.3, 5.0 §3.3).
//
//	Fixed header: 0x3 | DUP<<3 | QoS<<1 | RETAIN, remaining length
//	Topic Name: UTF-8 string (5.0: may be empty when a Topic Alias is set)
//	Packet Identifier: 2 bytes, only when QoS > 0, never 0
//	Properties (5.0 only)
//	Payload: the rest of the packet
//
// Wildcards in the topic name are left to the receiver, which answers them
// with reason TopicNameInvalid in 5.0 (5.0 §3.3.2.1).
type PublishPacket struct {
	DUP        bool // only with QoS > 0
	QoS        byte // 0, 1 or 2
	Retain     bool
	Topic      string
	PacketID   uint16 // 0 for QoS 0, otherwise not 0
	Properties Properties
	Payload    []byte // nil when empty
}

// Type returns Publish.
func (*PublishPacket) Type() Type { return Publish }

// Fixed header flags of PUBLISH (3.1.1 §3.3.1, 5.0 §3.3.1).
const (
	publishRetain = 0x01
	publishQoS    = 0x06
	publishDUP    = 0x08
)

func (p *PublishPacket) flags() byte {
	f := p.QoS << 1
	if p.DUP {
		f |= publishDUP
	}
	if p.Retain {
		f |= publishRetain
	}
	return f
}

func decodePublish(c *cursor, flags byte, v Version) (*PublishPacket, error) {
	p := &PublishPacket{
		DUP:    flags&publishDUP != 0,
		QoS:    flags & publishQoS >> 1,
		Retain: flags&publishRetain != 0,
	}
	if p.QoS == 3 { // 3.1.1 [MQTT-3.3.1-4], 5.0 [MQTT-3.3.1-4]
		return nil, fmt.Errorf("PUBLISH: %w: QoS 3", ErrMalformed)
	}
	var err error
	if p.Topic, err = c.readString("PUBLISH topic"); err != nil {
		return nil, err
	}
	if p.QoS > 0 {
		if p.PacketID, err = c.readUint16("PUBLISH packet identifier"); err != nil {
			return nil, err
		}
	}
	if v == V5 {
		if err := p.Properties.decode(c, ctxPublish); err != nil {
			return nil, err
		}
	}
	if p.Payload = c.rest(); len(p.Payload) == 0 {
		p.Payload = nil
	}
	return p, p.check(v)
}

// check applies the rules shared by reading and writing.
func (p *PublishPacket) check(v Version) error {
	switch {
	case p.QoS > 2:
		return fmt.Errorf("PUBLISH: %w: QoS %d", ErrMalformed, p.QoS)
	case p.QoS == 0 && p.DUP: // [MQTT-3.3.1-2]
		return fmt.Errorf("PUBLISH: %w: DUP set on QoS 0", ErrProtocolError)
	case p.QoS == 0 && p.PacketID != 0:
		return fmt.Errorf("PUBLISH: %w: packet identifier on QoS 0", ErrProtocolError)
	case p.QoS > 0 && p.PacketID == 0: // [MQTT-2.2.1-3] (3.1.1 [MQTT-2.3.1-1])
		return fmt.Errorf("PUBLISH: %w: packet identifier 0", ErrProtocolError)
	case p.Topic == "" && (v != V5 || p.Properties.TopicAlias == nil): // 3.1.1 [MQTT-4.7.3-1], 5.0 §3.3.2.3.4
		return fmt.Errorf("PUBLISH: %w: empty topic without topic alias", ErrProtocolError)
	}
	return nil
}

func (p *PublishPacket) size(v Version) (int, error) {
	if err := p.check(v); err != nil {
		return 0, err
	}
	if err := validString("PUBLISH topic", p.Topic); err != nil {
		return 0, err
	}
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if v == V5 {
		if err := p.Properties.validate(ctxPublish); err != nil {
			return 0, err
		}
		n += p.Properties.blockSize()
	}
	return n, nil
}

func (p *PublishPacket) appendBody(b []byte, v Version) []byte {
	b = appendString(b, p.Topic)
	if p.QoS > 0 {
		b = appendUint16(b, p.PacketID)
	}
	if v == V5 {
		b = p.Properties.appendTo(b)
	}
	return append(b, p.Payload...)
}
