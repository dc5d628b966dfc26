package mqttsn_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/archtest"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/mqttsn/mqttsntest"
)

func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/mqttsn")
}

// knownTypes lists every message type of MQTT-SN 1.2.
var knownTypes = []mqttsn.MsgType{
	mqttsn.TypeAdvertise, mqttsn.TypeSearchGW, mqttsn.TypeGWInfo, mqttsn.TypeConnect, mqttsn.TypeConnAck,
	mqttsn.TypeWillTopicReq, mqttsn.TypeWillTopic, mqttsn.TypeWillMsgReq, mqttsn.TypeWillMsg,
	mqttsn.TypeRegister, mqttsn.TypeRegAck, mqttsn.TypePublish, mqttsn.TypePubAck, mqttsn.TypePubComp,
	mqttsn.TypePubRec, mqttsn.TypePubRel, mqttsn.TypeSubscribe, mqttsn.TypeSubAck, mqttsn.TypeUnsubscribe,
	mqttsn.TypeUnsubAck, mqttsn.TypePingReq, mqttsn.TypePingResp, mqttsn.TypeDisconnect,
	mqttsn.TypeWillTopicUpd, mqttsn.TypeWillTopicResp, mqttsn.TypeWillMsgUpd, mqttsn.TypeWillMsgResp,
	mqttsn.TypeEncapsulated,
}

// sentinels are the errors every decoding error must wrap one of.
var sentinels = []error{
	mqttsn.ErrShortPacket, mqttsn.ErrInvalidLength, mqttsn.ErrLengthMismatch, mqttsn.ErrTrailingBytes,
	mqttsn.ErrUnknownType, mqttsn.ErrUnsupportedProtocol, mqttsn.ErrReservedTopicIDType,
	mqttsn.ErrNestedEncapsulation,
}

func requireSentinel(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps none of the sentinels", err)
}

func TestCasesCoverEveryType(t *testing.T) {
	seen := map[mqttsn.MsgType]bool{}
	for _, c := range mqttsntest.Cases {
		seen[c.Packet.Type()] = true
	}
	for _, typ := range knownTypes {
		assert.True(t, seen[typ], "no case for %v", typ)
	}
}

func TestDecode(t *testing.T) {
	var ps mqttsn.Parser
	for _, c := range mqttsntest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			p, err := mqttsn.Parse(c.Raw)
			require.NoError(t, err)
			assert.Equal(t, c.Packet, p)
			assert.Equal(t, c.Packet.Type(), p.Type())

			q, err := ps.Parse(c.Raw)
			require.NoError(t, err)
			assert.Equal(t, c.Packet, q, "Parser")
		})
	}
}

func TestEncode(t *testing.T) {
	prefix := []byte("prefix")
	for _, c := range mqttsntest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			b, err := c.Packet.AppendTo(nil)
			require.NoError(t, err)
			if !c.NonCanonical {
				assert.Equal(t, c.Raw, b)
			}
			p, err := mqttsn.Parse(b)
			require.NoError(t, err)
			assert.Equal(t, c.Packet, p, "decode of the encoding")

			// Append and AppendTo append after existing content.
			buf := append(make([]byte, 0, 8), prefix...)
			out, err := mqttsn.Append(buf, c.Packet)
			require.NoError(t, err)
			assert.Equal(t, append(bytes.Clone(prefix), b...), out)
		})
	}
}

// TestRoundTrip checks decode → encode → decode → encode is stable for
// every case, non-canonical ones included.
func TestRoundTrip(t *testing.T) {
	for _, c := range mqttsntest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			p1, err := mqttsn.Parse(c.Raw)
			require.NoError(t, err)
			b1, err := p1.AppendTo(nil)
			require.NoError(t, err)
			p2, err := mqttsn.Parse(b1)
			require.NoError(t, err)
			assert.Equal(t, p1, p2)
			b2, err := p2.AppendTo(nil)
			require.NoError(t, err)
			assert.Equal(t, b1, b2)
		})
	}
}

