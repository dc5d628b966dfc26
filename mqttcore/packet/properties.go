package packet

import (
	"fmt"
	"math/bits"
)

// UserProperty is one User Property (5.0 §3.1.2.11.8): a name/value pair of
// UTF-8 strings. The same name may appear more than once and order matters.
type UserProperty struct{ Key, Value string }

// Properties holds every MQTT 5 property (5.0 §2.2.2). A pointer field is nil
// and a string or slice field is empty when the property is absent; a
// binary field (CorrelationData, AuthData) is present when non-nil, even if
// empty. Which properties a packet may carry is checked in both directions:
// a property in the wrong packet is malformed, a repeated single-valued one
// or an out-of-range value a protocol error (5.0 §2.2.2.2).
type Properties struct {
	PayloadFormat        *byte          // 0x01, 0 = unspecified bytes, 1 = UTF-8
	MessageExpiry        *uint32        // 0x02, seconds
	ContentType          string         // 0x03
	ResponseTopic        string         // 0x08, no wildcards
	CorrelationData      []byte         // 0x09
	SubscriptionIDs      []uint32       // 0x0B, 1..268435455; several in PUBLISH, at most one in SUBSCRIBE
	SessionExpiry        *uint32        // 0x11, seconds
	AssignedClientID     string         // 0x12
	ServerKeepAlive      *uint16        // 0x13, seconds
	AuthMethod           string         // 0x15
	AuthData             []byte         // 0x16, only with AuthMethod
	RequestProblemInfo   *byte          // 0x17, 0 or 1
	WillDelay            *uint32        // 0x18, seconds
	RequestResponseInfo  *byte          // 0x19, 0 or 1
	ResponseInfo         string         // 0x1A
	ServerReference      string         // 0x1C
	ReasonString         string         // 0x1F
	ReceiveMaximum       *uint16        // 0x21, not 0
	TopicAliasMaximum    *uint16        // 0x22
	TopicAlias           *uint16        // 0x23, not 0
	MaximumQoS           *byte          // 0x24, 0 or 1
	RetainAvailable      *byte          // 0x25, 0 or 1
	User                 []UserProperty // 0x26
	MaximumPacketSize    *uint32        // 0x27, not 0
	WildcardSubAvailable *byte          // 0x28, 0 or 1
	SubIDAvailable       *byte          // 0x29, 0 or 1
	SharedSubAvailable   *byte          // 0x2A, 0 or 1
}

// Property identifiers (5.0 §2.2.2.2, Table 2-4).
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
)

// propContext names the property list being read or written; the will
// properties of a CONNECT have a context of their own.
type propContext uint8

const (
	ctxConnect propContext = iota
	ctxWill
	ctxConnack
	ctxPublish
	ctxAck // PUBACK, PUBREC, PUBREL, PUBCOMP
	ctxSubscribe
	ctxSuback
	ctxUnsubscribe
	ctxUnsuback
	ctxDisconnect
	ctxAuth
)

var contextNames = [...]string{
	ctxConnect: "CONNECT properties", ctxWill: "will properties", ctxConnack: "CONNACK properties",
	ctxPublish: "PUBLISH properties", ctxAck: "acknowledgement properties",
	ctxSubscribe: "SUBSCRIBE properties", ctxSuback: "SUBACK properties",
	ctxUnsubscribe: "UNSUBSCRIBE properties", ctxUnsuback: "UNSUBACK properties",
	ctxDisconnect: "DISCONNECT properties", ctxAuth: "AUTH properties",
}

func (c propContext) String() string { return contextNames[c] }

// Field names for errors, built once so that reading allocates nothing for
// them.
var (
	lengthFields     [len(contextNames)]string
	identifierFields [len(contextNames)]string
)

func init() {
	for ctx, name := range contextNames {
		lengthFields[ctx] = name + " length"
		identifierFields[ctx] = name + " identifier"
	}
}

