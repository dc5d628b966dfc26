package packet

// tpacket is one annotated packet shared by the decode, encode, round-trip,
// truncation, fuzz-seed and cross-implementation tests. The bytes are worked
// out from the specifications by hand.
type tpacket struct {
	name    string
	version Version // version of the connection; CONNECT entries are read with 0
	raw     []byte
	packet  Packet
	// decodeOnly marks bytes Append does not produce (a legal longer form
	// of the same packet): they are checked by reading only.
	decodeOnly bool
}

func u8(v byte) *byte       { return &v }
func u16(v uint16) *uint16  { return &v }
func u32(v uint32) *uint32  { return &v }
func strp(v string) *string { return &v }

var userKV = []UserProperty{{Key: "k", Value: "v"}}

var tpackets = []tpacket{
	// CONNECT
	{name: "connect v311 minimal", version: V311, raw: []byte{
		0x10, 14, // CONNECT, remaining length
		0, 4, 'M', 'Q', 'T', 'T', // protocol name
		4,     // level 3.1.1
		0x02,  // flags: clean session
		0, 60, // keep alive
		0, 2, 'c', '1', // client id
	}, packet: &ConnectPacket{Version: V311, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 60, ClientID: "c1"}},
	{name: "connect v311 will user password", version: V311, raw: []byte{
		0x10, 34,
		0, 4, 'M', 'Q', 'T', 'T',
		4,
		0xEE, // user, password, will retain, will QoS 1, will, clean
		0, 60,
		0, 2, 'c', '1',
		0, 3, 'w', '/', 't', // will topic
		0, 3, 'b', 'y', 'e', // will payload
		0, 4, 'u', 's', 'e', 'r', // user name
		0, 2, 'p', 'w', // password
	}, packet: &ConnectPacket{Version: V311, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 60, ClientID: "c1",
		Username: strp("user"), Password: []byte("pw"),
		Will: &Will{Topic: "w/t", Payload: []byte("bye"), QoS: 1, Retain: true}}},
	{name: "connect v31 MQIsdp", version: V31, raw: []byte{
		0x10, 19,
		0, 6, 'M', 'Q', 'I', 's', 'd', 'p', // 3.1 protocol name
		3,    // level 3.1
		0x82, // user, clean
		0, 60,
		0, 2, 'c', '1',
		0, 1, 'u',
	}, packet: &ConnectPacket{Version: V31, ProtocolName: "MQIsdp", CleanStart: true, KeepAlive: 60, ClientID: "c1", Username: strp("u")}},
	{name: "connect v5 minimal", version: V5, raw: []byte{
		0x10, 15,
		0, 4, 'M', 'Q', 'T', 'T',
		5,
		0x02,
		0, 60,
		0, // property length
		0, 2, 'c', '1',
	}, packet: &ConnectPacket{Version: V5, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 60, ClientID: "c1"}},
	{name: "connect v5 all properties will user password", version: V5, raw: []byte{
		0x10, 105,
		0, 4, 'M', 'Q', 'T', 'T',
		5,
		0xD6, // user, password, will QoS 2, will, clean start
		0, 30,
		40,                 // property length
		0x11, 0, 0, 0, 120, // session expiry interval 120
		0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', // authentication method
		0x16, 0, 2, 1, 2, // authentication data
		0x17, 0, // request problem information 0
		0x19, 1, // request response information 1
		0x21, 0, 10, // receive maximum 10
		0x22, 0, 5, // topic alias maximum 5
		0x26, 0, 1, 'k', 0, 1, 'v', // user property
		0x27, 0, 0, 0x10, 0, // maximum packet size 4096
		0, 2, 'c', '1', // client id
		37,      // will property length
		0x01, 1, // payload format indicator: UTF-8
		0x02, 0, 0, 0, 60, // message expiry interval 60
		0x03, 0, 4, 't', 'e', 'x', 't', // content type
		0x08, 0, 3, 'r', '/', 't', // response topic
		0x09, 0, 2, 0xCA, 0xFE, // correlation data
		0x18, 0, 0, 0, 10, // will delay interval 10
		0x26, 0, 1, 'a', 0, 1, 'b', // user property
		0, 1, 'w', // will topic
		0, 1, 'x', // will payload
		0, 1, 'u', // user name
		0, 1, 'p', // password
	}, packet: &ConnectPacket{Version: V5, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 30, ClientID: "c1",
		Username: strp("u"), Password: []byte("p"),
		Properties: Properties{SessionExpiry: u32(120), AuthMethod: "SCRAM", AuthData: []byte{1, 2},
			RequestProblemInfo: u8(0), RequestResponseInfo: u8(1), ReceiveMaximum: u16(10),
			TopicAliasMaximum: u16(5), User: userKV, MaximumPacketSize: u32(4096)},
		Will: &Will{Topic: "w", Payload: []byte("x"), QoS: 2, Properties: Properties{
			PayloadFormat: u8(1), MessageExpiry: u32(60), ContentType: "text", ResponseTopic: "r/t",
			CorrelationData: []byte{0xCA, 0xFE}, WillDelay: u32(10), User: []UserProperty{{Key: "a", Value: "b"}}}}}},
	{name: "connect v5 password without user name", version: V5, raw: []byte{
		0x10, 19,
		0, 4, 'M', 'Q', 'T', 'T',
		5,
		0x42, // password, clean start: legal in 5.0
		0, 60,
		0,
		0, 2, 'c', '1',
		0, 2, 'p', 'w',
	}, packet: &ConnectPacket{Version: V5, ProtocolName: "MQTT", CleanStart: true, KeepAlive: 60, ClientID: "c1", Password: []byte("pw")}},

	// CONNACK
	{name: "connack v311 session present", version: V311, raw: []byte{0x20, 2, 0x01, 0x00},
		packet: &ConnackPacket{SessionPresent: true}},
	{name: "connack v311 not authorized", version: V311, raw: []byte{0x20, 2, 0x00, 5},
		packet: &ConnackPacket{ReasonCode: NotAuthorized}},
	{name: "connack v311 unacceptable version", version: V311, raw: []byte{0x20, 2, 0x00, 1},
		packet: &ConnackPacket{ReasonCode: UnsupportedProtocolVersion}},
	{name: "connack v5 minimal", version: V5, raw: []byte{0x20, 3, 0x00, 0x00, 0},
		packet: &ConnackPacket{}},
	{name: "connack v5 failure", version: V5, raw: []byte{0x20, 3, 0x00, 0x87, 0},
		packet: &ConnackPacket{ReasonCode: NotAuthorized}},
	{name: "connack v5 all properties", version: V5, raw: []byte{
		0x20, 76,
		0x00,              // acknowledge flags
		0x00,              // success
		73,                // property length
		0x11, 0, 0, 0, 60, // session expiry interval
		0x12, 0, 4, 'a', 'u', 't', 'o', // assigned client identifier
		0x13, 0, 60, // server keep alive
		0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', // authentication method
		0x16, 0, 1, 7, // authentication data
		0x1A, 0, 4, 'i', 'n', 'f', 'o', // response information
		0x1C, 0, 3, 's', 'r', 'v', // server reference
		0x1F, 0, 2, 'o', 'k', // reason string
		0x21, 0, 20, // receive maximum
		0x22, 0, 10, // topic alias maximum
		0x24, 1, // maximum QoS
		0x25, 0, // retain available
		0x26, 0, 1, 'k', 0, 1, 'v', // user property
		0x27, 0, 1, 0, 0, // maximum packet size 65536
		0x28, 1, // wildcard subscription available
		0x29, 0, // subscription identifiers available
		0x2A, 1, // shared subscription available
	}, packet: &ConnackPacket{Properties: Properties{SessionExpiry: u32(60), AssignedClientID: "auto",
		ServerKeepAlive: u16(60), AuthMethod: "SCRAM", AuthData: []byte{7}, ResponseInfo: "info",
		ServerReference: "srv", ReasonString: "ok", ReceiveMaximum: u16(20), TopicAliasMaximum: u16(10),
		MaximumQoS: u8(1), RetainAvailable: u8(0), User: userKV, MaximumPacketSize: u32(65536),
		WildcardSubAvailable: u8(1), SubIDAvailable: u8(0), SharedSubAvailable: u8(1)}}},

	// PUBLISH
	{name: "publish v311 qos0", version: V311, raw: []byte{
		0x30, 7,
		0, 3, 'a', '/', 'b', // topic
		'h', 'i', // payload
	}, packet: &PublishPacket{Topic: "a/b", Payload: []byte("hi")}},
	{name: "publish v311 qos1 dup retain", version: V311, raw: []byte{
		0x3B, 8, // PUBLISH, DUP, QoS 1, RETAIN
		0, 3, 'a', '/', 'b',
		0, 10, // packet id
		'x',
	}, packet: &PublishPacket{DUP: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 10, Payload: []byte("x")}},
	{name: "publish v311 qos2 empty payload", version: V311, raw: []byte{
		0x34, 7,
		0, 3, 'a', '/', 'b',
		0, 11,
	}, packet: &PublishPacket{QoS: 2, Topic: "a/b", PacketID: 11}},
	{name: "publish v5 qos0", version: V5, raw: []byte{
		0x30, 8,
		0, 3, 'a', '/', 'b',
		0, // property length
		'h', 'i',
	}, packet: &PublishPacket{Topic: "a/b", Payload: []byte("hi")}},
	{name: "publish v5 qos1 all properties", version: V5, raw: []byte{
		0x32, 56,
		0, 3, 'a', '/', 'b',
		0, 1, // packet id
		46,      // property length
		0x01, 1, // payload format indicator
		0x02, 0, 0, 0, 30, // message expiry interval
		0x03, 0, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', // content type
		0x08, 0, 3, 'r', '/', '1', // response topic
		0x09, 0, 2, 1, 2, // correlation data
		0x0B, 1, // subscription identifier 1
		0x0B, 0xFF, 0x7F, // subscription identifier 16383
		0x23, 0, 2, // topic alias 2
		0x26, 0, 1, 'k', 0, 1, 'v', // user property
		'{', '}', // payload
	}, packet: &PublishPacket{QoS: 1, Topic: "a/b", PacketID: 1, Payload: []byte("{}"), Properties: Properties{
		PayloadFormat: u8(1), MessageExpiry: u32(30), ContentType: "text/plain", ResponseTopic: "r/1",
		CorrelationData: []byte{1, 2}, SubscriptionIDs: []uint32{1, 16383}, TopicAlias: u16(2), User: userKV}}},
	{name: "publish v5 qos2 topic alias only", version: V5, raw: []byte{
		0x34, 9,
		0, 0, // empty topic: the alias names it
		0, 5,
		3, 0x23, 0, 1, // topic alias 1
		'x',
	}, packet: &PublishPacket{QoS: 2, PacketID: 5, Payload: []byte("x"), Properties: Properties{TopicAlias: u16(1)}}},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{name: "puback v311", version: V311, raw: []byte{0x40, 2, 0, 10},
		packet: &AckPacket{PacketType: Puback, PacketID: 10}},
	{name: "pubrec v311", version: V311, raw: []byte{0x50, 2, 0, 10},
		packet: &AckPacket{PacketType: Pubrec, PacketID: 10}},
	{name: "pubrel v311", version: V311, raw: []byte{0x62, 2, 0, 10},
		packet: &AckPacket{PacketType: Pubrel, PacketID: 10}},
	{name: "pubcomp v311", version: V311, raw: []byte{0x70, 2, 0, 10},
		packet: &AckPacket{PacketType: Pubcomp, PacketID: 10}},
	{name: "puback v5 short form", version: V5, raw: []byte{0x40, 2, 0, 10},
		packet: &AckPacket{PacketType: Puback, PacketID: 10}},
	{name: "puback v5 reason only", version: V5, raw: []byte{0x40, 3, 0, 10, 0x10},
		packet: &AckPacket{PacketType: Puback, PacketID: 10, ReasonCode: NoMatchingSubscribers}},
	{name: "puback v5 success with reason string", version: V5, raw: []byte{
		0x40, 9, 0, 10,
		0x00,                    // success
		5, 0x1F, 0, 2, 'o', 'k', // reason string
	}, packet: &AckPacket{PacketType: Puback, PacketID: 10, Properties: Properties{ReasonString: "ok"}}},
	{name: "pubrec v5 properties", version: V5, raw: []byte{
		0x50, 18, 0, 10,
		0x80, // unspecified error
		14,
		0x1F, 0, 4, 'f', 'u', 'l', 'l',
		0x26, 0, 1, 'k', 0, 1, 'v',
	}, packet: &AckPacket{PacketType: Pubrec, PacketID: 10, ReasonCode: UnspecifiedError,
		Properties: Properties{ReasonString: "full", User: userKV}}},
	{name: "pubrel v5 not found", version: V5, raw: []byte{0x62, 3, 0, 10, 0x92},
		packet: &AckPacket{PacketType: Pubrel, PacketID: 10, ReasonCode: PacketIdentifierNotFound}},
	{name: "pubcomp v5 short form", version: V5, raw: []byte{0x70, 2, 0, 10},
		packet: &AckPacket{PacketType: Pubcomp, PacketID: 10}},
	{name: "puback v5 explicit success", version: V5, decodeOnly: true, raw: []byte{0x40, 3, 0, 10, 0x00},
		packet: &AckPacket{PacketType: Puback, PacketID: 10}},
	{name: "puback v5 explicit empty properties", version: V5, decodeOnly: true, raw: []byte{0x40, 4, 0, 10, 0x00, 0},
		packet: &AckPacket{PacketType: Puback, PacketID: 10}},

	// SUBSCRIBE, SUBACK
	{name: "subscribe v311", version: V311, raw: []byte{
		0x82, 14,
		0, 1, // packet id
		0, 3, 'a', '/', 'b', 1, // QoS 1
		0, 3, 'c', '/', '#', 2, // QoS 2
	}, packet: &SubscribePacket{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}, {Filter: "c/#", QoS: 2}}}},
	{name: "subscribe v5 options and properties", version: V5, raw: []byte{
		0x82, 24,
		0, 2,
		9,       // property length
		0x0B, 5, // subscription identifier
		0x26, 0, 1, 'k', 0, 1, 'v',
		0, 3, 'a', '/', '+', 0x2E, // retain handling 2, retain as published, no local, QoS 2
		0, 3, 'd', '/', 'e', 0x10, // retain handling 1, QoS 0
	}, packet: &SubscribePacket{PacketID: 2, Properties: Properties{SubscriptionIDs: []uint32{5}, User: userKV},
		Subscriptions: []Subscription{
			{Filter: "a/+", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
			{Filter: "d/e", RetainHandling: 1},
		}}},
	{name: "subscribe v5 no properties", version: V5, raw: []byte{
		0x82, 7, 0, 3, 0, 0, 1, 'x', 0x00,
	}, packet: &SubscribePacket{PacketID: 3, Subscriptions: []Subscription{{Filter: "x"}}}},
	{name: "suback v311", version: V311, raw: []byte{0x90, 5, 0, 1, 0x00, 0x01, 0x80},
		packet: &SubackPacket{PacketID: 1, ReasonCodes: []ReasonCode{Success, GrantedQoS1, UnspecifiedError}}},
	{name: "suback v5 properties", version: V5, raw: []byte{
		0x90, 11, 0, 2,
		5, 0x1F, 0, 2, 'n', 'o',
		0x02, 0x8F, 0xA2,
	}, packet: &SubackPacket{PacketID: 2, Properties: Properties{ReasonString: "no"},
		ReasonCodes: []ReasonCode{GrantedQoS2, TopicFilterInvalid, WildcardSubscriptionsNotSupported}}},
	{name: "suback v5 no properties", version: V5, raw: []byte{0x90, 4, 0, 3, 0, 0x01},
		packet: &SubackPacket{PacketID: 3, ReasonCodes: []ReasonCode{GrantedQoS1}}},

	// UNSUBSCRIBE, UNSUBACK
	{name: "unsubscribe v311", version: V311, raw: []byte{
		0xA2, 10, 0, 4,
		0, 3, 'a', '/', 'b',
		0, 1, '#',
	}, packet: &UnsubscribePacket{PacketID: 4, Filters: []string{"a/b", "#"}}},
	{name: "unsubscribe v5 properties", version: V5, raw: []byte{
		0xA2, 15, 0, 5,
		7, 0x26, 0, 1, 'k', 0, 1, 'v',
		0, 3, 'a', '/', 'b',
	}, packet: &UnsubscribePacket{PacketID: 5, Properties: Properties{User: userKV}, Filters: []string{"a/b"}}},
	{name: "unsuback v311", version: V311, raw: []byte{0xB0, 2, 0, 4},
		packet: &UnsubackPacket{PacketID: 4}},
	{name: "unsuback v5 properties", version: V5, raw: []byte{
		0xB0, 10, 0, 5,
		5, 0x1F, 0, 2, 'n', 'o',
		0x00, 0x11,
	}, packet: &UnsubackPacket{PacketID: 5, Properties: Properties{ReasonString: "no"},
		ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}},
	{name: "unsuback v5 no properties", version: V5, raw: []byte{0xB0, 4, 0, 6, 0, 0x00},
		packet: &UnsubackPacket{PacketID: 6, ReasonCodes: []ReasonCode{Success}}},

	// PINGREQ, PINGRESP
	{name: "pingreq v311", version: V311, raw: []byte{0xC0, 0}, packet: &PingreqPacket{}},
	{name: "pingresp v311", version: V311, raw: []byte{0xD0, 0}, packet: &PingrespPacket{}},
	{name: "pingreq v5", version: V5, raw: []byte{0xC0, 0}, packet: &PingreqPacket{}},
	{name: "pingresp v5", version: V5, raw: []byte{0xD0, 0}, packet: &PingrespPacket{}},
	{name: "pingreq non-minimal remaining length", version: V5, decodeOnly: true, raw: []byte{0xC0, 0x80, 0x00},
		packet: &PingreqPacket{}},

	// DISCONNECT
	{name: "disconnect v311", version: V311, raw: []byte{0xE0, 0}, packet: &DisconnectPacket{}},
	{name: "disconnect v5 short form", version: V5, raw: []byte{0xE0, 0}, packet: &DisconnectPacket{}},
	{name: "disconnect v5 reason only", version: V5, raw: []byte{0xE0, 1, 0x04},
		packet: &DisconnectPacket{ReasonCode: DisconnectWithWill}},
	{name: "disconnect v5 properties", version: V5, raw: []byte{
		0xE0, 28,
		0x8E, // session taken over
		26,
		0x11, 0, 0, 0, 0, // session expiry interval 0
		0x1C, 0, 3, 's', 'r', 'v',
		0x1F, 0, 5, 't', 'a', 'k', 'e', 'n',
		0x26, 0, 1, 'k', 0, 1, 'v',
	}, packet: &DisconnectPacket{ReasonCode: SessionTakenOver, Properties: Properties{
		SessionExpiry: u32(0), ServerReference: "srv", ReasonString: "taken", User: userKV}}},
	{name: "disconnect v5 explicit empty properties", version: V5, decodeOnly: true, raw: []byte{0xE0, 2, 0x00, 0},
		packet: &DisconnectPacket{}},

	// AUTH
	{name: "auth v5 short form", version: V5, raw: []byte{0xF0, 0}, packet: &AuthPacket{}},
	{name: "auth v5 properties", version: V5, raw: []byte{
		0xF0, 23,
		0x18, // continue authentication
		21,
		0x15, 0, 5, 'S', 'C', 'R', 'A', 'M',
		0x16, 0, 3, 1, 2, 3,
		0x1F, 0, 4, 'm', 'o', 'r', 'e',
	}, packet: &AuthPacket{ReasonCode: ContinueAuthentication, Properties: Properties{
		AuthMethod: "SCRAM", AuthData: []byte{1, 2, 3}, ReasonString: "more"}}},
	{name: "auth v5 reason without properties", version: V5, raw: []byte{0xF0, 2, 0x19, 0},
		packet: &AuthPacket{ReasonCode: ReAuthenticate}},
	{name: "auth v5 reason only", version: V5, decodeOnly: true, raw: []byte{0xF0, 1, 0x18},
		packet: &AuthPacket{ReasonCode: ContinueAuthentication}},
}

// readVersion is the version to pass to Read for tp: a CONNECT is always a
// first packet.
func (tp tpacket) readVersion() Version {
	if tp.packet.Type() == Connect {
		return 0
	}
	return tp.version
}