func TestMalformed(t *testing.T) {
	var ps mqttsn.Parser
	for _, c := range mqttsntest.Malformed {
		t.Run(c.Name, func(t *testing.T) {
			p, err := mqttsn.Parse(c.Raw)
			require.ErrorIs(t, err, c.Err)
			assert.Nil(t, p)
			assert.Regexp(t, `^mqttsn: `, err.Error())

			p, err = ps.Parse(c.Raw)
			require.ErrorIs(t, err, c.Err, "Parser")
			assert.Nil(t, p)
		})
	}
}

func TestFieldError(t *testing.T) {
	_, err := mqttsn.Parse([]byte{0x05, 0x0c, 0x20, 0x00, 0x05})
	require.ErrorIs(t, err, mqttsn.ErrShortPacket)
	assert.EqualError(t, err, "mqttsn: PUBLISH msg id: packet too short")
	var fe *mqttsn.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, mqttsn.TypePublish, fe.Type)
	assert.Equal(t, "msg id", fe.Field)

	_, err = mqttsn.Parse([]byte{0x04, 0x17, 0x00})
	assert.EqualError(t, err, "mqttsn: length field does not match datagram size: length 4, datagram of 3 octets")
	_, err = mqttsn.Parse([]byte{0x04, 0x05, 0x00, 0x00})
	assert.EqualError(t, err, "mqttsn: CONNACK: unexpected octets after the last field")

	_, err = mqttsn.Parse([]byte{0x08, 0x04, 0x04, 0x02, 0x00, 0x3c, 'c', '1'})
	assert.EqualError(t, err, "mqttsn: CONNECT protocol id: unsupported protocol id 0x02")

	_, err = mqttsn.Parse([]byte{0x05, 0xfe, 0x01, 0x12, 0x34, 0x03, 0x17})
	require.ErrorIs(t, err, mqttsn.ErrLengthMismatch)
	assert.EqualError(t, err, "mqttsn: ENCAPSULATED message: length field does not match datagram size: length 3, datagram of 2 octets")
}

// TestTruncatedPrefixes cuts every case at every point: no prefix is a
// valid datagram, since the Length field no longer matches.
func TestTruncatedPrefixes(t *testing.T) {
	var ps mqttsn.Parser
	for _, c := range mqttsntest.Cases {
		for i := range len(c.Raw) {
			b := bytes.Clone(c.Raw[:i])
			p, err := mqttsn.Parse(b)
			requireSentinel(t, err)
			assert.Nil(t, p, "%s cut at %d", c.Name, i)
			_, err = ps.Parse(b)
			requireSentinel(t, err)
		}
	}
}

// minBody returns the body size below which a message of p's kind must be
// rejected as too short (MQTT-SN 1.2 §5.4).
func minBody(p mqttsn.Packet) int {
	switch p := p.(type) {
	case *mqttsn.Advertise:
		return 3
	case *mqttsn.SearchGW, *mqttsn.GWInfo, *mqttsn.ConnAck, *mqttsn.WillTopicResp, *mqttsn.WillMsgResp:
		return 1
	case *mqttsn.Connect, *mqttsn.Register:
		return 4
	case *mqttsn.RegAck, *mqttsn.PubAck:
		return 5
	case *mqttsn.Publish:
		return 5 + len(p.TopicName)
	case *mqttsn.PubRec, *mqttsn.PubRel, *mqttsn.PubComp, *mqttsn.UnsubAck:
		return 2
	case *mqttsn.Subscribe:
		if p.TopicIDType == mqttsn.TopicNormal {
			return 3
		}
		return 5
	case *mqttsn.Unsubscribe:
		if p.TopicIDType == mqttsn.TopicNormal {
			return 3
		}
		return 5
	case *mqttsn.SubAck:
		return 6
	}
	return 0
}

