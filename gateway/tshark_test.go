//go:build linux

package gateway

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
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// TestGatewayOutputDecodedByTshark runs a conversation with the gateway
// over real loopback UDP while tshark captures what the gateway sends, and
// requires Wireshark's dissector to read every message exactly as our
// client did: type, length, ids, return codes and flags.
func TestGatewayOutputDecodedByTshark(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	d := tsharktest.Find(t, ctx)

	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, broker.Start(ctx))
	defer broker.Close(context.Background())
	g, err := New(broker, &Options{GatewayID: 9})
	require.NoError(t, err)
	defer g.Close(context.Background())
	gwConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, g.Serve(Link{Name: "udp", Conn: gwConn}))
	gwAddr := gwConn.LocalAddr().(*net.UDPAddr)

	cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer cl.Close()
	var received [][]byte
	send := func(p mqttsn.Packet) {
		t.Helper()
		b, err := mqttsn.Append(nil, p)
		require.NoError(t, err)
		_, err = cl.WriteToUDP(b, gwAddr)
		require.NoError(t, err)
	}
	next := func() mqttsn.Packet {
		t.Helper()
		require.NoError(t, cl.SetReadDeadline(time.Now().Add(10*time.Second)))
		buf := make([]byte, 2048)
		n, err := cl.Read(buf)
		require.NoError(t, err)
		received = append(received, buf[:n])
		p, err := mqttsn.Parse(buf[:n])
		require.NoError(t, err)
		return p
	}

	const expected = 12 // datagrams the gateway sends in the conversation below
	capture := d.Start(t, ctx, fmt.Sprintf("udp src port %d", gwAddr.Port), expected)

	send(&mqttsn.SearchGW{Radius: 1})
	next() // GWINFO
	send(&mqttsn.Connect{ClientID: "tshark-1", Duration: 30, CleanSession: true, Will: true})
	next() // WILLTOPICREQ
	send(&mqttsn.WillTopic{QoS: mqttsn.QoS1, Topic: "wills/tshark-1"})
	next() // WILLMSGREQ
	send(&mqttsn.WillMsg{Message: []byte("bye")})
	next() // CONNACK
	send(&mqttsn.Register{MsgID: 1, TopicName: "t/a"})
	reg := next().(*mqttsn.RegAck)
	send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: reg.TopicID, MsgID: 2, Data: []byte("x")})
	next() // PUBREC
	send(&mqttsn.PubRel{MsgID: 2})
	next() // PUBCOMP
	send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 3, TopicName: "t/#"})
	next()         // SUBACK with topic id 0
	pub := g.qosM1 // any broker session can publish
	require.NoError(t, pub.Publish(mqttcore.Message{Topic: "t/b", Payload: []byte("to client"), QoS: 1}))
	r := next().(*mqttsn.Register)
	send(&mqttsn.RegAck{TopicID: r.TopicID, MsgID: r.MsgID})
	p := next().(*mqttsn.Publish)
	send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
	send(&mqttsn.PingReq{})
	next() // PINGRESP
	send(&mqttsn.Disconnect{})
	next() // DISCONNECT
	require.Len(t, received, expected)

	capture.Wait(t, ctx)
	fields := []string{"mqttsn.msg.len", "mqttsn.msg.type", "mqttsn.msg.id", "mqttsn.topic.id",
		"mqttsn.return.code", "mqttsn.qos", "mqttsn.topic", "mqttsn.gw.id", "_ws.malformed"}
	rows := capture.Fields(t, ctx, gwAddr.Port, fields)
	require.Len(t, rows, expected)
	for i, raw := range received {
		pkt, err := mqttsn.Parse(raw)
		require.NoError(t, err)
		row := rows[i]
		what := fmt.Sprintf("message %d (%s, % x)", i+1, pkt.Type(), raw)
		assert.Equal(t, strconv.Itoa(len(raw)), row["mqttsn.msg.len"], what)
		assert.Equal(t, fmt.Sprintf("0x%02x", byte(pkt.Type())), row["mqttsn.msg.type"], what)
		assert.Empty(t, row["_ws.malformed"], what)
		switch p := pkt.(type) {
		case *mqttsn.GWInfo:
			assert.Equal(t, "9", row["mqttsn.gw.id"], what)
		case *mqttsn.ConnAck:
			assert.Equal(t, "0x00", row["mqttsn.return.code"], what)
		case *mqttsn.RegAck:
			assert.Equal(t, strconv.Itoa(int(p.MsgID)), row["mqttsn.msg.id"], what)
			assert.Equal(t, strconv.Itoa(int(p.TopicID)), row["mqttsn.topic.id"], what)
			assert.Equal(t, "0x00", row["mqttsn.return.code"], what)
		case *mqttsn.PubRec:
			assert.Equal(t, "2", row["mqttsn.msg.id"], what)
		case *mqttsn.PubComp:
			assert.Equal(t, "2", row["mqttsn.msg.id"], what)
		case *mqttsn.SubAck:
			assert.Equal(t, "3", row["mqttsn.msg.id"], what)
			assert.Equal(t, "0", row["mqttsn.topic.id"], what, "a wildcard subscription gets topic id 0")
		case *mqttsn.Register:
			assert.Equal(t, strconv.Itoa(int(p.TopicID)), row["mqttsn.topic.id"], what)
			assert.Equal(t, "t/b", row["mqttsn.topic"], what)
		case *mqttsn.Publish:
			assert.Equal(t, strconv.Itoa(int(p.MsgID)), row["mqttsn.msg.id"], what)
			assert.Equal(t, strconv.Itoa(int(p.TopicID)), row["mqttsn.topic.id"], what)
			assert.Equal(t, "0x01", row["mqttsn.qos"], what)
		}
	}
}