func in(ctxs ...propContext) uint16 {
	var m uint16
	for _, c := range ctxs {
		m |= 1 << c
	}
	return m
}

// propInfo is the name of each property and the packets it may appear in
// (5.0 §2.2.2.2, Table 2-4).
var propInfo = [...]struct {
	name string
	in   uint16
}{
	propPayloadFormat:        {"payload format indicator", in(ctxPublish, ctxWill)},
	propMessageExpiry:        {"message expiry interval", in(ctxPublish, ctxWill)},
	propContentType:          {"content type", in(ctxPublish, ctxWill)},
	propResponseTopic:        {"response topic", in(ctxPublish, ctxWill)},
	propCorrelationData:      {"correlation data", in(ctxPublish, ctxWill)},
	propSubscriptionID:       {"subscription identifier", in(ctxPublish, ctxSubscribe)},
	propSessionExpiry:        {"session expiry interval", in(ctxConnect, ctxConnack, ctxDisconnect)},
	propAssignedClientID:     {"assigned client identifier", in(ctxConnack)},
	propServerKeepAlive:      {"server keep alive", in(ctxConnack)},
	propAuthMethod:           {"authentication method", in(ctxConnect, ctxConnack, ctxAuth)},
	propAuthData:             {"authentication data", in(ctxConnect, ctxConnack, ctxAuth)},
	propRequestProblemInfo:   {"request problem information", in(ctxConnect)},
	propWillDelay:            {"will delay interval", in(ctxWill)},
	propRequestResponseInfo:  {"request response information", in(ctxConnect)},
	propResponseInfo:         {"response information", in(ctxConnack)},
	propServerReference:      {"server reference", in(ctxConnack, ctxDisconnect)},
	propReasonString:         {"reason string", in(ctxConnack, ctxAck, ctxSuback, ctxUnsuback, ctxDisconnect, ctxAuth)},
	propReceiveMaximum:       {"receive maximum", in(ctxConnect, ctxConnack)},
	propTopicAliasMaximum:    {"topic alias maximum", in(ctxConnect, ctxConnack)},
	propTopicAlias:           {"topic alias", in(ctxPublish)},
	propMaximumQoS:           {"maximum QoS", in(ctxConnack)},
	propRetainAvailable:      {"retain available", in(ctxConnack)},
	propUser:                 {"user property", in(ctxConnect, ctxWill, ctxConnack, ctxPublish, ctxAck, ctxSubscribe, ctxSuback, ctxUnsubscribe, ctxUnsuback, ctxDisconnect, ctxAuth)},
	propMaximumPacketSize:    {"maximum packet size", in(ctxConnect, ctxConnack)},
	propWildcardSubAvailable: {"wildcard subscription available", in(ctxConnack)},
	propSubIDAvailable:       {"subscription identifier available", in(ctxConnack)},
	propSharedSubAvailable:   {"shared subscription available", in(ctxConnack)},
}

// decode reads a property length and the properties it covers (5.0
// §2.2.2.1) into p, which must be zero.
func (p *Properties) decode(c *cursor, ctx propContext) error {
	n, err := c.readVarInt(lengthFields[ctx])
	if err != nil {
		return err
	}
	if int(n) > c.remaining() {
		return fmt.Errorf("%s: %w: length %d exceeds the %d bytes left", ctx, ErrMalformed, n, c.remaining())
	}
	pc := cursor{b: c.b[:c.off+int(n)], off: c.off}
	c.off += int(n)
	var seen uint64
	for pc.remaining() > 0 {
		id, err := pc.readVarInt(identifierFields[ctx])
		if err != nil {
			return err
		}
		if int(id) >= len(propInfo) || propInfo[id].name == "" {
			return fmt.Errorf("%s: %w: unknown property identifier 0x%02x", ctx, ErrMalformed, id)
		}
		name := propInfo[id].name
		if propInfo[id].in&(1<<ctx) == 0 {
			return fmt.Errorf("%s: %w: %s not allowed here", ctx, ErrMalformed, name)
		}
		repeatable := id == propUser || (id == propSubscriptionID && ctx == ctxPublish)
		if seen&(1<<id) != 0 && !repeatable {
			return fmt.Errorf("%s: %w: %s more than once", ctx, ErrProtocolError, name)
		}
		seen |= 1 << id
		if err := p.decodeOne(&pc, byte(id), name); err != nil {
			return fmt.Errorf("%s: %w", ctx, err)
		}
	}
	return p.checkValues(ctx)
}

