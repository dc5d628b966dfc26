package mqttsntest

import (
	"bytes"

	"github.com/snwgw/snwgw/mqttsn"
)

// Case is a well-formed datagram and the packet it decodes to.
type Case struct {
	Name   string
	Raw    []byte
	Packet mqttsn.Packet
	Note   string
	// NonCanonical marks a datagram that decodes to Packet but that
	// encoding Packet does not reproduce (the 3-octet length on a short
	// message, set bits the message does not use, …). Encoding Packet and
	// decoding the result still gives Packet.
	NonCanonical bool
}

// BadCase is a malformed datagram and the sentinel its decoding error must
// wrap.
type BadCase struct {
	Name string
	Raw  []byte
	Err  error
	Note string
}

// EncodeCase is a packet that must not encode, and the sentinel the
// encoding error must wrap.
type EncodeCase struct {
	Name   string
	Packet mqttsn.Packet
	Err    error
}

// raw concatenates octets (int or character literals), strings and byte
// slices.
func raw(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			b = append(b, byte(p))
		case rune: // a character literal such as 'a'
			b = append(b, byte(p))
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		default:
			panic("mqttsntest: raw: unsupported part")
		}
	}
	return b
}

// payload returns n octets of recognisable data.
func payload(n int) []byte {
	return bytes.Repeat([]byte("0123456789"), n/10+1)[:n]
}

