//go:build linux

package mqttsn_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/tsharktest"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/mqttsn/mqttsntest"
)

// tsharkFields are the MQTT-SN fields compared with the codec's view of
// each message (tshark -G fields).
var tsharkFields = []string{
	"mqttsn.msg.len", "mqttsn.msg.type",
	"mqttsn.dup", "mqttsn.qos", "mqttsn.retain", "mqttsn.will", "mqttsn.clean.session", "mqttsn.topic.id.type",
	"mqttsn.topic.id", "mqttsn.msg.id", "mqttsn.return.code", "mqttsn.client.id", "mqttsn.protocol.id",
	"mqttsn.keep.alive", "mqttsn.gw.id", "mqttsn.adv.interv", "mqttsn.radius", "mqttsn.sleep.timer",
	"mqttsn.topic", "mqttsn.topic.name.or.id", "mqttsn.will.topic", "mqttsn.will.msg", "mqttsn.pub.msg",
	"mqttsn.control.info", "mqttsn.wireless.node.id", "_ws.malformed",
}

// tsharkDissector adds the codec's expectations to the installed
// dissector's description.
type tsharkDissector struct{ tsharktest.Dissector }

// TestTshark sends the encoding of every table packet over loopback UDP,
// captures it with tshark and checks that Wireshark's independent MQTT-SN
// dissector reads the same fields, message by message.
func TestTshark(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ver := tsharkDissector{tsharktest.Find(t, ctx)}
	t.Logf("tshark %s (legacy dissector: %v)", ver.Version, ver.Legacy)

	cases := mqttsntest.Cases
	msgs := make([][]byte, len(cases))
	for i, c := range cases {
		b, err := c.Packet.AppendTo(nil)
		require.NoError(t, err, c.Name)
		msgs[i] = b
	}

	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer rx.Close()
	port := rx.LocalAddr().(*net.UDPAddr).Port
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	defer tx.Close()

	capture := ver.Start(t, ctx, fmt.Sprintf("udp dst port %d", port), len(msgs))
	for i, m := range msgs {
		_, err := tx.Write(m)
		require.NoError(t, err, cases[i].Name)
	}
	capture.Wait(t, ctx)
	rows := capture.Fields(t, ctx, port, tsharkFields)
	require.Len(t, rows, len(msgs), "one decoded row per datagram")

	for i, c := range cases {
		got := rows[i]
		want, malformedOK := ver.expect(t, c.Packet, len(msgs[i]))
		for f, v := range want {
			assert.Equal(t, v, got[f], "%s (frame %d, %x): %s", c.Name, i+1, msgs[i], f)
		}
		if !malformedOK {
			assert.Empty(t, got["_ws.malformed"], "%s (frame %d, %x): tshark finds it malformed", c.Name, i+1, msgs[i])
		}
	}
}