func ptr[T any](v T) *T { return &v }

// decodeOne reads the value of property id.
func (p *Properties) decodeOne(c *cursor, id byte, name string) error {
	var err error
	byteProp := func(dst **byte) {
		var v byte
		if v, err = c.readByte(name); err == nil {
			*dst = ptr(v)
		}
	}
	u16Prop := func(dst **uint16) {
		var v uint16
		if v, err = c.readUint16(name); err == nil {
			*dst = ptr(v)
		}
	}
	u32Prop := func(dst **uint32) {
		var v uint32
		if v, err = c.readUint32(name); err == nil {
			*dst = ptr(v)
		}
	}
	switch id {
	case propPayloadFormat:
		byteProp(&p.PayloadFormat)
	case propMessageExpiry:
		u32Prop(&p.MessageExpiry)
	case propContentType:
		p.ContentType, err = c.readString(name)
	case propResponseTopic:
		p.ResponseTopic, err = c.readString(name)
	case propCorrelationData:
		p.CorrelationData, err = c.readBinary(name)
	case propSubscriptionID:
		var v uint32
		if v, err = c.readVarInt(name); err == nil {
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		}
	case propSessionExpiry:
		u32Prop(&p.SessionExpiry)
	case propAssignedClientID:
		p.AssignedClientID, err = c.readString(name)
	case propServerKeepAlive:
		u16Prop(&p.ServerKeepAlive)
	case propAuthMethod:
		p.AuthMethod, err = c.readString(name)
	case propAuthData:
		p.AuthData, err = c.readBinary(name)
	case propRequestProblemInfo:
		byteProp(&p.RequestProblemInfo)
	case propWillDelay:
		u32Prop(&p.WillDelay)
	case propRequestResponseInfo:
		byteProp(&p.RequestResponseInfo)
	case propResponseInfo:
		p.ResponseInfo, err = c.readString(name)
	case propServerReference:
		p.ServerReference, err = c.readString(name)
	case propReasonString:
		p.ReasonString, err = c.readString(name)
	case propReceiveMaximum:
		u16Prop(&p.ReceiveMaximum)
	case propTopicAliasMaximum:
		u16Prop(&p.TopicAliasMaximum)
	case propTopicAlias:
		u16Prop(&p.TopicAlias)
	case propMaximumQoS:
		byteProp(&p.MaximumQoS)
	case propRetainAvailable:
		byteProp(&p.RetainAvailable)
	case propUser:
		var u UserProperty
		if u.Key, err = c.readString("user property name"); err != nil {
			return err
		}
		if u.Value, err = c.readString("user property value"); err != nil {
			return err
		}
		p.User = append(p.User, u)
	case propMaximumPacketSize:
		u32Prop(&p.MaximumPacketSize)
	case propWildcardSubAvailable:
		byteProp(&p.WildcardSubAvailable)
	case propSubIDAvailable:
		byteProp(&p.SubIDAvailable)
	case propSharedSubAvailable:
		byteProp(&p.SharedSubAvailable)
	}
	return err
}