// Cases holds at least one datagram for every message type, covering every
// flag combination that matters and both length forms.
var Cases = []Case{
	// ADVERTISE, SEARCHGW, GWINFO (§5.4.1–5.4.3)
	{Name: "advertise", Raw: raw(0x05, 0x00, 0x01, 0x03, 0x84), // GwId 1, Duration 900
		Packet: &mqttsn.Advertise{GatewayID: 1, Duration: 900}},
	{Name: "searchgw radius 1", Raw: raw(0x03, 0x01, 0x01),
		Packet: &mqttsn.SearchGW{Radius: 1}},
	{Name: "searchgw radius 0", Raw: raw(0x03, 0x01, 0x00),
		Packet: &mqttsn.SearchGW{Radius: 0}, Note: "radius 0 means all nodes"},
	{Name: "gwinfo from gateway", Raw: raw(0x03, 0x02, 0x05),
		Packet: &mqttsn.GWInfo{GatewayID: 5}},
	{Name: "gwinfo from client", Raw: raw(0x07, 0x02, 0x01, 0xc0, 0xa8, 0x01, 0x0a), // GwAdd 192.168.1.10
		Packet: &mqttsn.GWInfo{GatewayID: 1, GatewayAddr: []byte{192, 168, 1, 10}},
		Note:   "GwAdd is raw octets to the end of the message, as Paho sends it"},

	// CONNECT (§5.4.4): Flags, ProtocolId 0x01, Duration, ClientId
	{Name: "connect will clean", Raw: raw(0x0e, 0x04, 0x0c, 0x01, 0x00, 0x3c, "client-1"),
		Packet: &mqttsn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: "client-1"}},
	{Name: "connect clean", Raw: raw(0x0e, 0x04, 0x04, 0x01, 0x00, 0x3c, "client-1"),
		Packet: &mqttsn.Connect{CleanSession: true, Duration: 60, ClientID: "client-1"}},
	{Name: "connect will", Raw: raw(0x0e, 0x04, 0x08, 0x01, 0x01, 0x2c, "client-2"),
		Packet: &mqttsn.Connect{Will: true, Duration: 300, ClientID: "client-2"}},
	{Name: "connect no flags max duration", Raw: raw(0x0e, 0x04, 0x00, 0x01, 0xff, 0xff, "client-3"),
		Packet: &mqttsn.Connect{Duration: 0xffff, ClientID: "client-3"}},
	{Name: "connect unused flag bits", Raw: raw(0x0e, 0x04, 0xff, 0x01, 0x00, 0x00, "client-4"),
		Packet:       &mqttsn.Connect{Will: true, CleanSession: true, ClientID: "client-4"},
		Note:         "DUP, QoS, Retain and TopicIdType are not used in CONNECT and are ignored",
		NonCanonical: true},

	// CONNACK (§5.4.5)
	{Name: "connack accepted", Raw: raw(0x03, 0x05, 0x00),
		Packet: &mqttsn.ConnAck{ReturnCode: mqttsn.Accepted}},
	{Name: "connack congestion", Raw: raw(0x03, 0x05, 0x01),
		Packet: &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedCongestion}},
	{Name: "connack not supported", Raw: raw(0x03, 0x05, 0x03),
		Packet: &mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported}},
	{Name: "connack reserved code", Raw: raw(0x03, 0x05, 0x04),
		Packet: &mqttsn.ConnAck{ReturnCode: 0x04}, Note: "reserved return codes are carried as they are"},

	// WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG (§5.4.6–5.4.9)
	{Name: "willtopicreq", Raw: raw(0x02, 0x06), Packet: &mqttsn.WillTopicReq{}},
	{Name: "willtopic qos1", Raw: raw(0x0d, 0x07, 0x20, "will/topic"),
		Packet: &mqttsn.WillTopic{QoS: mqttsn.QoS1, Topic: "will/topic"}},
	{Name: "willtopic qos2 retain", Raw: raw(0x0d, 0x07, 0x50, "will/topic"),
		Packet: &mqttsn.WillTopic{QoS: mqttsn.QoS2, Retain: true, Topic: "will/topic"}},
	{Name: "willtopic qos0", Raw: raw(0x0d, 0x07, 0x00, "will/topic"),
		Packet: &mqttsn.WillTopic{Topic: "will/topic"}},
	{Name: "willtopic empty", Raw: raw(0x02, 0x07),
		Packet: &mqttsn.WillTopic{}, Note: "exactly 2 octets: deletes the Will topic and message"},
	{Name: "willtopic flags without topic", Raw: raw(0x03, 0x07, 0x30),
		Packet:       &mqttsn.WillTopic{},
		Note:         "flags but no topic: the empty WILLTOPIC, flags dropped",
		NonCanonical: true},
	{Name: "willtopic unused flag bits", Raw: raw(0x07, 0x07, 0xaf, "w/t1"),
		Packet:       &mqttsn.WillTopic{QoS: mqttsn.QoS1, Topic: "w/t1"},
		Note:         "DUP, Will, CleanSession and TopicIdType are not used in WILLTOPIC",
		NonCanonical: true},
	{Name: "willmsgreq", Raw: raw(0x02, 0x08), Packet: &mqttsn.WillMsgReq{}},
	{Name: "willmsg", Raw: raw(0x09, 0x09, "offline"),
		Packet: &mqttsn.WillMsg{Message: []byte("offline")}},
	{Name: "willmsg empty", Raw: raw(0x02, 0x09), Packet: &mqttsn.WillMsg{}},

	// REGISTER, REGACK (§5.4.10, §5.4.11)
	{Name: "register from client", Raw: raw(0x12, 0x0a, 0x00, 0x00, 0x00, 0x01, "sensors/temp"),
		Packet: &mqttsn.Register{MsgID: 1, TopicName: "sensors/temp"}},
	{Name: "register from gateway", Raw: raw(0x12, 0x0a, 0x00, 0x05, 0x01, 0x02, "sensors/temp"),
		Packet: &mqttsn.Register{TopicID: 5, MsgID: 0x0102, TopicName: "sensors/temp"}},
	{Name: "regack accepted", Raw: raw(0x07, 0x0b, 0x00, 0x05, 0x00, 0x01, 0x00),
		Packet: &mqttsn.RegAck{TopicID: 5, MsgID: 1, ReturnCode: mqttsn.Accepted}},
	{Name: "regack congestion", Raw: raw(0x07, 0x0b, 0x00, 0x00, 0x00, 0x02, 0x01),
		Packet: &mqttsn.RegAck{MsgID: 2, ReturnCode: mqttsn.RejectedCongestion}},

	// PUBLISH (§5.4.12): Flags, TopicId, MsgId, Data
	{Name: "publish qos0 normal", Raw: raw(0x0b, 0x0c, 0x00, 0x00, 0x05, 0x00, 0x00, "21.5"),
		Packet: &mqttsn.Publish{TopicID: 5, Data: []byte("21.5")}},
	{Name: "publish qos1 normal", Raw: raw(0x0b, 0x0c, 0x20, 0x00, 0x05, 0x00, 0x02, "21.5"),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 2, Data: []byte("21.5")}},
	{Name: "publish qos2 dup retain", Raw: raw(0x0b, 0x0c, 0xd0, 0x00, 0x05, 0x00, 0x03, "21.5"),
		Packet: &mqttsn.Publish{DUP: true, QoS: mqttsn.QoS2, Retain: true, TopicID: 5, MsgID: 3, Data: []byte("21.5")}},
	{Name: "publish qos0 retain", Raw: raw(0x0b, 0x0c, 0x10, 0x00, 0x05, 0x00, 0x00, "21.5"),
		Packet: &mqttsn.Publish{Retain: true, TopicID: 5, Data: []byte("21.5")}},
	{Name: "publish qos1 dup predefined", Raw: raw(0x09, 0x0c, 0xa1, 0x00, 0x07, 0x00, 0x04, "on"),
		Packet: &mqttsn.Publish{DUP: true, QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, TopicID: 7, MsgID: 4, Data: []byte("on")}},
	{Name: "publish qos2 short", Raw: raw(0x09, 0x0c, 0x42, 'a', 'b', 0x00, 0x05, "on"),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoS2, TopicIDType: mqttsn.TopicShort, TopicID: 0x6162, MsgID: 5, Data: []byte("on")},
		Note:   `short topic "ab" travels in the TopicId field`},
	{Name: "publish qos-1 short", Raw: raw(0x08, 0x0c, 0x62, 'a', 'b', 0x00, 0x00, "x"),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort, TopicID: 0x6162, Data: []byte("x")}},
	{Name: "publish qos-1 predefined", Raw: raw(0x08, 0x0c, 0x61, 0x00, 0x07, 0x00, 0x00, "y"),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 7, Data: []byte("y")}},
	{Name: "publish qos-1 long topic name", Raw: raw(0x17, 0x0c, 0x60, 0x00, 0x0c, 0x00, 0x00, "sensors/temp", "21.5"),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: "sensors/temp", Data: []byte("21.5")},
		Note:   "Paho extension: TopicId holds the name length (12), the name precedes the data"},
	{Name: "publish empty payload", Raw: raw(0x07, 0x0c, 0x20, 0x00, 0x05, 0x00, 0x09),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 9}},
	{Name: "publish unused flag bits", Raw: raw(0x0b, 0x0c, 0x2c, 0x00, 0x05, 0x00, 0x02, "21.5"),
		Packet:       &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 2, Data: []byte("21.5")},
		Note:         "Will and CleanSession are not used in PUBLISH",
		NonCanonical: true},
	{Name: "publish 255 octets", Raw: raw(0xff, 0x0c, 0x20, 0x00, 0x05, 0x00, 0x06, payload(248)),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 6, Data: payload(248)},
		Note:   "the longest message with the 1-octet length"},
	{Name: "publish 258 octets", Raw: raw(0x01, 0x01, 0x02, 0x0c, 0x20, 0x00, 0x05, 0x00, 0x07, payload(249)),
		Packet: &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 7, Data: payload(249)},
		Note:   "the shortest message with the 3-octet length: 256 and 257 cannot occur"},
	{Name: "publish 300 octets", Raw: raw(0x01, 0x01, 0x2c, 0x0c, 0x00, 0x00, 0x05, 0x00, 0x00, payload(291)),
		Packet: &mqttsn.Publish{TopicID: 5, Data: payload(291)}},
	{Name: "publish short message in 3-octet form", Raw: raw(0x01, 0x00, 0x0d, 0x0c, 0x20, 0x00, 0x05, 0x00, 0x02, "21.5"),
		Packet:       &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 2, Data: []byte("21.5")},
		Note:         "the 3-octet form is allowed for any size; encoding uses the 1-octet form",
		NonCanonical: true},

	// PUBACK (§5.4.13), PUBREC, PUBREL, PUBCOMP (§5.4.14)
	{Name: "puback accepted", Raw: raw(0x07, 0x0d, 0x00, 0x05, 0x00, 0x02, 0x00),
		Packet: &mqttsn.PubAck{TopicID: 5, MsgID: 2}},
	{Name: "puback invalid topic id", Raw: raw(0x07, 0x0d, 0x00, 0x05, 0x00, 0x02, 0x02),
		Packet: &mqttsn.PubAck{TopicID: 5, MsgID: 2, ReturnCode: mqttsn.RejectedInvalidTopicID}},
	{Name: "pubrec", Raw: raw(0x04, 0x0f, 0x00, 0x03), Packet: &mqttsn.PubRec{MsgID: 3}},
	{Name: "pubrel", Raw: raw(0x04, 0x10, 0x00, 0x03), Packet: &mqttsn.PubRel{MsgID: 3}},
	{Name: "pubcomp", Raw: raw(0x04, 0x0e, 0x00, 0x03), Packet: &mqttsn.PubComp{MsgID: 3}},

	// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (§5.4.15–5.4.18)
	{Name: "subscribe qos1 topic name", Raw: raw(0x0e, 0x12, 0x20, 0x00, 0x04, "sensors/#"),
		Packet: &mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 4, TopicName: "sensors/#"}},
	{Name: "subscribe qos0 predefined", Raw: raw(0x07, 0x12, 0x01, 0x00, 0x06, 0x00, 0x07),
		Packet: &mqttsn.Subscribe{TopicIDType: mqttsn.TopicPredefined, MsgID: 6, TopicID: 7}},
	{Name: "subscribe qos2 dup short", Raw: raw(0x07, 0x12, 0xc2, 0x00, 0x08, 'a', 'b'),
		Packet: &mqttsn.Subscribe{DUP: true, QoS: mqttsn.QoS2, TopicIDType: mqttsn.TopicShort, MsgID: 8, TopicID: 0x6162}},
	{Name: "subscribe unused flag bits", Raw: raw(0x08, 0x12, 0x3c, 0x00, 0x09, "a/+"),
		Packet:       &mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 9, TopicName: "a/+"},
		Note:         "Retain, Will and CleanSession are not used in SUBSCRIBE",
		NonCanonical: true},
	{Name: "suback qos1", Raw: raw(0x08, 0x13, 0x20, 0x00, 0x05, 0x00, 0x04, 0x00),
		Packet: &mqttsn.SubAck{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 4}},
	{Name: "suback wildcard", Raw: raw(0x08, 0x13, 0x40, 0x00, 0x00, 0x00, 0x04, 0x00),
		Packet: &mqttsn.SubAck{QoS: mqttsn.QoS2, MsgID: 4}, Note: "topic id 0x0000 for a wildcard subscription"},
	{Name: "suback rejected", Raw: raw(0x08, 0x13, 0x00, 0x00, 0x00, 0x00, 0x06, 0x03),
		Packet: &mqttsn.SubAck{MsgID: 6, ReturnCode: mqttsn.RejectedNotSupported}},
	{Name: "suback unused flag bits", Raw: raw(0x08, 0x13, 0xb3, 0x00, 0x05, 0x00, 0x04, 0x00),
		Packet:       &mqttsn.SubAck{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 4},
		Note:         "only the granted QoS is used in SUBACK",
		NonCanonical: true},
	{Name: "unsubscribe topic name", Raw: raw(0x0e, 0x14, 0x00, 0x00, 0x05, "sensors/#"),
		Packet: &mqttsn.Unsubscribe{MsgID: 5, TopicName: "sensors/#"}},
	{Name: "unsubscribe predefined", Raw: raw(0x07, 0x14, 0x01, 0x00, 0x06, 0x00, 0x07),
		Packet: &mqttsn.Unsubscribe{TopicIDType: mqttsn.TopicPredefined, MsgID: 6, TopicID: 7}},
	{Name: "unsubscribe short", Raw: raw(0x07, 0x14, 0x02, 0x00, 0x08, 'a', 'b'),
		Packet: &mqttsn.Unsubscribe{TopicIDType: mqttsn.TopicShort, MsgID: 8, TopicID: 0x6162}},
	{Name: "unsubscribe unused flag bits", Raw: raw(0x07, 0x14, 0xe2, 0x00, 0x08, 'a', 'b'),
		Packet:       &mqttsn.Unsubscribe{TopicIDType: mqttsn.TopicShort, MsgID: 8, TopicID: 0x6162},
		Note:         "only TopicIdType is used in UNSUBSCRIBE",
		NonCanonical: true},
	{Name: "unsuback", Raw: raw(0x04, 0x15, 0x00, 0x05), Packet: &mqttsn.UnsubAck{MsgID: 5}},

	// PINGREQ, PINGRESP, DISCONNECT (§5.4.19–5.4.21)
	{Name: "pingreq", Raw: raw(0x02, 0x16), Packet: &mqttsn.PingReq{}},
	{Name: "pingreq with client id", Raw: raw(0x0a, 0x16, "client-1"),
		Packet: &mqttsn.PingReq{ClientID: "client-1"}, Note: "a sleeping client waking up"},
	{Name: "pingresp", Raw: raw(0x02, 0x17), Packet: &mqttsn.PingResp{}},
	{Name: "disconnect", Raw: raw(0x02, 0x18), Packet: &mqttsn.Disconnect{}},
	{Name: "disconnect with duration", Raw: raw(0x04, 0x18, 0x01, 0x2c),
		Packet: &mqttsn.Disconnect{Duration: 300, HasDuration: true}, Note: "go to sleep for 300 s"},
	{Name: "disconnect with duration 0", Raw: raw(0x04, 0x18, 0x00, 0x00),
		Packet: &mqttsn.Disconnect{HasDuration: true}},

	// WILLTOPICUPD, WILLTOPICRESP, WILLMSGUPD, WILLMSGRESP (§5.4.22–5.4.25)
	{Name: "willtopicupd qos1", Raw: raw(0x0d, 0x1a, 0x20, "will/topic"),
		Packet: &mqttsn.WillTopicUpd{QoS: mqttsn.QoS1, Topic: "will/topic"}},
	{Name: "willtopicupd qos2 retain", Raw: raw(0x0d, 0x1a, 0x50, "will/topic"),
		Packet: &mqttsn.WillTopicUpd{QoS: mqttsn.QoS2, Retain: true, Topic: "will/topic"}},
	{Name: "willtopicupd empty", Raw: raw(0x02, 0x1a),
		Packet: &mqttsn.WillTopicUpd{}, Note: "deletes the Will topic and message"},
	{Name: "willtopicresp accepted", Raw: raw(0x03, 0x1b, 0x00), Packet: &mqttsn.WillTopicResp{}},
	{Name: "willtopicresp not supported", Raw: raw(0x03, 0x1b, 0x03),
		Packet: &mqttsn.WillTopicResp{ReturnCode: mqttsn.RejectedNotSupported}},
	{Name: "willmsgupd", Raw: raw(0x09, 0x1c, "offline"),
		Packet: &mqttsn.WillMsgUpd{Message: []byte("offline")}},
	{Name: "willmsgresp accepted", Raw: raw(0x03, 0x1d, 0x00), Packet: &mqttsn.WillMsgResp{}},
	{Name: "willmsgresp congestion", Raw: raw(0x03, 0x1d, 0x01),
		Packet: &mqttsn.WillMsgResp{ReturnCode: mqttsn.RejectedCongestion}},

	// Encapsulated message (§5.5): Length counts up to the end of the node id
	{Name: "encapsulated publish 2-octet node id",
		Raw: raw(0x05, 0xfe, 0x01, 0x12, 0x34, // Length 5, Ctrl radius 1, node id 0x1234
			0x09, 0x0c, 0x00, 0x00, 0x05, 0x00, 0x00, "hi"), // PUBLISH QoS 0, topic 5
		Packet: &mqttsn.Encapsulated{Radius: 1, NodeID: []byte{0x12, 0x34},
			Message: raw(0x09, 0x0c, 0x00, 0x00, 0x05, 0x00, 0x00, "hi")}},
	{Name: "encapsulated connect 8-octet node id",
		Raw: raw(0x0b, 0xfe, 0x00, 0x00, 0x13, 0xa2, 0x00, 0x40, 0xa1, 0xb2, 0xc3, // XBee 64-bit address
			0x0e, 0x04, 0x04, 0x01, 0x00, 0x3c, "client-1"),
		Packet: &mqttsn.Encapsulated{NodeID: []byte{0x00, 0x13, 0xa2, 0x00, 0x40, 0xa1, 0xb2, 0xc3},
			Message: raw(0x0e, 0x04, 0x04, 0x01, 0x00, 0x3c, "client-1")}},
	{Name: "encapsulated searchgw radius 3",
		Raw:    raw(0x05, 0xfe, 0x03, 0x00, 0x01, 0x03, 0x01, 0x03),
		Packet: &mqttsn.Encapsulated{Radius: 3, NodeID: []byte{0x00, 0x01}, Message: raw(0x03, 0x01, 0x03)}},
	{Name: "encapsulated message in 3-octet form",
		Raw:    raw(0x05, 0xfe, 0x00, 0x00, 0x02, 0x01, 0x00, 0x04, 0x17),
		Packet: &mqttsn.Encapsulated{NodeID: []byte{0x00, 0x02}, Message: raw(0x01, 0x00, 0x04, 0x17)},
		Note:   "the wrapped message is kept as it came, here a PINGRESP with the 3-octet length"},
	{Name: "encapsulated reserved ctrl bits",
		Raw:          raw(0x05, 0xfe, 0xfd, 0x12, 0x34, 0x02, 0x16),
		Packet:       &mqttsn.Encapsulated{Radius: 1, NodeID: []byte{0x12, 0x34}, Message: raw(0x02, 0x16)},
		Note:         "Ctrl bits 7:2 are reserved and ignored",
		NonCanonical: true},
}

