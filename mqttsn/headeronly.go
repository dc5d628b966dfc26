package mqttsn

// The messages in this file have no variable part: Length (1) | MsgType (1).

// WillTopicReq asks a connecting client for its Will topic (MQTT-SN 1.2
// §5.4.6).
type WillTopicReq struct{}

// Type returns TypeWillTopicReq.
func (*WillTopicReq) Type() MsgType { return TypeWillTopicReq }

// AppendTo appends the encoded message to b.
func (*WillTopicReq) AppendTo(b []byte) ([]byte, error) { return appendHeader(b, TypeWillTopicReq, 0) }

func (*WillTopicReq) decode(r reader) reader { return r }

// WillMsgReq asks a connecting client for its Will message (MQTT-SN 1.2
// §5.4.8).
type WillMsgReq struct{}

// Type returns TypeWillMsgReq.
func (*WillMsgReq) Type() MsgType { return TypeWillMsgReq }

// AppendTo appends the encoded message to b.
func (*WillMsgReq) AppendTo(b []byte) ([]byte, error) { return appendHeader(b, TypeWillMsgReq, 0) }

func (*WillMsgReq) decode(r reader) reader { return r }

// PingResp answers a PINGREQ; to a waking client it also says that no
// buffered messages remain (MQTT-SN 1.2 §5.4.20).
type PingResp struct{}

// Type returns TypePingResp.
func (*PingResp) Type() MsgType { return TypePingResp }

// AppendTo appends the encoded message to b.
func (*PingResp) AppendTo(b []byte) ([]byte, error) { return appendHeader(b, TypePingResp, 0) }

func (*PingResp) decode(r reader) reader { return r }