// present returns a bit per property identifier that is set in p.
func (p *Properties) present() uint64 {
	var m uint64
	set := func(ok bool, id uint) {
		if ok {
			m |= 1 << id
		}
	}
	set(p.PayloadFormat != nil, propPayloadFormat)
	set(p.MessageExpiry != nil, propMessageExpiry)
	set(p.ContentType != "", propContentType)
	set(p.ResponseTopic != "", propResponseTopic)
	set(p.CorrelationData != nil, propCorrelationData)
	set(len(p.SubscriptionIDs) > 0, propSubscriptionID)
	set(p.SessionExpiry != nil, propSessionExpiry)
	set(p.AssignedClientID != "", propAssignedClientID)
	set(p.ServerKeepAlive != nil, propServerKeepAlive)
	set(p.AuthMethod != "", propAuthMethod)
	set(p.AuthData != nil, propAuthData)
	set(p.RequestProblemInfo != nil, propRequestProblemInfo)
	set(p.WillDelay != nil, propWillDelay)
	set(p.RequestResponseInfo != nil, propRequestResponseInfo)
	set(p.ResponseInfo != "", propResponseInfo)
	set(p.ServerReference != "", propServerReference)
	set(p.ReasonString != "", propReasonString)
	set(p.ReceiveMaximum != nil, propReceiveMaximum)
	set(p.TopicAliasMaximum != nil, propTopicAliasMaximum)
	set(p.TopicAlias != nil, propTopicAlias)
	set(p.MaximumQoS != nil, propMaximumQoS)
	set(p.RetainAvailable != nil, propRetainAvailable)
	set(len(p.User) > 0, propUser)
	set(p.MaximumPacketSize != nil, propMaximumPacketSize)
	set(p.WildcardSubAvailable != nil, propWildcardSubAvailable)
	set(p.SubIDAvailable != nil, propSubIDAvailable)
	set(p.SharedSubAvailable != nil, propSharedSubAvailable)
	return m
}

// checkValues enforces the value rules of 5.0 §3 that hold for a property
// list on its own, for reading and writing alike.
func (p *Properties) checkValues(ctx propContext) error {
	flags := [...]struct {
		v  *byte
		id byte
	}{
		{p.PayloadFormat, propPayloadFormat}, {p.RequestProblemInfo, propRequestProblemInfo},
		{p.RequestResponseInfo, propRequestResponseInfo}, {p.MaximumQoS, propMaximumQoS},
		{p.RetainAvailable, propRetainAvailable}, {p.WildcardSubAvailable, propWildcardSubAvailable},
		{p.SubIDAvailable, propSubIDAvailable}, {p.SharedSubAvailable, propSharedSubAvailable},
	}
	for _, f := range flags {
		if f.v != nil && *f.v > 1 {
			return fmt.Errorf("%s: %w: %s is %d, not 0 or 1", ctx, ErrProtocolError, propInfo[f.id].name, *f.v)
		}
	}
	switch {
	case p.ReceiveMaximum != nil && *p.ReceiveMaximum == 0: // 5.0 §3.1.2.11.3, §3.2.2.3.3
		return fmt.Errorf("%s: %w: receive maximum is 0", ctx, ErrProtocolError)
	case p.MaximumPacketSize != nil && *p.MaximumPacketSize == 0: // 5.0 §3.1.2.11.4, §3.2.2.3.6
		return fmt.Errorf("%s: %w: maximum packet size is 0", ctx, ErrProtocolError)
	case p.TopicAlias != nil && *p.TopicAlias == 0: // 5.0 §3.3.2.3.4
		return fmt.Errorf("%s: %w: topic alias is 0", ctx, ErrProtocolError)
	case p.AuthData != nil && p.AuthMethod == "": // 5.0 §3.1.2.11.10
		return fmt.Errorf("%s: %w: authentication data without authentication method", ctx, ErrProtocolError)
	case hasWildcard(p.ResponseTopic): // 5.0 [MQTT-3.3.2-14]
		return fmt.Errorf("%s: %w: response topic contains a wildcard", ctx, ErrProtocolError)
	case ctx == ctxSubscribe && len(p.SubscriptionIDs) > 1: // 5.0 §3.8.2.1.2
		return fmt.Errorf("%s: %w: more than one subscription identifier", ctx, ErrProtocolError)
	}
	for _, id := range p.SubscriptionIDs { // 5.0 §3.3.2.3.8
		if id == 0 || id > maxVarInt {
			return fmt.Errorf("%s: %w: subscription identifier %d outside 1..%d", ctx, ErrProtocolError, id, maxVarInt)
		}
	}
	return nil
}

