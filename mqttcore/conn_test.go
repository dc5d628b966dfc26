package mqttcore_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

func TestConnackV5Properties(t *testing.T) {
	s := serveBroker(t, &mqttcore.Options{MaxInboundInflight: 7, MaxSessionExpiry: 60},
		mqttcore.ListenerOptions{MaxPacketSize: 4096, MaxKeepAlive: 30, TopicAliasMaximum: 5})
	cp := connect5("")
	cp.KeepAlive = 0
	cp.Properties.SessionExpiry = ptr(uint32(3600))
	_, ack := connectRaw(t, s.addr, packet.V5, cp)
	p := ack.Properties
	assert.False(t, ack.SessionPresent)
	assert.Equal(t, ptr(uint16(7)), p.ReceiveMaximum, "Receive Maximum is the engine's inbound window")
	assert.Equal(t, ptr(uint32(4096)), p.MaximumPacketSize)
	assert.Equal(t, ptr(uint16(5)), p.TopicAliasMaximum)
	assert.Equal(t, ptr(uint16(30)), p.ServerKeepAlive, "keep-alive 0 is capped")
	assert.Equal(t, ptr(uint32(60)), p.SessionExpiry, "session expiry is capped")
	assert.True(t, strings.HasPrefix(p.AssignedClientID, "auto-"), "assigned id %q", p.AssignedClientID)
}

func TestConnackV5NoServerKeepAliveWithinCap(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{MaxKeepAlive: 30})
	cp := connect5("c")
	cp.KeepAlive = 20
	_, ack := connectRaw(t, s.addr, packet.V5, cp)
	assert.Nil(t, ack.Properties.ServerKeepAlive)
	assert.Empty(t, ack.Properties.AssignedClientID)
	assert.Nil(t, ack.Properties.SessionExpiry)
}

func TestConnectRefusals(t *testing.T) {
	s := serveBroker(t, &mqttcore.Options{Authorizer: refuser{}}, mqttcore.ListenerOptions{})
	tests := []struct {
		name string
		v    packet.Version
		cp   *packet.ConnectPacket
		want packet.ReasonCode
	}{
		{"3.1.1 empty id, clean session 0", packet.V311, &packet.ConnectPacket{}, packet.ClientIdentifierNotValid},
		{"3.1.1 refused by the authorizer", packet.V311, &packet.ConnectPacket{ClientID: "banned", CleanStart: true}, packet.NotAuthorized},
		{"5.0 refused by the authorizer", packet.V5, &packet.ConnectPacket{ClientID: "banned", CleanStart: true}, packet.NotAuthorized},
		{"5.0 authentication method", packet.V5, &packet.ConnectPacket{ClientID: "x", CleanStart: true,
			Properties: packet.Properties{AuthMethod: "SCRAM-SHA-1"}}, packet.BadAuthenticationMethod},
		{"5.0 will topic with a wildcard", packet.V5, &packet.ConnectPacket{ClientID: "x", CleanStart: true,
			Will: &packet.Will{Topic: "a/+"}}, packet.TopicNameInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, s.addr, tt.v)
			c.send(tt.cp)
			ack := c.expect(packet.Connack).(*packet.ConnackPacket)
			assert.Equal(t, tt.want, ack.ReasonCode)
			assert.False(t, ack.SessionPresent)
			c.expectEOF()
		})
	}
}

func TestUnsupportedProtocolVersion(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c := dialRaw(t, s.addr, packet.V311)
	// CONNECT "MQTT" level 6, clean start, keep-alive 60, client id "x".
	c.sendBytes([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 1, 'x'})
	ack := c.expect(packet.Connack).(*packet.ConnackPacket)
	assert.Equal(t, packet.UnsupportedProtocolVersion, ack.ReasonCode)
	c.expectEOF()
}

func TestFirstPacketNotConnectCloses(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c := dialRaw(t, s.addr, packet.V311)
	c.sendBytes([]byte{0xC0, 0}) // PINGREQ
	c.expectEOF()
}

