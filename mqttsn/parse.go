package mqttsn

import (
	"bytes"
	"fmt"
)

// decoder is implemented by every message type: decode reads the body from
// r, overwrites every field of the receiver and returns r advanced, with
// any error recorded in it. The reader travels by value so that it stays
// on the caller's stack despite the dynamic call.
type decoder interface {
	Packet
	decode(r reader) reader
}

// readHeader reads the Length and MsgType fields of the datagram b and
// returns a reader positioned at the body (MQTT-SN 1.2 §5.2):
//
//	Length (1): 0x02..0xFF, total octets     | MsgType (1) | body
//	0x01 (1), Length (2): 0x0004..0xFFFF     | MsgType (1) | body
//
// Length must equal len(b), except for the encapsulation (§5.5), whose
// 1-octet Length counts only up to the end of the Wireless Node Id.
func readHeader(b []byte) (reader, error) {
	if len(b) < 2 {
		return reader{}, fmt.Errorf("%w: datagram of %d octets", ErrShortPacket, len(b))
	}
	r := reader{b: b}
	n := int(r.u8(""))
	long := n == 0x01
	switch {
	case n == 0x00:
		return reader{}, fmt.Errorf("%w: first octet 0x00", ErrInvalidLength)
	case long && len(b) < 4:
		return reader{}, fmt.Errorf("%w: 3-octet length form in a datagram of %d octets", ErrShortPacket, len(b))
	case long:
		if n = int(r.u16("")); n < 4 {
			return reader{}, fmt.Errorf("%w: 3-octet length %d", ErrInvalidLength, n)
		}
	}
	r.t = MsgType(r.u8(""))
	r.length = n
	if r.t == TypeEncapsulated {
		switch {
		case long:
			return reader{}, fmt.Errorf("%w: encapsulation with the 3-octet length form", ErrInvalidLength)
		case n < 3:
			return reader{}, fmt.Errorf("%w: encapsulation length %d", ErrInvalidLength, n)
		case n > len(b):
			return reader{}, fmt.Errorf("%w: encapsulation length %d, datagram of %d octets", ErrLengthMismatch, n, len(b))
		}
		return r, nil
	}
	if n != len(b) {
		return reader{}, fmt.Errorf("%w: length %d, datagram of %d octets", ErrLengthMismatch, n, len(b))
	}
	return r, nil
}

// newPacket returns a new, zero packet of type t, or nil if t is reserved.
func newPacket(t MsgType) decoder {
	switch t {
	case TypeAdvertise:
		return new(Advertise)
	case TypeSearchGW:
		return new(SearchGW)
	case TypeGWInfo:
		return new(GWInfo)
	case TypeConnect:
		return new(Connect)
	case TypeConnAck:
		return new(ConnAck)
	case TypeWillTopicReq:
		return new(WillTopicReq)
	case TypeWillTopic:
		return new(WillTopic)
	case TypeWillMsgReq:
		return new(WillMsgReq)
	case TypeWillMsg:
		return new(WillMsg)
	case TypeRegister:
		return new(Register)
	case TypeRegAck:
		return new(RegAck)
	case TypePublish:
		return new(Publish)
	case TypePubAck:
		return new(PubAck)
	case TypePubComp:
		return new(PubComp)
	case TypePubRec:
		return new(PubRec)
	case TypePubRel:
		return new(PubRel)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeSubAck:
		return new(SubAck)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeUnsubAck:
		return new(UnsubAck)
	case TypePingReq:
		return new(PingReq)
	case TypePingResp:
		return new(PingResp)
	case TypeDisconnect:
		return new(Disconnect)
	case TypeWillTopicUpd:
		return new(WillTopicUpd)
	case TypeWillTopicResp:
		return new(WillTopicResp)
	case TypeWillMsgUpd:
		return new(WillMsgUpd)
	case TypeWillMsgResp:
		return new(WillMsgResp)
	case TypeEncapsulated:
		return new(Encapsulated)
	}
	return nil
}

