package mqttsn

// The messages in this file carry only a ReturnCode.

// ConnAck answers a CONNECT (MQTT-SN 1.2 §5.4.5).
//
//	Length (1) | MsgType 0x05 (1) | ReturnCode (1)
type ConnAck struct {
	ReturnCode ReturnCode
}

// Type returns TypeConnAck.
func (*ConnAck) Type() MsgType { return TypeConnAck }

// AppendTo appends the encoded message to b.
func (p *ConnAck) AppendTo(b []byte) ([]byte, error) {
	return appendReturnCode(b, TypeConnAck, p.ReturnCode)
}

func (p *ConnAck) decode(r reader) reader {
	*p = ConnAck{ReturnCode: ReturnCode(r.u8("return code"))}
	return r
}

// WillTopicResp answers a WILLTOPICUPD (MQTT-SN 1.2 §5.4.24).
//
//	Length (1) | MsgType 0x1B (1) | ReturnCode (1)
type WillTopicResp struct {
	ReturnCode ReturnCode
}

// Type returns TypeWillTopicResp.
func (*WillTopicResp) Type() MsgType { return TypeWillTopicResp }

// AppendTo appends the encoded message to b.
func (p *WillTopicResp) AppendTo(b []byte) ([]byte, error) {
	return appendReturnCode(b, TypeWillTopicResp, p.ReturnCode)
}

func (p *WillTopicResp) decode(r reader) reader {
	*p = WillTopicResp{ReturnCode: ReturnCode(r.u8("return code"))}
	return r
}

// WillMsgResp answers a WILLMSGUPD (MQTT-SN 1.2 §5.4.25).
//
//	Length (1) | MsgType 0x1D (1) | ReturnCode (1)
type WillMsgResp struct {
	ReturnCode ReturnCode
}

// Type returns TypeWillMsgResp.
func (*WillMsgResp) Type() MsgType { return TypeWillMsgResp }

// AppendTo appends the encoded message to b.
func (p *WillMsgResp) AppendTo(b []byte) ([]byte, error) {
	return appendReturnCode(b, TypeWillMsgResp, p.ReturnCode)
}

func (p *WillMsgResp) decode(r reader) reader {
	*p = WillMsgResp{ReturnCode: ReturnCode(r.u8("return code"))}
	return r
}

func appendReturnCode(b []byte, t MsgType, c ReturnCode) ([]byte, error) {
	b, err := appendHeader(b, t, 1)
	if err != nil {
		return b, err
	}
	return append(b, byte(c)), nil
}