// TestTruncatedBody cuts the body of every case and fixes the Length field
// up, so that the field decoders, not the framing, meet the short input.
func TestTruncatedBody(t *testing.T) {
	for _, c := range mqttsntest.Cases {
		if c.Packet.Type() == mqttsn.TypeEncapsulated {
			continue // its Length does not cover the body
		}
		canon, err := c.Packet.AppendTo(nil)
		require.NoError(t, err)
		hdr := 2
		if canon[0] == 0x01 {
			hdr = 4
		}
		body := canon[hdr:]
		for n := range len(body) {
			b := withHeader(canon[hdr-1], body[:n], false)
			p, err := mqttsn.Parse(b)
			_, isDisconnect := c.Packet.(*mqttsn.Disconnect)
			if n < minBody(c.Packet) || (isDisconnect && n == 1) {
				require.ErrorIs(t, err, mqttsn.ErrShortPacket, "%s body cut to %d: %x", c.Name, n, b)
				continue
			}
			// A shorter variable part can be valid; then it must be stable.
			if err != nil {
				requireSentinel(t, err)
				continue
			}
			out, err := p.AppendTo(nil)
			require.NoError(t, err)
			q, err := mqttsn.Parse(out)
			require.NoError(t, err)
			assert.Equal(t, p, q)
		}
	}
}

// withHeader builds a message of type t around body, with the 1-octet
// Length if it fits and long is false, else the 3-octet form.
func withHeader(t byte, body []byte, long bool) []byte {
	if n := len(body) + 2; n <= 0xff && !long {
		return append([]byte{byte(n), t}, body...)
	}
	n := len(body) + 4
	return append([]byte{0x01, byte(n >> 8), byte(n), t}, body...)
}

// TestLongForm checks every message decodes the same with the 3-octet
// Length, except the encapsulation, whose Length has only one form.
func TestLongForm(t *testing.T) {
	for _, c := range mqttsntest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			canon, err := c.Packet.AppendTo(nil)
			require.NoError(t, err)
			if canon[0] == 0x01 {
				return
			}
			b := withHeader(canon[1], canon[2:], true)
			p, err := mqttsn.Parse(b)
			if c.Packet.Type() == mqttsn.TypeEncapsulated {
				require.ErrorIs(t, err, mqttsn.ErrInvalidLength)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.Packet, p)
		})
	}
}

// TestLengthMismatch: a trailing octet, or a Length off by one either way,
// is rejected for every case.
func TestLengthMismatch(t *testing.T) {
	for _, c := range mqttsntest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := mqttsn.Parse(append(bytes.Clone(c.Raw), 0x00))
			require.ErrorIs(t, err, mqttsn.ErrLengthMismatch)
			if c.Packet.Type() == mqttsn.TypeEncapsulated {
				return
			}
			for _, delta := range []int{-1, +1} {
				b := bytes.Clone(c.Raw)
				if b[0] == 0x01 {
					n := int(b[1])<<8 | int(b[2]) + delta
					b[1], b[2] = byte(n>>8), byte(n)
				} else {
					b[0] = byte(int(b[0]) + delta)
					if b[0] == 0x01 { // would switch to the 3-octet form
						continue
					}
				}
				_, err := mqttsn.Parse(b)
				requireSentinel(t, err)
				assert.False(t, errors.Is(err, mqttsn.ErrTrailingBytes) || errors.Is(err, mqttsn.ErrShortPacket),
					"%x: %v", b, err)
			}
		})
	}
}

// TestShortLongForm covers every 1- to 3-octet datagram starting with the
// 3-octet length marker, which crashes decoders that index past the end.
func TestShortLongForm(t *testing.T) {
	var ps mqttsn.Parser
	check := func(b []byte) {
		_, err := mqttsn.Parse(b)
		require.ErrorIs(t, err, mqttsn.ErrShortPacket, "%x", b)
		_, err = ps.Parse(b)
		require.ErrorIs(t, err, mqttsn.ErrShortPacket, "%x", b)
	}
	check([]byte{0x01})
	for i := range 256 {
		check([]byte{0x01, byte(i)})
		for j := range 256 {
			check([]byte{0x01, byte(i), byte(j)})
		}
	}
}