// validate checks p for writing in ctx: only properties allowed there, the
// value rules of checkValues, and strings and binary data that fit their
// length prefix and follow the UTF-8 rules.
func (p *Properties) validate(ctx propContext) error {
	present := p.present()
	if present == 0 {
		return nil
	}
	if extra := present &^ allowedIn[ctx]; extra != 0 {
		id := bits.TrailingZeros64(extra)
		return fmt.Errorf("%s: %w: %s not allowed here", ctx, ErrMalformed, propInfo[id].name)
	}
	if err := p.checkValues(ctx); err != nil {
		return err
	}
	strs := [...]struct{ s, name string }{
		{p.ContentType, "content type"}, {p.ResponseTopic, "response topic"},
		{p.AssignedClientID, "assigned client identifier"}, {p.AuthMethod, "authentication method"},
		{p.ResponseInfo, "response information"}, {p.ServerReference, "server reference"},
		{p.ReasonString, "reason string"},
	}
	for _, f := range strs {
		if err := validString(f.name, f.s); err != nil {
			return fmt.Errorf("%s: %w", ctx, err)
		}
	}
	if err := validBinary("correlation data", p.CorrelationData); err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	if err := validBinary("authentication data", p.AuthData); err != nil {
		return fmt.Errorf("%s: %w", ctx, err)
	}
	for _, u := range p.User {
		if err := validString("user property name", u.Key); err != nil {
			return fmt.Errorf("%s: %w", ctx, err)
		}
		if err := validString("user property value", u.Value); err != nil {
			return fmt.Errorf("%s: %w", ctx, err)
		}
	}
	return nil
}

// length returns the length of the encoded properties, without their length
// prefix.
func (p *Properties) length() int {
	n := 0
	fixed := func(ok bool, width int) {
		if ok {
			n += 1 + width
		}
	}
	str := func(s string) {
		if s != "" {
			n += 3 + len(s)
		}
	}
	bin := func(b []byte) {
		if b != nil {
			n += 3 + len(b)
		}
	}
	fixed(p.PayloadFormat != nil, 1)
	fixed(p.MessageExpiry != nil, 4)
	str(p.ContentType)
	str(p.ResponseTopic)
	bin(p.CorrelationData)
	for _, id := range p.SubscriptionIDs {
		n += 1 + varIntLen(int(id))
	}
	fixed(p.SessionExpiry != nil, 4)
	str(p.AssignedClientID)
	fixed(p.ServerKeepAlive != nil, 2)
	str(p.AuthMethod)
	bin(p.AuthData)
	fixed(p.RequestProblemInfo != nil, 1)
	fixed(p.WillDelay != nil, 4)
	fixed(p.RequestResponseInfo != nil, 1)
	str(p.ResponseInfo)
	str(p.ServerReference)
	str(p.ReasonString)
	fixed(p.ReceiveMaximum != nil, 2)
	fixed(p.TopicAliasMaximum != nil, 2)
	fixed(p.TopicAlias != nil, 2)
	fixed(p.MaximumQoS != nil, 1)
	fixed(p.RetainAvailable != nil, 1)
	for _, u := range p.User {
		n += 5 + len(u.Key) + len(u.Value)
	}
	fixed(p.MaximumPacketSize != nil, 4)
	fixed(p.WildcardSubAvailable != nil, 1)
	fixed(p.SubIDAvailable != nil, 1)
	fixed(p.SharedSubAvailable != nil, 1)
	return n
}