func unknownType(t MsgType) error {
	return fmt.Errorf("%w 0x%02x", ErrUnknownType, byte(t))
}

// Parse decodes the datagram b, which must hold exactly one message. The
// returned Packet is a pointer to one of the message structs (*Publish,
// *Connect, …) and shares no memory with b.
func Parse(b []byte) (Packet, error) {
	r, err := readHeader(b)
	if err != nil {
		return nil, err
	}
	if r.t == TypePublish {
		return parsePublish(r)
	}
	p := newPacket(r.t)
	if p == nil {
		return nil, unknownType(r.t)
	}
	r = p.decode(r)
	if err := r.finish(); err != nil {
		return nil, err
	}
	switch p := p.(type) {
	case *GWInfo:
		p.GatewayAddr = clone(p.GatewayAddr)
	case *WillMsg:
		p.Message = clone(p.Message)
	case *WillMsgUpd:
		p.Message = clone(p.Message)
	case *Encapsulated:
		// One allocation for both fields.
		n := len(p.NodeID)
		buf := append(append(make([]byte, 0, n+len(p.Message)), p.NodeID...), p.Message...)
		p.NodeID, p.Message = nil, buf[n:]
		if n > 0 {
			p.NodeID = buf[:n:n]
		}
	}
	return p, nil
}

// inlinePayload is the largest PUBLISH payload that Parse stores in the
// same allocation as the Publish struct; it covers typical sensor
// readings and the 60-octet ZigBee maximum (§7.4), and keeps the
// allocation at 128 octets.
const inlinePayload = 80

// publishInline holds a Publish and its payload in one allocation.
type publishInline struct {
	p   Publish
	buf [inlinePayload]byte
}

func parsePublish(r reader) (Packet, error) {
	var p Publish
	r = p.decode(r)
	if err := r.finish(); err != nil {
		return nil, err
	}
	if n := len(p.Data); n > 0 && n <= inlinePayload {
		s := new(publishInline)
		s.p = p
		s.p.Data = s.buf[:copy(s.buf[:], p.Data):n]
		return &s.p, nil
	}
	q := new(Publish)
	*q = p
	q.Data = clone(p.Data)
	return q, nil
}

// clone copies b; empty input gives nil, as the decoders produce.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// Parser decodes datagrams like Parse, without allocating for messages
// whose fields are all integers or byte slices (PUBLISH other than the
// long-topic-name form, the acknowledgements, …). It reuses one struct per message type: the Packet
// returned by Parse, and every byte slice in it (Data, Message, NodeID,
// GatewayAddr), are only valid until the next call to Parse, and the byte
// slices alias b; the caller copies what it keeps. String fields are
// always copies. The zero value is ready to use. A Parser is not safe for
// concurrent use.
type Parser struct {
	// pkts holds the reused structs, indexed by slot.
	pkts [numSlots]decoder
}

// numSlots covers the types 0x00..0x1D plus the encapsulation.
const numSlots = int(TypeWillMsgResp) + 2

// slot returns the index in Parser.pkts of a known message type.
func slot(t MsgType) int {
	if t == TypeEncapsulated {
		return numSlots - 1
	}
	return int(t)
}

// Parse decodes the datagram b, which must hold exactly one message; see
// the Parser type for the lifetime of the result.
func (ps *Parser) Parse(b []byte) (Packet, error) {
	r, err := readHeader(b)
	if err != nil {
		return nil, err
	}
	var p decoder
	if r.t <= TypeWillMsgResp || r.t == TypeEncapsulated {
		p = ps.pkts[slot(r.t)]
	}
	if p == nil {
		if p = newPacket(r.t); p == nil {
			return nil, unknownType(r.t)
		}
		ps.pkts[slot(r.t)] = p
	}
	r = p.decode(r)
	if err := r.finish(); err != nil {
		return nil, err
	}
	return p, nil
}