// expect returns the field values the dissector should show for p, encoded
// in n octets, and whether it may flag the message as malformed.
func (d tsharkDissector) expect(t *testing.T, p mqttsn.Packet, n int) (map[string]string, bool) {
	t.Helper()
	w := map[string]string{
		"mqttsn.msg.len":  strconv.Itoa(n),
		"mqttsn.msg.type": fmt.Sprintf("0x%02x", byte(p.Type())),
	}
	malformedOK := false
	hex := func(v byte) string { return fmt.Sprintf("0x%02x", v) }
	num := func(v uint16) string { return strconv.Itoa(int(v)) }
	qos := func(q mqttsn.QoS) string { return hex(byte(q) & 0b11) } // QoS -1 shows as 3
	flag := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	switch p := p.(type) {
	case *mqttsn.Advertise:
		w["mqttsn.gw.id"] = num(uint16(p.GatewayID))
		w["mqttsn.adv.interv"] = num(p.Duration)
	case *mqttsn.SearchGW:
		w["mqttsn.radius"] = num(uint16(p.Radius))
	case *mqttsn.GWInfo:
		// GwAdd is shown as a string of the raw octets; not compared.
		w["mqttsn.gw.id"] = num(uint16(p.GatewayID))
	case *mqttsn.Connect:
		w["mqttsn.will"] = flag(p.Will)
		w["mqttsn.clean.session"] = flag(p.CleanSession)
		w["mqttsn.protocol.id"] = "0x01"
		w["mqttsn.keep.alive"] = num(p.Duration)
		w["mqttsn.client.id"] = p.ClientID
	case *mqttsn.ConnAck:
		w["mqttsn.return.code"] = hex(byte(p.ReturnCode))
	case *mqttsn.WillTopic:
		malformedOK = d.expectWillTopic(w, p.QoS, p.Retain, p.Topic)
	case *mqttsn.WillTopicUpd:
		malformedOK = d.expectWillTopic(w, p.QoS, p.Retain, p.Topic)
	case *mqttsn.WillMsg:
		w["mqttsn.will.msg"] = string(p.Message)
	case *mqttsn.WillMsgUpd:
		w["mqttsn.will.msg"] = string(p.Message)
	case *mqttsn.Register:
		w["mqttsn.topic.id"] = num(p.TopicID)
		w["mqttsn.msg.id"] = num(p.MsgID)
		w["mqttsn.topic"] = p.TopicName
	case *mqttsn.RegAck:
		w["mqttsn.topic.id"] = num(p.TopicID)
		w["mqttsn.msg.id"] = num(p.MsgID)
		w["mqttsn.return.code"] = hex(byte(p.ReturnCode))
	case *mqttsn.Publish:
		w["mqttsn.dup"] = flag(p.DUP)
		w["mqttsn.qos"] = qos(p.QoS)
		w["mqttsn.retain"] = flag(p.Retain)
		w["mqttsn.topic.id.type"] = hex(byte(p.TopicIDType))
		w["mqttsn.msg.id"] = num(p.MsgID)
		switch {
		case p.LongTopic() && d.Legacy:
			// The dissector does not know the long-topic-name form, so it
			// shows the raw layout: the TopicId field holds the name length
			// and the payload starts with the name.
			w["mqttsn.topic.id"] = num(uint16(len(p.TopicName)))
			w["mqttsn.pub.msg"] = p.TopicName + string(p.Data)
		case p.LongTopic():
			// Not verified against newer dissectors; compare only the header.
		case p.TopicIDType == mqttsn.TopicShort && !d.Legacy:
			w["mqttsn.topic"] = mqttsn.ShortTopicName(p.TopicID)
			w["mqttsn.pub.msg"] = string(p.Data)
		default: // 4.0 shows a short topic name as the number it is on the wire
			w["mqttsn.topic.id"] = num(p.TopicID)
			w["mqttsn.pub.msg"] = string(p.Data)
		}
	case *mqttsn.PubAck:
		w["mqttsn.topic.id"] = num(p.TopicID)
		w["mqttsn.msg.id"] = num(p.MsgID)
		w["mqttsn.return.code"] = hex(byte(p.ReturnCode))
	case *mqttsn.PubRec:
		w["mqttsn.msg.id"] = num(p.MsgID)
	case *mqttsn.PubRel:
		w["mqttsn.msg.id"] = num(p.MsgID)
	case *mqttsn.PubComp:
		w["mqttsn.msg.id"] = num(p.MsgID)
	case *mqttsn.Subscribe:
		if !d.Legacy { // 4.0 shows neither DUP nor QoS in SUBSCRIBE
			w["mqttsn.dup"] = flag(p.DUP)
			w["mqttsn.qos"] = qos(p.QoS)
		}
		d.expectTopicRef(w, p.TopicIDType, p.MsgID, p.TopicName, p.TopicID)
	case *mqttsn.Unsubscribe:
		d.expectTopicRef(w, p.TopicIDType, p.MsgID, p.TopicName, p.TopicID)
	case *mqttsn.SubAck:
		if !d.Legacy { // 4.0 shows the flags as a TopicIdType
			w["mqttsn.qos"] = qos(p.QoS)
		}
		w["mqttsn.topic.id"] = num(p.TopicID)
		w["mqttsn.msg.id"] = num(p.MsgID)
		w["mqttsn.return.code"] = hex(byte(p.ReturnCode))
	case *mqttsn.UnsubAck:
		w["mqttsn.msg.id"] = num(p.MsgID)
	case *mqttsn.PingReq:
		w["mqttsn.client.id"] = p.ClientID
	case *mqttsn.Disconnect:
		if p.HasDuration {
			w["mqttsn.sleep.timer"] = num(p.Duration)
		} else {
			w["mqttsn.sleep.timer"] = ""
		}
	case *mqttsn.WillTopicResp:
		w["mqttsn.return.code"] = hex(byte(p.ReturnCode))
	case *mqttsn.WillMsgResp:
		w["mqttsn.return.code"] = hex(byte(p.ReturnCode))
	case *mqttsn.Encapsulated:
		inner, err := mqttsn.Parse(p.Message)
		require.NoError(t, err)
		iw, imalformed := d.expect(t, inner, len(p.Message))
		malformedOK = imalformed
		// The dissector lists the outer and the inner values of a field.
		iw["mqttsn.msg.len"] = strconv.Itoa(3+len(p.NodeID)) + "," + iw["mqttsn.msg.len"]
		iw["mqttsn.msg.type"] = "0xfe," + iw["mqttsn.msg.type"]
		iw["mqttsn.control.info"] = hex(p.Radius)
		if len(p.NodeID) == 2 {
			iw["mqttsn.wireless.node.id"] = num(uint16(p.NodeID[0])<<8 | uint16(p.NodeID[1]))
		} else {
			// Every version reads the node id as a uint16, which fails
			// ("Trying to fetch an unsigned integer with length 8").
			malformedOK = true
		}
		return iw, malformedOK
	default:
		// WILLTOPICREQ, WILLMSGREQ, PINGRESP: header only.
	}
	return w, malformedOK
}

func (d tsharkDissector) expectWillTopic(w map[string]string, q mqttsn.QoS, retain bool, topic string) (malformedOK bool) {
	if topic == "" {
		return d.Legacy // 4.0 flags the valid 2-octet form as malformed
	}
	w["mqttsn.will.topic"] = topic
	if !d.Legacy { // 4.0 shows the flags as a TopicIdType
		w["mqttsn.qos"] = fmt.Sprintf("0x%02x", byte(q)&0b11)
		if retain {
			w["mqttsn.retain"] = "1"
		} else {
			w["mqttsn.retain"] = "0"
		}
	}
	return false
}

func (d tsharkDissector) expectTopicRef(w map[string]string, tt mqttsn.TopicIDType, msgID uint16, name string, id uint16) {
	w["mqttsn.topic.id.type"] = fmt.Sprintf("0x%02x", byte(tt))
	w["mqttsn.msg.id"] = strconv.Itoa(int(msgID))
	if tt == mqttsn.TopicShort {
		name = mqttsn.ShortTopicName(id) // tshark shows the two octets as text
	}
	switch {
	case tt == mqttsn.TopicPredefined && d.Legacy:
		// 4.0 reads the id as a string ("Trailing stray characters").
	case tt == mqttsn.TopicPredefined:
		w["mqttsn.topic.id"] = strconv.Itoa(int(id))
	case d.Legacy:
		w["mqttsn.topic.name.or.id"] = name
	default:
		w["mqttsn.topic"] = name
	}
}