// allowedIn holds, for each context, the property identifiers allowed in
// it as a bit set.
var allowedIn = func() (m [len(contextNames)]uint64) {
	for id, info := range propInfo {
		for ctx := range m {
			if info.in&(1<<ctx) != 0 {
				m[ctx] |= 1 << id
			}
		}
	}
	return m
}()

// blockSize returns the length of the encoded properties with their length
// prefix.
func (p *Properties) blockSize() int {
	n := p.length()
	return varIntLen(n) + n
}

// appendTo appends the property length and the properties in identifier
// order; p has been validated.
func (p *Properties) appendTo(b []byte) []byte {
	n := p.length()
	b = appendVarInt(b, n)
	if n == 0 {
		return b
	}
	if p.PayloadFormat != nil {
		b = append(b, propPayloadFormat, *p.PayloadFormat)
	}
	if p.MessageExpiry != nil {
		b = appendUint32(append(b, propMessageExpiry), *p.MessageExpiry)
	}
	if p.ContentType != "" {
		b = appendString(append(b, propContentType), p.ContentType)
	}
	if p.ResponseTopic != "" {
		b = appendString(append(b, propResponseTopic), p.ResponseTopic)
	}
	if p.CorrelationData != nil {
		b = appendBinary(append(b, propCorrelationData), p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		b = appendVarInt(append(b, propSubscriptionID), int(id))
	}
	if p.SessionExpiry != nil {
		b = appendUint32(append(b, propSessionExpiry), *p.SessionExpiry)
	}
	if p.AssignedClientID != "" {
		b = appendString(append(b, propAssignedClientID), p.AssignedClientID)
	}
	if p.ServerKeepAlive != nil {
		b = appendUint16(append(b, propServerKeepAlive), *p.ServerKeepAlive)
	}
	if p.AuthMethod != "" {
		b = appendString(append(b, propAuthMethod), p.AuthMethod)
	}
	if p.AuthData != nil {
		b = appendBinary(append(b, propAuthData), p.AuthData)
	}
	if p.RequestProblemInfo != nil {
		b = append(b, propRequestProblemInfo, *p.RequestProblemInfo)
	}
	if p.WillDelay != nil {
		b = appendUint32(append(b, propWillDelay), *p.WillDelay)
	}
	if p.RequestResponseInfo != nil {
		b = append(b, propRequestResponseInfo, *p.RequestResponseInfo)
	}
	if p.ResponseInfo != "" {
		b = appendString(append(b, propResponseInfo), p.ResponseInfo)
	}
	if p.ServerReference != "" {
		b = appendString(append(b, propServerReference), p.ServerReference)
	}
	if p.ReasonString != "" {
		b = appendString(append(b, propReasonString), p.ReasonString)
	}
	if p.ReceiveMaximum != nil {
		b = appendUint16(append(b, propReceiveMaximum), *p.ReceiveMaximum)
	}
	if p.TopicAliasMaximum != nil {
		b = appendUint16(append(b, propTopicAliasMaximum), *p.TopicAliasMaximum)
	}
	if p.TopicAlias != nil {
		b = appendUint16(append(b, propTopicAlias), *p.TopicAlias)
	}
	if p.MaximumQoS != nil {
		b = append(b, propMaximumQoS, *p.MaximumQoS)
	}
	if p.RetainAvailable != nil {
		b = append(b, propRetainAvailable, *p.RetainAvailable)
	}
	for _, u := range p.User {
		b = appendString(appendString(append(b, propUser), u.Key), u.Value)
	}
	if p.MaximumPacketSize != nil {
		b = appendUint32(append(b, propMaximumPacketSize), *p.MaximumPacketSize)
	}
	if p.WildcardSubAvailable != nil {
		b = append(b, propWildcardSubAvailable, *p.WildcardSubAvailable)
	}
	if p.SubIDAvailable != nil {
		b = append(b, propSubIDAvailable, *p.SubIDAvailable)
	}
	if p.SharedSubAvailable != nil {
		b = append(b, propSharedSubAvailable, *p.SharedSubAvailable)
	}
	return b
}