func TestProtocolErrorsV5(t *testing.T) {
	s := serveBroker(t, &mqttcore.Options{MaxInboundInflight: 2}, mqttcore.ListenerOptions{MaxPacketSize: 256, TopicAliasMaximum: 2})
	tests := []struct {
		name string
		send func(c *rawClient)
		want packet.ReasonCode
	}{
		{"second CONNECT", func(c *rawClient) {
			// CONNECT v5 "y", clean start, no properties.
			c.sendBytes([]byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 1, 'y'})
		}, packet.ProtocolError},
		{"malformed remaining length", func(c *rawClient) {
			c.sendBytes([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F})
		}, packet.MalformedPacket},
		{"packet too large", func(c *rawClient) {
			c.send(&packet.PublishPacket{Topic: "t", Payload: make([]byte, 300)})
		}, packet.PacketTooLarge},
		{"topic alias above the maximum", func(c *rawClient) {
			c.send(&packet.PublishPacket{Topic: "t", Properties: packet.Properties{TopicAlias: ptr(uint16(3))}})
		}, packet.TopicAliasInvalid},
		{"unknown topic alias", func(c *rawClient) {
			c.send(&packet.PublishPacket{Properties: packet.Properties{TopicAlias: ptr(uint16(1))}})
		}, packet.ProtocolError},
		{"wildcard in a QoS 0 topic", func(c *rawClient) {
			c.send(&packet.PublishPacket{Topic: "a/#"})
		}, packet.TopicNameInvalid},
		{"receive maximum exceeded", func(c *rawClient) {
			for id := uint16(1); id <= 3; id++ {
				c.send(&packet.PublishPacket{Topic: "t", QoS: 2, PacketID: id})
			}
			c.expect(packet.Pubrec)
			c.expect(packet.Pubrec)
		}, packet.ReceiveMaximumExceeded},
		{"AUTH without a method", func(c *rawClient) {
			c.send(&packet.AuthPacket{ReasonCode: packet.ReAuthenticate})
		}, packet.ProtocolError},
		{"server packet from a client", func(c *rawClient) {
			c.send(&packet.SubackPacket{PacketID: 1, ReasonCodes: []packet.ReasonCode{0}})
		}, packet.ProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := connectRaw(t, s.addr, packet.V5, connect5("p"))
			tt.send(c)
			c.expectDisconnect(tt.want)
		})
	}
}

func TestProtocolErrorV311Closes(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c, _ := connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "p", CleanStart: true})
	c.send(&packet.PublishPacket{Topic: "a/+"})
	c.expectEOF()
}

// TestCloseIsOrderly: a client that keeps sending after the server's
// DISCONNECT sees the DISCONNECT and then EOF, never a connection reset.
func TestCloseIsOrderly(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c, _ := connectRaw(t, s.addr, packet.V5, connect5("orderly"))
	// A burst of garbage: the first bytes are a protocol error (a second
	// CONNECT), the rest keeps coming after the server has answered.
	junk := append([]byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 1, 'y'}, bytes.Repeat([]byte{0xC0, 0}, 64<<10)...)
	c.sendBytes(junk)
	d := c.expect(packet.Disconnect).(*packet.DisconnectPacket)
	assert.Equal(t, packet.ProtocolError, d.ReasonCode)
	assert.NotEmpty(t, d.Properties.ReasonString)
	// Keep sending while reading: the server must drain, not reset.
	c.sendBytes(bytes.Repeat([]byte{0xC0, 0}, 16<<10))
	c.expectEOF()
}

func TestKeepAliveTimeoutV5(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	watcher, _ := connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "w", CleanStart: true})
	watcher.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "will/#"}}})
	watcher.expect(packet.Suback)

	cp := connect5("sleepy")
	cp.KeepAlive = 1
	cp.Will = &packet.Will{Topic: "will/sleepy", Payload: []byte("gone")}
	c, _ := connectRaw(t, s.addr, packet.V5, cp)
	// Silence for 1.5 s ends the connection (MQTT 5 §3.1.2.10) and fires the will.
	c.expectDisconnect(packet.KeepAliveTimeout)
	p := watcher.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "gone", string(p.Payload))
}

func TestPingAndNormalDisconnectSuppressesWill(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	watcher, _ := connectRaw(t, s.addr, packet.V5, connect5("w"))
	watcher.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "will/#"}, {Filter: "done"}}})
	watcher.expect(packet.Suback)

	cp := connect5("polite")
	cp.Will = &packet.Will{Topic: "will/polite", Payload: []byte("gone")}
	c, _ := connectRaw(t, s.addr, packet.V5, cp)
	c.send(&packet.PingreqPacket{})
	c.expect(packet.Pingresp)
	c.send(&packet.DisconnectPacket{})
	c.expectEOF()
	s.waitConnected(t, 1)
	// A marker published after the disconnect arrives first: no will came.
	m, _ := connectRaw(t, s.addr, packet.V5, connect5("m"))
	m.send(&packet.PublishPacket{Topic: "done"})
	p := watcher.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "done", p.Topic)
}

