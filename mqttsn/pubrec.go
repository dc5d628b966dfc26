package mqttsn

// The QoS 2 flow (MQTT-SN 1.2 §5.4.14). The three messages share one
// layout; note their type numbers are not in MQTT order.
//
//	Length (1) | MsgType (1) | MsgId (2)

// PubRec is the first reply to a QoS 2 PUBLISH (type 0x0F).
type PubRec struct {
	MsgID uint16
}

// Type returns TypePubRec.
func (*PubRec) Type() MsgType { return TypePubRec }

// AppendTo appends the encoded message to b.
func (p *PubRec) AppendTo(b []byte) ([]byte, error) { return appendMsgID(b, TypePubRec, p.MsgID) }

func (p *PubRec) decode(r reader) reader {
	*p = PubRec{MsgID: r.u16("msg id")}
	return r
}

// PubRel answers a PUBREC (type 0x10).
type PubRel struct {
	MsgID uint16
}

// Type returns TypePubRel.
func (*PubRel) Type() MsgType { return TypePubRel }

// AppendTo appends the encoded message to b.
func (p *PubRel) AppendTo(b []byte) ([]byte, error) { return appendMsgID(b, TypePubRel, p.MsgID) }

func (p *PubRel) decode(r reader) reader {
	*p = PubRel{MsgID: r.u16("msg id")}
	return r
}

// PubComp completes the QoS 2 flow (type 0x0E).
type PubComp struct {
	MsgID uint16
}

// Type returns TypePubComp.
func (*PubComp) Type() MsgType { return TypePubComp }

// AppendTo appends the encoded message to b.
func (p *PubComp) AppendTo(b []byte) ([]byte, error) { return appendMsgID(b, TypePubComp, p.MsgID) }

func (p *PubComp) decode(r reader) reader {
	*p = PubComp{MsgID: r.u16("msg id")}
	return r
}

// appendMsgID encodes the messages whose body is only a MsgId: PUBREC,
// PUBREL, PUBCOMP and UNSUBACK.
func appendMsgID(b []byte, t MsgType, msgID uint16) ([]byte, error) {
	b, err := appendHeader(b, t, 2)
	if err != nil {
		return b, err
	}
	return appendUint16(b, msgID), nil
}
