package mqttsn

// WillMsg sends a connecting client's Will message (MQTT-SN 1.2 §5.4.9).
//
//	Length (1|3) | MsgType 0x09 (1) | WillMsg (0..n)
type WillMsg struct {
	Message []byte
}

// Type returns TypeWillMsg.
func (*WillMsg) Type() MsgType { return TypeWillMsg }

// AppendTo appends the encoded message to b.
func (p *WillMsg) AppendTo(b []byte) ([]byte, error) {
	return appendWillMsg(b, TypeWillMsg, p.Message)
}

func (p *WillMsg) decode(r reader) reader {
	*p = WillMsg{Message: r.rest()}
	return r
}

// WillMsgUpd updates the Will message during a connection (MQTT-SN 1.2
// §5.4.23).
//
//	Length (1|3) | MsgType 0x1C (1) | WillMsg (0..n)
type WillMsgUpd struct {
	Message []byte
}

// Type returns TypeWillMsgUpd.
func (*WillMsgUpd) Type() MsgType { return TypeWillMsgUpd }

// AppendTo appends the encoded message to b.
func (p *WillMsgUpd) AppendTo(b []byte) ([]byte, error) {
	return appendWillMsg(b, TypeWillMsgUpd, p.Message)
}

func (p *WillMsgUpd) decode(r reader) reader {
	*p = WillMsgUpd{Message: r.rest()}
	return r
}

func appendWillMsg(b []byte, t MsgType, msg []byte) ([]byte, error) {
	b, err := appendHeader(b, t, len(msg))
	if err != nil {
		return b, err
	}
	return append(b, msg...), nil
}