func TestDisconnectWithWillV5(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	watcher, _ := connectRaw(t, s.addr, packet.V5, connect5("w"))
	watcher.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "will/#"}}})
	watcher.expect(packet.Suback)
	cp := connect5("leaver")
	cp.Will = &packet.Will{Topic: "will/leaver", Payload: []byte("bye")}
	c, _ := connectRaw(t, s.addr, packet.V5, cp)
	c.send(&packet.DisconnectPacket{ReasonCode: packet.DisconnectWithWill})
	c.expectEOF()
	p := watcher.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "bye", string(p.Payload))
}

func TestTakeoverV5(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	old, _ := connectRaw(t, s.addr, packet.V5, connect5("dup"))
	cp := connect5("dup")
	cp.CleanStart = false
	_, _ = connectRaw(t, s.addr, packet.V5, cp)
	old.expectDisconnect(packet.SessionTakenOver)
}

func TestTakeoverV311(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	old, _ := connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "dup", CleanStart: true})
	_, _ = connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "dup", CleanStart: true})
	old.expectEOF()
}

func TestBrokerCloseDisconnectsAndStopsServe(t *testing.T) {
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- b.Serve(l, mqttcore.ListenerOptions{}) }()
	c, _ := connectRaw(t, l.Addr().String(), packet.V5, connect5("c"))
	require.NoError(t, b.Close(context.Background()))
	c.expectDisconnect(packet.ServerShuttingDown)
	assert.ErrorIs(t, <-served, mqttcore.ErrClosed)
}

func TestListenerCloseDisconnectsClients(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c, _ := connectRaw(t, s.addr, packet.V5, connect5("c"))
	require.NoError(t, s.l.Close())
	c.expectDisconnect(packet.ServerShuttingDown)
	require.NoError(t, <-s.served)
	s.served <- nil // for the cleanup
}

func TestServeBeforeStart(t *testing.T) {
	b, err := mqttcore.New(nil)
	require.NoError(t, err)
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	assert.ErrorIs(t, b.Serve(l, mqttcore.ListenerOptions{}), mqttcore.ErrNotStarted)
}

func TestListenerOptionsValidate(t *testing.T) {
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	defer b.Close(context.Background())
	for _, o := range []mqttcore.ListenerOptions{
		{MaxConnections: -1}, {MaxPacketSize: 10}, {TopicAliasMaximum: 70000}, {ConnectTimeout: -1},
	} {
		l, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
		require.NoError(t, err)
		assert.ErrorIs(t, b.Serve(l, o), mqttcore.ErrInvalidOptions, "%+v", o)
		l.Close()
	}
	_, err = mqttcore.Listen("udp", "127.0.0.1:0", nil)
	assert.ErrorIs(t, err, mqttcore.ErrInvalidOptions)
}

func TestMaxConnections(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{MaxConnections: 1})
	_, _ = connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "one", CleanStart: true})
	c := dialRaw(t, s.addr, packet.V311)
	c.expectClosed()
}

// TestAdmitRefusesAtAccept: a connection the Admit hook refuses is closed
// before its CONNECT is read; the next one it allows is served.
func TestAdmitRefusesAtAccept(t *testing.T) {
	var mu sync.Mutex
	var asked []net.Addr
	allow := false
	s := serveBroker(t, nil, mqttcore.ListenerOptions{Admit: func(remote net.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, remote)
		return allow
	}})
	c := dialRaw(t, s.addr, packet.V311)
	c.expectClosed()
	mu.Lock()
	allow = true
	mu.Unlock()
	_, _ = connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "two", CleanStart: true})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, asked, 2)
	assert.Equal(t, "127.0.0.1", asked[0].(*net.TCPAddr).IP.String())
}

func TestConnectTimeout(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{ConnectTimeout: 50 * 1e6})
	c := dialRaw(t, s.addr, packet.V311)
	c.expectEOF() // nothing sent: closed once ConnectTimeout passes
}

