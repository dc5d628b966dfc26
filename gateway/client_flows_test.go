package gateway

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// TestClientLibraryFlowsAgainstGateway runs the simulator's client library
// against the real gateway over loopback UDP for the flows the other
// end-to-end tests do not: gateway discovery, explicit REGISTER, PINGREQ,
// Will updates used on a loss, UNSUBSCRIBE, and clients behind a forwarder.
func TestClientLibraryFlowsAgainstGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, broker.Start(ctx))
	defer broker.Close(context.Background())
	g, err := New(broker, &Options{GatewayID: 4})
	require.NoError(t, err)
	defer g.Close(context.Background())
	gwConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, g.Serve(Link{Name: "udp", Conn: gwConn}))
	gw := gwConn.LocalAddr()
	observer := &observer{t: t, ready: make(chan struct{}, 1)}
	obs, _, err := broker.Connect(mqttcore.ConnectOptions{ClientID: "observer", CleanStart: true, Consumer: observer})
	require.NoError(t, err)
	_, err = obs.Subscribe(mqttcore.Subscription{Filter: "#", QoS: 1})
	require.NoError(t, err)
	observer.s = obs

	udp := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		return c
	}

	// SEARCHGW → GWINFO.
	search := udp()
	info, err := snclient.SearchGateway(ctx, search, gw, 1)
	require.NoError(t, err)
	assert.Equal(t, uint8(4), info.GatewayID)
	search.Close()

	// REGISTER, PINGREQ, Will updates, then loss: the updated Will fires.
	c, err := snclient.Dial(udp(), gw, snclient.Options{ClientID: "flows", KeepAlive: time.Second, CleanSession: true})
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	id, err := c.Register(ctx, "flows/t")
	require.NoError(t, err)
	assert.NotZero(t, id)
	require.NoError(t, c.Ping(ctx))
	require.NoError(t, c.UpdateWillTopic(ctx, "flows/will", mqttsn.QoS1, false))
	require.NoError(t, c.UpdateWillMessage(ctx, []byte("lost")))

	// SUBSCRIBE then UNSUBSCRIBE: nothing arrives afterwards.
	got := make(chan snclient.Message, 1)
	sub, err := snclient.Dial(udp(), gw, snclient.Options{ClientID: "unsub", CleanSession: true, KeepAlive: time.Minute,
		Handler: func(m snclient.Message) { got <- m }})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.Connect(ctx))
	_, _, err = sub.Subscribe(ctx, snclient.TopicName("flows/cmd"), mqttsn.QoS1)
	require.NoError(t, err)
	_, _, err = sub.Subscribe(ctx, snclient.TopicName("flows/marker"), mqttsn.QoS1)
	require.NoError(t, err)
	require.NoError(t, sub.Unsubscribe(ctx, snclient.TopicName("flows/cmd")))
	require.NoError(t, obs.Publish(mqttcore.Message{Topic: "flows/cmd", Payload: []byte("x"), QoS: 1}))
	require.Equal(t, "flows/cmd", observer.next().Topic) // the broker routed it
	// A session's deliveries arrive in order, so the message published
	// after it on a still-subscribed topic is the first one the client may
	// see: had the gateway delivered flows/cmd, it would come first.
	require.NoError(t, obs.Publish(mqttcore.Message{Topic: "flows/marker", Payload: []byte("m"), QoS: 1}))
	require.Equal(t, "flows/marker", observer.next().Topic)
	select {
	case m := <-got:
		assert.Equal(t, "flows/marker", m.Topic.Name, "delivered after UNSUBSCRIBE")
	case <-ctx.Done():
		t.Fatal("the marker message never arrived")
	}

	// Two nodes behind one forwarder socket are two sessions.
	fwd := udp()
	n1, err := snclient.Dial(fwd, gw, snclient.Options{ClientID: "node-a", CleanSession: true, KeepAlive: time.Minute,
		Forwarder: &snclient.Forwarder{NodeID: []byte{0, 1}}})
	require.NoError(t, err)
	require.NoError(t, n1.Connect(ctx))
	require.NoError(t, n1.Publish(ctx, snclient.Message{Topic: snclient.TopicName("flows/fwd"), Payload: []byte("a"), QoS: mqttsn.QoS1}))
	d := observer.next()
	assert.Equal(t, "flows/fwd", d.Topic)
	assert.Equal(t, []byte("a"), d.Payload)
	require.NoError(t, n1.Disconnect(ctx))
	require.NoError(t, n1.Close())

	// The first client stops answering: its updated Will is published.
	require.NoError(t, c.Close())
	d = observer.next()
	assert.Equal(t, "flows/will", d.Topic)
	assert.Equal(t, []byte("lost"), d.Payload)
}