// Malformed holds datagrams that must not decode.
var Malformed = []BadCase{
	// Framing (§5.2.1)
	{Name: "empty datagram", Raw: raw(), Err: mqttsn.ErrShortPacket},
	{Name: "length only", Raw: raw(0x02), Err: mqttsn.ErrShortPacket},
	{Name: "first octet 0x00", Raw: raw(0x00, 0x16), Err: mqttsn.ErrInvalidLength},
	{Name: "long form 1 octet", Raw: raw(0x01), Err: mqttsn.ErrShortPacket},
	{Name: "long form 2 octets", Raw: raw(0x01, 0x00), Err: mqttsn.ErrShortPacket,
		Note: "reading the 3-octet length beyond the datagram crashes some decoders"},
	{Name: "long form 3 octets", Raw: raw(0x01, 0x00, 0x04), Err: mqttsn.ErrShortPacket},
	{Name: "long form length 3", Raw: raw(0x01, 0x00, 0x03, 0x17), Err: mqttsn.ErrInvalidLength,
		Note: "a 3-octet length cannot be below 4"},
	{Name: "long form length 0", Raw: raw(0x01, 0x00, 0x00, 0x17), Err: mqttsn.ErrInvalidLength},
	{Name: "length above datagram", Raw: raw(0x05, 0x00, 0x01, 0x03), Err: mqttsn.ErrLengthMismatch},
	{Name: "length below datagram", Raw: raw(0x02, 0x17, 0x00), Err: mqttsn.ErrLengthMismatch},
	{Name: "long form length above datagram", Raw: raw(0x01, 0x00, 0x05, 0x17), Err: mqttsn.ErrLengthMismatch},
	{Name: "long form length below datagram", Raw: raw(0x01, 0x00, 0x04, 0x17, 0x00), Err: mqttsn.ErrLengthMismatch},

	// Message types (§5.2.2)
	{Name: "reserved type 0x03", Raw: raw(0x02, 0x03), Err: mqttsn.ErrUnknownType},
	{Name: "reserved type 0x11", Raw: raw(0x04, 0x11, 0x00, 0x03), Err: mqttsn.ErrUnknownType,
		Note: "a PUBREL sent with the MQTT numbering"},
	{Name: "reserved type 0x19", Raw: raw(0x02, 0x19), Err: mqttsn.ErrUnknownType},
	{Name: "reserved type 0x1e", Raw: raw(0x02, 0x1e), Err: mqttsn.ErrUnknownType},
	{Name: "reserved type 0xfd", Raw: raw(0x02, 0xfd), Err: mqttsn.ErrUnknownType},
	{Name: "reserved type 0xff", Raw: raw(0x02, 0xff), Err: mqttsn.ErrUnknownType},

	// Fields
	{Name: "advertise without duration", Raw: raw(0x03, 0x00, 0x01), Err: mqttsn.ErrShortPacket},
	{Name: "advertise trailing octet", Raw: raw(0x06, 0x00, 0x01, 0x03, 0x84, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "searchgw without radius", Raw: raw(0x02, 0x01), Err: mqttsn.ErrShortPacket},
	{Name: "gwinfo without gateway id", Raw: raw(0x02, 0x02), Err: mqttsn.ErrShortPacket},
	{Name: "connect protocol 0x02", Raw: raw(0x0e, 0x04, 0x04, 0x02, 0x00, 0x3c, "client-1"),
		Err: mqttsn.ErrUnsupportedProtocol, Note: "answer with CONNACK rejected: not supported"},
	{Name: "connect protocol 0x00", Raw: raw(0x0e, 0x04, 0x04, 0x00, 0x00, 0x3c, "client-1"),
		Err: mqttsn.ErrUnsupportedProtocol},
	{Name: "connect without duration", Raw: raw(0x04, 0x04, 0x04, 0x01), Err: mqttsn.ErrShortPacket},
	{Name: "connack without return code", Raw: raw(0x02, 0x05), Err: mqttsn.ErrShortPacket},
	{Name: "connack trailing octet", Raw: raw(0x04, 0x05, 0x00, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "willtopicreq trailing octet", Raw: raw(0x03, 0x06, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "register without msg id", Raw: raw(0x05, 0x0a, 0x00, 0x00, 0x00), Err: mqttsn.ErrShortPacket},
	{Name: "regack without return code", Raw: raw(0x06, 0x0b, 0x00, 0x05, 0x00, 0x01), Err: mqttsn.ErrShortPacket},
	{Name: "publish header only", Raw: raw(0x02, 0x0c), Err: mqttsn.ErrShortPacket},
	{Name: "publish without msg id", Raw: raw(0x05, 0x0c, 0x20, 0x00, 0x05), Err: mqttsn.ErrShortPacket},
	{Name: "publish reserved topic id type", Raw: raw(0x0b, 0x0c, 0x23, 0x00, 0x05, 0x00, 0x02, "21.5"),
		Err: mqttsn.ErrReservedTopicIDType},
	{Name: "publish long topic name beyond end", Raw: raw(0x09, 0x0c, 0x60, 0x00, 0x10, 0x00, 0x00, "ab"),
		Err: mqttsn.ErrShortPacket, Note: "the name length (16) exceeds what remains (2)"},
	{Name: "puback trailing octet", Raw: raw(0x08, 0x0d, 0x00, 0x05, 0x00, 0x02, 0x00, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "pubrec without msg id", Raw: raw(0x03, 0x0f, 0x00), Err: mqttsn.ErrShortPacket},
	{Name: "pubrel trailing octet", Raw: raw(0x05, 0x10, 0x00, 0x03, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "subscribe reserved topic id type", Raw: raw(0x07, 0x12, 0x23, 0x00, 0x04, 0x00, 0x07), Err: mqttsn.ErrReservedTopicIDType},
	{Name: "subscribe predefined trailing octet", Raw: raw(0x08, 0x12, 0x01, 0x00, 0x06, 0x00, 0x07, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "subscribe predefined 1-octet id", Raw: raw(0x06, 0x12, 0x01, 0x00, 0x06, 0x07), Err: mqttsn.ErrShortPacket},
	{Name: "subscribe short 1 octet", Raw: raw(0x06, 0x12, 0x02, 0x00, 0x08, 'a'), Err: mqttsn.ErrShortPacket},
	{Name: "subscribe short 3 octets", Raw: raw(0x08, 0x12, 0x02, 0x00, 0x08, "abc"), Err: mqttsn.ErrTrailingBytes},
	{Name: "suback without return code", Raw: raw(0x07, 0x13, 0x20, 0x00, 0x05, 0x00, 0x04), Err: mqttsn.ErrShortPacket},
	{Name: "unsubscribe reserved topic id type", Raw: raw(0x0e, 0x14, 0x03, 0x00, 0x05, "sensors/#"), Err: mqttsn.ErrReservedTopicIDType},
	{Name: "unsuback trailing octet", Raw: raw(0x05, 0x15, 0x00, 0x05, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "pingresp trailing octet", Raw: raw(0x03, 0x17, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "disconnect 1-octet duration", Raw: raw(0x03, 0x18, 0x01), Err: mqttsn.ErrShortPacket},
	{Name: "disconnect trailing octet", Raw: raw(0x05, 0x18, 0x01, 0x2c, 0x00), Err: mqttsn.ErrTrailingBytes},
	{Name: "willtopicresp without return code", Raw: raw(0x02, 0x1b), Err: mqttsn.ErrShortPacket},
	{Name: "willmsgresp trailing octet", Raw: raw(0x04, 0x1d, 0x00, 0x00), Err: mqttsn.ErrTrailingBytes},

	// Encapsulation (§5.5)
	{Name: "encapsulated 3-octet length", Raw: raw(0x01, 0x00, 0x0a, 0xfe, 0x00, 0x12, 0x34, 0x03, 0x01, 0x01),
		Err: mqttsn.ErrInvalidLength, Note: "the encapsulation Length has only the 1-octet form"},
	{Name: "encapsulated length 2", Raw: raw(0x02, 0xfe, 0x02, 0x16), Err: mqttsn.ErrInvalidLength},
	{Name: "encapsulated length above datagram", Raw: raw(0x09, 0xfe, 0x01, 0x12, 0x34), Err: mqttsn.ErrLengthMismatch},
	{Name: "encapsulated without ctrl", Raw: raw(0x03, 0xfe), Err: mqttsn.ErrLengthMismatch},
	{Name: "encapsulated without message", Raw: raw(0x05, 0xfe, 0x01, 0x12, 0x34), Err: mqttsn.ErrShortPacket},
	{Name: "encapsulated message of 1 octet", Raw: raw(0x05, 0xfe, 0x01, 0x12, 0x34, 0x02), Err: mqttsn.ErrShortPacket},
	{Name: "encapsulated message truncated", Raw: raw(0x05, 0xfe, 0x01, 0x12, 0x34, 0x09, 0x0c, 0x00, 0x00, 0x05, 0x00, 0x00, 'h'),
		Err: mqttsn.ErrLengthMismatch},
	{Name: "encapsulated message trailing octet", Raw: raw(0x05, 0xfe, 0x01, 0x12, 0x34, 0x02, 0x17, 0x00),
		Err: mqttsn.ErrLengthMismatch},
	{Name: "encapsulated message length 0", Raw: raw(0x05, 0xfe, 0x01, 0x12, 0x34, 0x00, 0x17),
		Err: mqttsn.ErrInvalidLength},
	{Name: "encapsulated nested", Raw: raw(0x05, 0xfe, 0x00, 0x00, 0x01, 0x05, 0xfe, 0x00, 0x00, 0x01, 0x02, 0x17),
		Err: mqttsn.ErrNestedEncapsulation},
}

// Unencodable holds packets the encoders must reject.
var Unencodable = []EncodeCase{
	{Name: "publish qos 3", Packet: &mqttsn.Publish{QoS: 3, TopicID: 5}, Err: mqttsn.ErrInvalidQoS},
	{Name: "publish qos -2", Packet: &mqttsn.Publish{QoS: -2, TopicID: 5}, Err: mqttsn.ErrInvalidQoS},
	{Name: "publish reserved topic id type", Packet: &mqttsn.Publish{TopicIDType: 3, TopicID: 5}, Err: mqttsn.ErrReservedTopicIDType},
	{Name: "publish topic id type 7", Packet: &mqttsn.Publish{TopicIDType: 7, TopicID: 5}, Err: mqttsn.ErrReservedTopicIDType},
	{Name: "publish topic name at qos 1", Packet: &mqttsn.Publish{QoS: mqttsn.QoS1, TopicName: "a/b"}, Err: mqttsn.ErrInvalidTopic},
	{Name: "publish topic name with short type", Packet: &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort, TopicName: "ab"},
		Err: mqttsn.ErrInvalidTopic},
	{Name: "publish qos -1 normal with topic id", Packet: &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicID: 5}, Err: mqttsn.ErrInvalidTopic},
	{Name: "publish too large", Packet: &mqttsn.Publish{TopicID: 5, Data: make([]byte, 65527)}, Err: mqttsn.ErrTooLarge},
	{Name: "publish long topic name too large", Packet: &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: string(make([]byte, 65536))},
		Err: mqttsn.ErrTooLarge},
	{Name: "connect client id too large", Packet: &mqttsn.Connect{ClientID: string(make([]byte, 65528))}, Err: mqttsn.ErrTooLarge},
	{Name: "gwinfo address too large", Packet: &mqttsn.GWInfo{GatewayAddr: make([]byte, 65531)}, Err: mqttsn.ErrTooLarge},
	{Name: "register topic name too large", Packet: &mqttsn.Register{TopicName: string(make([]byte, 65528))}, Err: mqttsn.ErrTooLarge},
	{Name: "pingreq client id too large", Packet: &mqttsn.PingReq{ClientID: string(make([]byte, 65532))}, Err: mqttsn.ErrTooLarge},
	{Name: "willmsg too large", Packet: &mqttsn.WillMsg{Message: make([]byte, 65532)}, Err: mqttsn.ErrTooLarge},
	{Name: "willmsgupd too large", Packet: &mqttsn.WillMsgUpd{Message: make([]byte, 65532)}, Err: mqttsn.ErrTooLarge},
	{Name: "willtopic too large", Packet: &mqttsn.WillTopic{Topic: string(make([]byte, 65531))}, Err: mqttsn.ErrTooLarge},
	{Name: "subscribe topic name too large", Packet: &mqttsn.Subscribe{TopicName: string(make([]byte, 65529))}, Err: mqttsn.ErrTooLarge},
	{Name: "subscribe qos 3", Packet: &mqttsn.Subscribe{QoS: 3, TopicName: "a"}, Err: mqttsn.ErrInvalidQoS},
	{Name: "subscribe reserved topic id type", Packet: &mqttsn.Subscribe{TopicIDType: 3, TopicName: "a"}, Err: mqttsn.ErrReservedTopicIDType},
	{Name: "subscribe short topic as name", Packet: &mqttsn.Subscribe{TopicIDType: mqttsn.TopicShort, TopicName: "ab"}, Err: mqttsn.ErrInvalidTopic},
	{Name: "unsubscribe short topic as name", Packet: &mqttsn.Unsubscribe{TopicIDType: mqttsn.TopicShort, TopicName: "ab"}, Err: mqttsn.ErrInvalidTopic},
	{Name: "subscribe predefined with name", Packet: &mqttsn.Subscribe{TopicIDType: mqttsn.TopicPredefined, TopicID: 7, TopicName: "a"},
		Err: mqttsn.ErrInvalidTopic},
	{Name: "subscribe name with id", Packet: &mqttsn.Subscribe{TopicName: "a/b", TopicID: 7}, Err: mqttsn.ErrInvalidTopic},
	{Name: "unsubscribe reserved topic id type", Packet: &mqttsn.Unsubscribe{TopicIDType: 3, TopicID: 7}, Err: mqttsn.ErrReservedTopicIDType},
	{Name: "unsubscribe predefined with name", Packet: &mqttsn.Unsubscribe{TopicIDType: mqttsn.TopicPredefined, TopicName: "a"}, Err: mqttsn.ErrInvalidTopic},
	{Name: "suback qos 4", Packet: &mqttsn.SubAck{QoS: 4}, Err: mqttsn.ErrInvalidQoS},
	{Name: "willtopic qos 3", Packet: &mqttsn.WillTopic{QoS: 3, Topic: "w"}, Err: mqttsn.ErrInvalidQoS},
	{Name: "willtopic empty with qos", Packet: &mqttsn.WillTopic{QoS: mqttsn.QoS1}, Err: mqttsn.ErrInvalidField},
	{Name: "willtopic empty with retain", Packet: &mqttsn.WillTopic{Retain: true}, Err: mqttsn.ErrInvalidField},
	{Name: "willtopicupd empty with qos", Packet: &mqttsn.WillTopicUpd{QoS: mqttsn.QoS2}, Err: mqttsn.ErrInvalidField},
	{Name: "willtopicupd qos -3", Packet: &mqttsn.WillTopicUpd{QoS: -3, Topic: "w"}, Err: mqttsn.ErrInvalidQoS},
	{Name: "disconnect duration without flag", Packet: &mqttsn.Disconnect{Duration: 60}, Err: mqttsn.ErrInvalidField},
	{Name: "encapsulated radius 4", Packet: &mqttsn.Encapsulated{Radius: 4, NodeID: []byte{1, 2}, Message: raw(0x02, 0x16)},
		Err: mqttsn.ErrInvalidField},
	{Name: "encapsulated node id of 253", Packet: &mqttsn.Encapsulated{NodeID: make([]byte, 253), Message: raw(0x02, 0x16)},
		Err: mqttsn.ErrTooLarge},
	{Name: "encapsulated with empty message", Packet: &mqttsn.Encapsulated{NodeID: []byte{1, 2}}, Err: mqttsn.ErrShortPacket},
	{Name: "encapsulated message length mismatch", Packet: &mqttsn.Encapsulated{NodeID: []byte{1, 2}, Message: raw(0x03, 0x16)},
		Err: mqttsn.ErrLengthMismatch},
	{Name: "encapsulated wrapping an encapsulation", Packet: &mqttsn.Encapsulated{Message: raw(0x03, 0xfe, 0x00, 0x02, 0x16)},
		Err: mqttsn.ErrNestedEncapsulation},
}