func TestQoSFlowsV5(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	sub, _ := connectRaw(t, s.addr, packet.V5, connect5("sub"))
	sub.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "q/+", QoS: 2}}})
	assert.Equal(t, []packet.ReasonCode{packet.GrantedQoS2}, sub.expect(packet.Suback).(*packet.SubackPacket).ReasonCodes)
	pub, _ := connectRaw(t, s.addr, packet.V5, connect5("pub"))

	// Inbound QoS 2: PUBLISH → PUBREC, a repeat is not published twice,
	// PUBREL → PUBCOMP.
	pub.send(&packet.PublishPacket{Topic: "q/2", QoS: 2, PacketID: 9, Payload: []byte("two")})
	assert.Equal(t, packet.Success, pub.expect(packet.Pubrec).(*packet.AckPacket).ReasonCode)
	pub.send(&packet.PublishPacket{Topic: "q/2", QoS: 2, PacketID: 9, DUP: true, Payload: []byte("two")})
	pub.expect(packet.Pubrec)
	pub.send(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: 9})
	assert.Equal(t, packet.Success, pub.expect(packet.Pubcomp).(*packet.AckPacket).ReasonCode)
	pub.send(&packet.AckPacket{PacketType: packet.Pubrel, PacketID: 9})
	assert.Equal(t, packet.PacketIdentifierNotFound, pub.expect(packet.Pubcomp).(*packet.AckPacket).ReasonCode)
	// Inbound QoS 1.
	pub.send(&packet.PublishPacket{Topic: "q/1", QoS: 1, PacketID: 10, Payload: []byte("one")})
	assert.Equal(t, uint16(10), pub.expect(packet.Puback).(*packet.AckPacket).PacketID)

	// Outbound QoS 2 and 1: PUBLISH, PUBREC → PUBREL, PUBCOMP; PUBACK.
	p := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "two", string(p.Payload))
	assert.Equal(t, byte(2), p.QoS)
	p1 := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "one", string(p1.Payload))
	assert.Equal(t, byte(1), p1.QoS)
	sub.send(&packet.AckPacket{PacketType: packet.Pubrec, PacketID: p.PacketID})
	rel := sub.expect(packet.Pubrel).(*packet.AckPacket)
	assert.Equal(t, p.PacketID, rel.PacketID)
	sub.send(&packet.AckPacket{PacketType: packet.Pubcomp, PacketID: p.PacketID})
	sub.send(&packet.AckPacket{PacketType: packet.Puback, PacketID: p1.PacketID})
	sub.send(&packet.PingreqPacket{})
	sub.expect(packet.Pingresp) // nothing else came: one copy each
}

// TestRedeliveryWithDUP: an unacknowledged QoS 1 message is sent again
// with DUP when a 3.1.1 persistent session resumes (MQTT 5 §4.4).
func TestRedeliveryWithDUP(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	cp := &packet.ConnectPacket{ClientID: "durable"}
	sub, ack := connectRaw(t, s.addr, packet.V311, cp)
	assert.False(t, ack.SessionPresent)
	sub.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "d", QoS: 1}}})
	sub.expect(packet.Suback)
	pub, _ := connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "pub", CleanStart: true})
	pub.send(&packet.PublishPacket{Topic: "d", QoS: 1, PacketID: 1, Payload: []byte("x")})
	pub.expect(packet.Puback)
	first := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.False(t, first.DUP)
	require.NoError(t, sub.nc.Close()) // gone without PUBACK
	s.waitConnected(t, 1)

	sub, ack = connectRaw(t, s.addr, packet.V311, cp)
	assert.True(t, ack.SessionPresent)
	again := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.True(t, again.DUP)
	assert.Equal(t, first.PacketID, again.PacketID)
	assert.Equal(t, "x", string(again.Payload))
}

func TestAuthorizerRefusals(t *testing.T) {
	s := serveBroker(t, &mqttcore.Options{Authorizer: refuser{}}, mqttcore.ListenerOptions{})
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		t.Run(v.String(), func(t *testing.T) {
			c, _ := connectRaw(t, s.addr, v, &packet.ConnectPacket{ClientID: "c" + v.String(), CleanStart: true})
			c.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "secret/#", QoS: 1}, {Filter: "open/#", QoS: 1}}})
			codes := c.expect(packet.Suback).(*packet.SubackPacket).ReasonCodes
			// 3.1.1 knows only 0x80 for a failure; the codec reads it back as
			// UnspecifiedError. MQTT 5 says why.
			want := packet.NotAuthorized
			if v == packet.V311 {
				want = packet.UnspecifiedError
			}
			assert.Equal(t, []packet.ReasonCode{want, packet.GrantedQoS1}, codes)
			c.send(&packet.PublishPacket{Topic: "readonly/x", QoS: 1, PacketID: 5})
			ack := c.expect(packet.Puback).(*packet.AckPacket)
			if v == packet.V5 {
				assert.Equal(t, packet.NotAuthorized, ack.ReasonCode)
			} else {
				assert.Equal(t, packet.Success, ack.ReasonCode)
			}
			// The refused message went nowhere.
			c.send(&packet.SubscribePacket{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "readonly/#"}}})
			c.expect(packet.Suback)
			c.send(&packet.PingreqPacket{})
			c.expect(packet.Pingresp)
		})
	}
}