func TestUnknownTypes(t *testing.T) {
	known := map[mqttsn.MsgType]bool{}
	for _, typ := range knownTypes {
		known[typ] = true
	}
	var ps mqttsn.Parser
	for i := range 256 {
		typ := mqttsn.MsgType(i)
		b := []byte{0x02, byte(i)}
		_, err := mqttsn.Parse(b)
		_, perr := ps.Parse(b)
		if known[typ] {
			assert.False(t, errors.Is(err, mqttsn.ErrUnknownType), "%v", typ)
			assert.NotContains(t, typ.String(), "reserved")
			continue
		}
		assert.ErrorIs(t, err, mqttsn.ErrUnknownType, "%v", typ)
		assert.ErrorIs(t, perr, mqttsn.ErrUnknownType, "%v", typ)
		assert.Equal(t, fmt.Sprintf("reserved (0x%02x)", i), typ.String())
	}
}

func TestUnencodable(t *testing.T) {
	for _, c := range mqttsntest.Unencodable {
		t.Run(c.Name, func(t *testing.T) {
			buf := []byte("keep")
			out, err := c.Packet.AppendTo(buf)
			require.ErrorIs(t, err, c.Err)
			assert.Equal(t, []byte("keep"), out, "the buffer must come back unchanged")
			var fe *mqttsn.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, c.Packet.Type(), fe.Type)
			assert.Regexp(t, "^mqttsn: "+c.Packet.Type().String()+"[ :]", err.Error())
		})
	}
}

func TestAppendNil(t *testing.T) {
	_, err := mqttsn.Append(nil, nil)
	require.ErrorIs(t, err, mqttsn.ErrInvalidField)
}

// TestMaxSize encodes and decodes the largest message the 3-octet Length
// can describe.
func TestMaxSize(t *testing.T) {
	p := &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 9, MsgID: 1, Data: bytes.Repeat([]byte{0xa5}, 65535-9)}
	b, err := p.AppendTo(nil)
	require.NoError(t, err)
	require.Len(t, b, 65535)
	assert.Equal(t, []byte{0x01, 0xff, 0xff, 0x0c}, b[:4])
	q, err := mqttsn.Parse(b)
	require.NoError(t, err)
	assert.Equal(t, p, q)

	long := &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicName: string(bytes.Repeat([]byte{'t'}, 65535-9)), Data: nil}
	b, err = long.AppendTo(nil)
	require.NoError(t, err)
	q, err = mqttsn.Parse(b)
	require.NoError(t, err)
	assert.Equal(t, long, q)
}

// TestParseOwnsMemory: packets from Parse survive the reuse of the input.
func TestParseOwnsMemory(t *testing.T) {
	for _, c := range mqttsntest.Cases {
		b := bytes.Clone(c.Raw)
		p, err := mqttsn.Parse(b)
		require.NoError(t, err)
		for i := range b {
			b[i] = 0xee
		}
		assert.Equal(t, c.Packet, p, c.Name)
	}
}

// TestParserReuse: the Parser returns the same struct for a type, resets
// every field, and aliases the input, as documented.
func TestParserReuse(t *testing.T) {
	var ps mqttsn.Parser
	full := []byte{0x0b, 0x0c, 0xd1, 0x00, 0x05, 0x00, 0x03, '2', '1', '.', '5'}
	p1, err := ps.Parse(full)
	require.NoError(t, err)
	b := []byte{0x07, 0x0c, 0x00, 0x00, 0x06, 0x00, 0x00}
	p2, err := ps.Parse(b)
	require.NoError(t, err)
	assert.Same(t, p1, p2)
	assert.Equal(t, &mqttsn.Publish{TopicID: 6}, p2)

	_, err = ps.Parse([]byte{0x09, 0x0c, 0x60, 0x00, 0x10, 0x00, 0x00, 'a', 'b'})
	require.Error(t, err)
	p3, err := ps.Parse(full)
	require.NoError(t, err)
	assert.Equal(t, &mqttsn.Publish{DUP: true, QoS: mqttsn.QoS2, Retain: true, TopicIDType: mqttsn.TopicPredefined,
		TopicID: 5, MsgID: 3, Data: []byte("21.5")}, p3)
	full[7] = 'X'
	assert.Equal(t, []byte("X1.5"), p3.(*mqttsn.Publish).Data, "Data aliases the input")

	// Every case twice through one Parser, so every struct is reused.
	for range 2 {
		for _, c := range mqttsntest.Cases {
			p, err := ps.Parse(c.Raw)
			require.NoError(t, err)
			assert.Equal(t, c.Packet, p, c.Name)
		}
	}
}

