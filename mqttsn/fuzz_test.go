package mqttsn_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/mqttsn/mqttsntest"
)

func addDatagramSeeds(f *testing.F) {
	for _, c := range mqttsntest.Cases {
		f.Add(c.Raw)
	}
	for _, c := range mqttsntest.Malformed {
		f.Add(c.Raw)
	}
}

// FuzzParse: Parse never panics, its errors wrap a sentinel, and whatever
// it accepts encodes, decodes to the same packet, and encodes to the same
// octets again.
func FuzzParse(f *testing.F) {
	addDatagramSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := mqttsn.Parse(b)
		if err != nil {
			require.Nil(t, p)
			requireSentinel(t, err)
			return
		}
		out, err := p.AppendTo(nil)
		require.NoError(t, err, "%#v", p)
		q, err := mqttsn.Parse(out)
		require.NoError(t, err, "%x", out)
		require.Equal(t, p, q)
		again, err := q.AppendTo(nil)
		require.NoError(t, err)
		require.Equal(t, out, again)
	})
}

// FuzzParser: the reusable Parser agrees with Parse on any sequence of two
// datagrams, so no state leaks from one call into the next.
func FuzzParser(f *testing.F) {
	for i, c := range mqttsntest.Cases {
		next := mqttsntest.Cases[(i+1)%len(mqttsntest.Cases)].Raw
		f.Add(c.Raw, next)
		f.Add(c.Raw, c.Raw)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ps mqttsn.Parser
		for _, d := range [][]byte{a, b, a} {
			want, werr := mqttsn.Parse(d)
			got, gerr := ps.Parse(d)
			if werr != nil {
				require.Error(t, gerr)
				require.Equal(t, werr.Error(), gerr.Error())
				require.Nil(t, got)
				continue
			}
			require.NoError(t, gerr)
			require.Equal(t, want, got)
		}
	})
}

// encodeSentinels are the errors every encoding error must wrap one of.
var encodeSentinels = []error{
	mqttsn.ErrTooLarge, mqttsn.ErrInvalidQoS, mqttsn.ErrInvalidShortTopic, mqttsn.ErrInvalidTopic,
	mqttsn.ErrInvalidField, mqttsn.ErrReservedTopicIDType,
	// Errors of the encapsulated message's framing.
	mqttsn.ErrShortPacket, mqttsn.ErrInvalidLength, mqttsn.ErrLengthMismatch, mqttsn.ErrNestedEncapsulation,
}

// FuzzRoundTrip builds a packet of every type from arbitrary field values:
// it either fails to encode with a sentinel error, or decodes back to
// exactly the packet.
func FuzzRoundTrip(f *testing.F) {
	for kind := range 29 {
		f.Add(uint8(kind), uint8(0x20), uint16(5), uint16(1), "a/b", []byte("data"))
		f.Add(uint8(kind), uint8(0xff), uint16(0), uint16(0xffff), "ab", []byte{0x02, 0x16})
		f.Add(uint8(kind), uint8(0x62), uint16(0x6162), uint16(0), "", []byte{})
	}
	f.Fuzz(func(t *testing.T, kind, flags uint8, a, b uint16, s string, data []byte) {
		if len(data) == 0 {
			data = nil // decoding gives nil for empty byte fields
		}
		p := buildPacket(kind, flags, a, b, s, data)
		out, err := p.AppendTo(nil)
		if err != nil {
			for _, s := range encodeSentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("encoding error %q wraps no sentinel", err)
		}
		q, err := mqttsn.Parse(out)
		require.NoError(t, err, "%#v encodes to %x", p, out)
		require.Equal(t, p, q)
	})
}

// buildPacket makes a packet of one of the 28 types from fuzzed values;
// flags supplies the booleans, QoS (-1..2 plus invalid values) and topic
// id type.
func buildPacket(kind, flags uint8, a, b uint16, s string, data []byte) mqttsn.Packet {
	bit := func(n uint) bool { return flags&(1<<n) != 0 }
	qos := mqttsn.QoS(int8(flags>>5&0b11)) - 1 // -1..2
	if bit(4) && bit(3) && bit(2) {
		qos = mqttsn.QoS(int8(flags)) // mostly out of range
	}
	tt := mqttsn.TopicIDType(flags & 0b11)
	rc := mqttsn.ReturnCode(a)
	switch kind % 29 {
	case 0:
		return &mqttsn.Advertise{GatewayID: uint8(a), Duration: b}
	case 1:
		return &mqttsn.SearchGW{Radius: uint8(a)}
	case 2:
		return &mqttsn.GWInfo{GatewayID: uint8(a), GatewayAddr: data}
	case 3:
		return &mqttsn.Connect{Will: bit(3), CleanSession: bit(2), Duration: b, ClientID: s}
	case 4:
		return &mqttsn.ConnAck{ReturnCode: rc}
	case 5:
		return &mqttsn.WillTopicReq{}
	case 6:
		return &mqttsn.WillTopic{QoS: qos, Retain: bit(4), Topic: s}
	case 7:
		return &mqttsn.WillMsgReq{}
	case 8:
		return &mqttsn.WillMsg{Message: data}
	case 9:
		return &mqttsn.Register{TopicID: a, MsgID: b, TopicName: s}
	case 10:
		return &mqttsn.RegAck{TopicID: a, MsgID: b, ReturnCode: rc}
	case 11:
		return &mqttsn.Publish{DUP: bit(7), QoS: qos, Retain: bit(4), TopicIDType: tt, TopicID: a, MsgID: b, TopicName: s, Data: data}
	case 12:
		return &mqttsn.PubAck{TopicID: a, MsgID: b, ReturnCode: rc}
	case 13:
		return &mqttsn.PubComp{MsgID: b}
	case 14:
		return &mqttsn.PubRec{MsgID: b}
	case 15:
		return &mqttsn.PubRel{MsgID: b}
	case 16:
		return &mqttsn.Subscribe{DUP: bit(7), QoS: qos, TopicIDType: tt, MsgID: b, TopicName: s, TopicID: a}
	case 17:
		return &mqttsn.SubAck{QoS: qos, TopicID: a, MsgID: b, ReturnCode: rc}
	case 18:
		return &mqttsn.Unsubscribe{TopicIDType: tt, MsgID: b, TopicName: s, TopicID: a}
	case 19:
		return &mqttsn.UnsubAck{MsgID: b}
	case 20:
		return &mqttsn.PingReq{ClientID: s}
	case 21:
		return &mqttsn.PingResp{}
	case 22:
		return &mqttsn.Disconnect{Duration: b, HasDuration: bit(0)}
	case 23:
		return &mqttsn.WillTopicUpd{QoS: qos, Retain: bit(4), Topic: s}
	case 24:
		return &mqttsn.WillTopicResp{ReturnCode: rc}
	case 25:
		return &mqttsn.WillMsgUpd{Message: data}
	case 26:
		return &mqttsn.WillMsgResp{ReturnCode: rc}
	default:
		var node []byte
		if s != "" {
			node = []byte(s)
		}
		return &mqttsn.Encapsulated{Radius: uint8(a), NodeID: node, Message: data}
	}
}