func TestWildcardTopicQoS1AnsweredV5(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c, _ := connectRaw(t, s.addr, packet.V5, connect5("c"))
	c.send(&packet.PublishPacket{Topic: "a/+", QoS: 1, PacketID: 3})
	ack := c.expect(packet.Puback).(*packet.AckPacket)
	assert.Equal(t, packet.TopicNameInvalid, ack.ReasonCode)
	assert.NotEmpty(t, ack.Properties.ReasonString, "problem information is on by default")
}

func TestUnsubscribe(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c, _ := connectRaw(t, s.addr, packet.V5, connect5("c"))
	c.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a"}}})
	c.expect(packet.Suback)
	c.send(&packet.UnsubscribePacket{PacketID: 2, Filters: []string{"a", "b"}})
	ack := c.expect(packet.Unsuback).(*packet.UnsubackPacket)
	assert.Equal(t, []packet.ReasonCode{packet.Success, packet.NoSubscriptionExisted}, ack.ReasonCodes)
	s.waitSubscriptions(t, 0)
}

func TestTopicAliasesBothWays(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{TopicAliasMaximum: 4})
	scp := connect5("sub")
	scp.Properties.TopicAliasMaximum = ptr(uint16(1))
	sub, _ := connectRaw(t, s.addr, packet.V5, scp)
	sub.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "alias/#"}}})
	sub.expect(packet.Suback)
	pub, _ := connectRaw(t, s.addr, packet.V5, connect5("pub"))
	// Inbound: set alias 2, then use it alone.
	pub.send(&packet.PublishPacket{Topic: "alias/a", Payload: []byte("1"), Properties: packet.Properties{TopicAlias: ptr(uint16(2))}})
	pub.send(&packet.PublishPacket{Payload: []byte("2"), Properties: packet.Properties{TopicAlias: ptr(uint16(2))}})
	pub.send(&packet.PublishPacket{Topic: "alias/b", Payload: []byte("3")})
	pub.send(&packet.PublishPacket{Topic: "alias/a", Payload: []byte("4")})

	// Outbound: the client allows one alias; alias/a takes it.
	type got struct {
		topic   string
		alias   uint16
		payload string
	}
	var gots []got
	for range 4 {
		p := sub.expect(packet.Publish).(*packet.PublishPacket)
		g := got{topic: p.Topic, payload: string(p.Payload)}
		if p.Properties.TopicAlias != nil {
			g.alias = *p.Properties.TopicAlias
		}
		gots = append(gots, g)
	}
	assert.Equal(t, []got{
		{"alias/a", 1, "1"}, // alias assigned with the topic
		{"", 1, "2"},        // alias alone
		{"alias/b", 0, "3"}, // no alias left
		{"", 1, "4"},
	}, gots)
}

func TestClientMaximumPacketSize(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	cp := connect5("small")
	cp.Properties.MaximumPacketSize = ptr(uint32(64))
	sub, _ := connectRaw(t, s.addr, packet.V5, cp)
	sub.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "m", QoS: 1}}})
	sub.expect(packet.Suback)
	pub, _ := connectRaw(t, s.addr, packet.V5, connect5("pub"))
	pub.send(&packet.PublishPacket{Topic: "m", QoS: 1, PacketID: 1, Payload: make([]byte, 100)})
	pub.expect(packet.Puback)
	pub.send(&packet.PublishPacket{Topic: "m", QoS: 1, PacketID: 2, Payload: []byte("fits")})
	pub.expect(packet.Puback)
	p := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "fits", string(p.Payload), "the large message is dropped, not sent")
	sub.send(&packet.AckPacket{PacketType: packet.Puback, PacketID: p.PacketID})
	assert.Positive(t, s.b.Stats().MessagesDropped)
}

