package client

import (
	"net"
	"testing"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	// A bound on the whole conversation, so a broken client fails the
	// test instead of hanging it; not a timing assertion.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	return conn
}

// TestUDPLoopback runs a whole session over real UDP sockets, with the
// scripted gateway on the other socket.
func TestUDPLoopback(t *testing.T) {
	gwConn := listenLoopback(t)
	cliConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	gw := &fakeGW{t: t, conn: gwConn}

	// Discovery: client --SEARCHGW--> GW, client <--GWINFO-- GW.
	found := make(chan GatewayInfo, 1)
	go func() {
		info, _ := SearchGateway(bg, cliConn, gwConn.LocalAddr(), 1)
		found <- info
	}()
	gw.expect(&mqttsn.SearchGW{Radius: 1})
	gw.send(&mqttsn.GWInfo{GatewayID: 9})
	info := <-found
	assert.Equal(t, uint8(9), info.GatewayID)

	msgs := make(chan Message, 8)
	c, err := Dial(cliConn, info.Addr, Options{
		ClientID:     "udp-sensor",
		KeepAlive:    time.Hour,
		CleanSession: true,
		Will:         &Will{Topic: "status/udp-sensor", Payload: []byte("lost")},
		Handler:      func(m Message) { msgs <- m },
	})
	require.NoError(t, err)
	defer func() { assert.NoError(t, c.Close()) }()

	done := run(func() error { return c.Connect(bg) })
	gw.expect(&mqttsn.Connect{Will: true, CleanSession: true, Duration: 3600, ClientID: "udp-sensor"})
	gw.send(&mqttsn.WillTopicReq{})
	gw.expect(&mqttsn.WillTopic{Topic: "status/udp-sensor"})
	gw.send(&mqttsn.WillMsgReq{})
	gw.expect(&mqttsn.WillMsg{Message: []byte("lost")})
	gw.send(&mqttsn.ConnAck{})
	require.NoError(t, <-done)

	done = run(func() error {
		return c.Publish(bg, Message{Topic: TopicName("sensors/udp/temp"), QoS: mqttsn.QoS1, Payload: []byte("20.5")})
	})
	reg := gw.recv().(*mqttsn.Register)
	assert.Equal(t, "sensors/udp/temp", reg.TopicName)
	gw.send(&mqttsn.RegAck{TopicID: 1, MsgID: reg.MsgID})
	pub := gw.recv().(*mqttsn.Publish)
	assert.Equal(t, &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 1, MsgID: pub.MsgID, Data: []byte("20.5")}, pub)
	gw.send(&mqttsn.PubAck{TopicID: 1, MsgID: pub.MsgID})
	require.NoError(t, <-done)

	done = run(func() error { _, _, err := c.Subscribe(bg, TopicName("cmd/#"), mqttsn.QoS2); return err })
	sub := gw.recv().(*mqttsn.Subscribe)
	gw.send(&mqttsn.SubAck{QoS: mqttsn.QoS2, MsgID: sub.MsgID})
	require.NoError(t, <-done)
	gw.send(&mqttsn.Register{TopicID: 2, MsgID: 1, TopicName: "cmd/led"})
	gw.expect(&mqttsn.RegAck{TopicID: 2, MsgID: 1})
	gw.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: 2, MsgID: 2, Data: []byte("on")})
	gw.expect(&mqttsn.PubRec{MsgID: 2})
	gw.send(&mqttsn.PubRel{MsgID: 2})
	gw.expect(&mqttsn.PubComp{MsgID: 2})
	assert.Equal(t, Message{Topic: Topic{Name: "cmd/led", ID: 2}, Payload: []byte("on"), QoS: mqttsn.QoS2}, <-msgs)

	// A datagram from another socket is not the gateway's.
	stranger := listenLoopback(t)
	b, err := mqttsn.Append(nil, &mqttsn.Disconnect{})
	require.NoError(t, err)
	_, err = stranger.WriteTo(b, gw.client)
	require.NoError(t, err)

	done = run(func() error { return c.Disconnect(bg) })
	gw.expect(&mqttsn.Disconnect{})
	gw.send(&mqttsn.Disconnect{})
	require.NoError(t, <-done)
	assert.Equal(t, StateDisconnected, c.State())
	assert.Equal(t, uint64(1), c.Stats().Ignored)
}