func TestEncapsulatedMessageParses(t *testing.T) {
	for _, c := range mqttsntest.Cases {
		e, ok := c.Packet.(*mqttsn.Encapsulated)
		if !ok {
			continue
		}
		_, err := mqttsn.Parse(e.Message)
		require.NoError(t, err, c.Name)
	}
}

func TestReturnCode(t *testing.T) {
	err := fmt.Errorf("register: %w", mqttsn.RejectedInvalidTopicID)
	assert.ErrorIs(t, err, mqttsn.RejectedInvalidTopicID)
	assert.NotErrorIs(t, err, mqttsn.RejectedCongestion)
	var rc mqttsn.ReturnCode
	require.ErrorAs(t, err, &rc)
	assert.Equal(t, mqttsn.RejectedInvalidTopicID, rc)
	assert.Equal(t, "mqttsn: rejected: invalid topic ID", mqttsn.RejectedInvalidTopicID.Error())
	assert.Equal(t, "accepted", mqttsn.Accepted.String())
	assert.Equal(t, "rejected: congestion", mqttsn.RejectedCongestion.String())
	assert.Equal(t, "rejected: not supported", mqttsn.RejectedNotSupported.String())
	assert.Equal(t, "reserved (0x04)", mqttsn.ReturnCode(4).String())
	assert.Equal(t, "reserved (0xff)", mqttsn.ReturnCode(0xff).String())
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "PUBLISH", mqttsn.TypePublish.String())
	assert.Equal(t, "PUBCOMP", mqttsn.MsgType(0x0e).String())
	assert.Equal(t, "ENCAPSULATED", mqttsn.TypeEncapsulated.String())
	assert.Equal(t, "reserved (0x11)", mqttsn.MsgType(0x11).String())
	assert.Equal(t, "QoS -1", mqttsn.QoSMinus1.String())
	assert.Equal(t, "QoS 2", mqttsn.QoS2.String())
	assert.Equal(t, "invalid QoS 3", mqttsn.QoS(3).String())
	assert.Equal(t, "short", mqttsn.TopicShort.String())
	assert.Equal(t, "predefined", mqttsn.TopicPredefined.String())
	assert.Equal(t, "normal", mqttsn.TopicNormal.String())
	assert.Equal(t, "reserved (0x03)", mqttsn.TopicIDType(3).String())
}

func TestShortTopic(t *testing.T) {
	id, err := mqttsn.ShortTopicID("ab")
	require.NoError(t, err)
	assert.Equal(t, uint16(0x6162), id)
	assert.Equal(t, "ab", mqttsn.ShortTopicName(id))
	assert.Equal(t, "\x00\xff", mqttsn.ShortTopicName(0x00ff))
	for _, bad := range []string{"", "a", "abc", "é"[:1]} {
		_, err := mqttsn.ShortTopicID(bad)
		assert.ErrorIs(t, err, mqttsn.ErrInvalidShortTopic, "%q", bad)
	}
	id, err = mqttsn.ShortTopicID("é") // two octets in UTF-8
	require.NoError(t, err)
	assert.Equal(t, "é", mqttsn.ShortTopicName(id))
}

func TestLongTopic(t *testing.T) {
	assert.True(t, (&mqttsn.Publish{QoS: mqttsn.QoSMinus1}).LongTopic())
	assert.False(t, (&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort}).LongTopic())
	assert.False(t, (&mqttsn.Publish{QoS: mqttsn.QoS0}).LongTopic())
}