func TestClientReceiveMaximum(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	cp := connect5("slow")
	cp.Properties.ReceiveMaximum = ptr(uint16(2))
	sub, _ := connectRaw(t, s.addr, packet.V5, cp)
	sub.send(&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "r", QoS: 1}}})
	sub.expect(packet.Suback)
	pub, _ := connectRaw(t, s.addr, packet.V5, connect5("pub"))
	for i := range 4 {
		pub.send(&packet.PublishPacket{Topic: "r", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte('a' + i)}})
		pub.expect(packet.Puback)
	}
	a := sub.expect(packet.Publish).(*packet.PublishPacket)
	b := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "ab", string(a.Payload)+string(b.Payload))
	// The window is full: a ping is answered before any third message.
	sub.send(&packet.PingreqPacket{})
	sub.expect(packet.Pingresp)
	sub.send(&packet.AckPacket{PacketType: packet.Puback, PacketID: a.PacketID})
	c := sub.expect(packet.Publish).(*packet.PublishPacket)
	assert.Equal(t, "c", string(c.Payload))
}

func TestMessagePropertiesPassThrough(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	sub, _ := connectRaw(t, s.addr, packet.V5, connect5("sub"))
	sub.send(&packet.SubscribePacket{PacketID: 1, Properties: packet.Properties{SubscriptionIDs: []uint32{7}},
		Subscriptions: []packet.Subscription{{Filter: "p/#", QoS: 1}}})
	sub.expect(packet.Suback)
	sub.send(&packet.SubscribePacket{PacketID: 2, Properties: packet.Properties{SubscriptionIDs: []uint32{9}},
		Subscriptions: []packet.Subscription{{Filter: "p/+"}}})
	sub.expect(packet.Suback)
	pub, _ := connectRaw(t, s.addr, packet.V5, connect5("pub"))
	props := packet.Properties{
		PayloadFormat: ptr(byte(1)), MessageExpiry: ptr(uint32(100)), ContentType: "text/plain",
		ResponseTopic: "reply/here", CorrelationData: []byte{1, 2},
		User: []packet.UserProperty{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}},
	}
	pub.send(&packet.PublishPacket{Topic: "p/x", QoS: 1, PacketID: 1, Payload: []byte("hi"), Properties: props})
	pub.expect(packet.Puback)
	p := sub.expect(packet.Publish).(*packet.PublishPacket)
	got := p.Properties
	assert.Equal(t, byte(1), p.QoS, "one copy at the highest granted QoS")
	assert.ElementsMatch(t, []uint32{7, 9}, got.SubscriptionIDs)
	assert.Equal(t, props.PayloadFormat, got.PayloadFormat)
	require.NotNil(t, got.MessageExpiry)
	assert.LessOrEqual(t, *got.MessageExpiry, uint32(100))
	assert.Equal(t, props.ContentType, got.ContentType)
	assert.Equal(t, props.ResponseTopic, got.ResponseTopic)
	assert.Equal(t, props.CorrelationData, got.CorrelationData)
	assert.Equal(t, props.User, got.User)
}

func TestBytesCounted(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	c, _ := connectRaw(t, s.addr, packet.V311, &packet.ConnectPacket{ClientID: "c", CleanStart: true})
	c.send(&packet.PingreqPacket{})
	c.expect(packet.Pingresp)
	// CONNECT (15 bytes) + PINGREQ (2); CONNACK (4) + PINGRESP (2), counted
	// once the write has returned.
	assert.Equal(t, int64(17), s.b.Stats().BytesReceived)
	eventually(t, "6 bytes sent", func() bool { return s.b.Stats().BytesSent == 6 })
}

// refuser refuses the client "banned", subscriptions under secret/ and
// publishing under readonly/.
type refuser struct{}

func (refuser) AllowConnect(c mqttcore.ClientInfo, _ []byte) bool { return c.ClientID != "banned" }
func (refuser) AllowPublish(_ mqttcore.ClientInfo, topic string) bool {
	return !strings.HasPrefix(topic, "readonly/")
}
func (refuser) AllowSubscribe(_ mqttcore.ClientInfo, filter string) bool {
	return !strings.HasPrefix(filter, "secret/")
}
func (refuser) AllowRead(_ mqttcore.ClientInfo, topic string) bool {
	return !strings.HasPrefix(topic, "secret/")
}
