package mqttcore_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/extensions/topicaliases"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
)

// These tests use github.com/eclipse/paho.golang, an independent MQTT 5
// client, for the v5 features.

// pahoClient is a connected paho client whose received messages arrive
// on msgs.
type pahoClient struct {
	*paho.Client
	msgs chan *paho.Publish
	ack  *paho.Connack
}

func dialPaho(t *testing.T, addr string, cfg paho.ClientConfig, cp *paho.Connect) *pahoClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	pc := &pahoClient{msgs: make(chan *paho.Publish, 64)}
	cfg.Conn = nc
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			pc.msgs <- pr.Packet
			return true, nil
		},
	}
	pc.Client = paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if cp.ClientID == "" {
		cp.ClientID = cfg.ClientID
	}
	pc.ack, err = pc.Connect(ctx, cp)
	require.NoError(t, err)
	require.Equal(t, byte(0), pc.ack.ReasonCode)
	t.Cleanup(func() {
		_ = pc.Disconnect(&paho.Disconnect{})
		<-pc.Done()
	})
	return pc
}

func (pc *pahoClient) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case p := <-pc.msgs:
		return p
	case <-time.After(ioTimeout):
		t.Fatal("no message arrived")
		return nil
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestPahoPropertiesAliasesAndIdentifiers(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{MaxKeepAlive: 20, MaxPacketSize: 2048, TopicAliasMaximum: 3})
	sub := dialPaho(t, s.addr, paho.ClientConfig{ClientID: "sub"}, &paho.Connect{CleanStart: true, KeepAlive: 0})
	cp := sub.ack.Properties
	require.NotNil(t, cp)
	assert.Equal(t, paho.Uint16(20), cp.ServerKeepAlive, "keep-alive 0 is capped by MaxKeepAlive")
	assert.Equal(t, paho.Uint32(2048), cp.MaximumPacketSize)
	assert.Equal(t, paho.Uint16(3), cp.TopicAliasMaximum)

	id := 42
	_, err := sub.Subscribe(ctxT(t), &paho.Subscribe{
		Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &id},
		Subscriptions: []paho.SubscribeOptions{{Topic: "pf/#", QoS: 1}},
	})
	require.NoError(t, err)

	// The publisher aliases its topic after the first message.
	ta := topicaliases.NewTAHandler(3)
	pub := dialPaho(t, s.addr, paho.ClientConfig{ClientID: "pub", PublishHook: ta.PublishHook}, &paho.Connect{CleanStart: true, KeepAlive: 30})
	props := &paho.PublishProperties{
		ContentType: "application/json", ResponseTopic: "pf/reply", CorrelationData: []byte("corr"),
		MessageExpiry: paho.Uint32(60), PayloadFormat: paho.Byte(1),
	}
	props.User.Add("origin", "test").Add("origin", "again")
	for i := range 3 {
		p := &paho.Publish{Topic: "pf/alias", QoS: 1, Payload: fmt.Appendf(nil, `{"n":%d}`, i), Properties: props}
		if i == 0 {
			p.Properties = &paho.PublishProperties{}
			*p.Properties = *props
			p.Properties.TopicAlias = paho.Uint16(ta.SetAlias("pf/alias"))
		}
		_, err := pub.Publish(ctxT(t), p)
		require.NoError(t, err)
	}
	for i := range 3 {
		m := sub.next(t)
		assert.Equal(t, "pf/alias", m.Topic, "inbound alias resolved")
		assert.Equal(t, fmt.Sprintf(`{"n":%d}`, i), string(m.Payload))
		require.NotNil(t, m.Properties)
		assert.Equal(t, "application/json", m.Properties.ContentType)
		assert.Equal(t, "pf/reply", m.Properties.ResponseTopic)
		assert.Equal(t, []byte("corr"), m.Properties.CorrelationData)
		assert.Equal(t, paho.Byte(1), m.Properties.PayloadFormat)
		require.NotNil(t, m.Properties.MessageExpiry)
		assert.LessOrEqual(t, *m.Properties.MessageExpiry, uint32(60))
		assert.Equal(t, []string{"test", "again"}, m.Properties.User.GetAll("origin"))
		require.NotNil(t, m.Properties.SubscriptionIdentifier)
		assert.Equal(t, 42, *m.Properties.SubscriptionIdentifier)
	}
}

func TestPahoSharedSubscription(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{})
	var members []*pahoClient
	for i := range 2 {
		c := dialPaho(t, s.addr, paho.ClientConfig{ClientID: fmt.Sprintf("member%d", i)}, &paho.Connect{CleanStart: true})
		_, err := c.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$share/g/work/#", QoS: 1}}})
		require.NoError(t, err)
		members = append(members, c)
	}
	pub := dialPaho(t, s.addr, paho.ClientConfig{ClientID: "pub"}, &paho.Connect{CleanStart: true})
	const n = 20
	for i := range n {
		_, err := pub.Publish(ctxT(t), &paho.Publish{Topic: "work/item", QoS: 1, Payload: []byte{byte(i)}})
		require.NoError(t, err)
	}
	// Every message goes to exactly one member of the group.
	seen := make(map[byte]int)
	perMember := make([]int, len(members))
	for range n {
		select {
		case m := <-members[0].msgs:
			seen[m.Payload[0]]++
			perMember[0]++
		case m := <-members[1].msgs:
			seen[m.Payload[0]]++
			perMember[1]++
		case <-time.After(ioTimeout):
			t.Fatalf("only %d of %d messages arrived", len(seen), n)
		}
	}
	assert.Len(t, seen, n)
	for p, k := range seen {
		assert.Equal(t, 1, k, "message %d delivered %d times", p, k)
	}
	t.Logf("messages per member: %v", perMember)
}

func TestPahoReceiveMaximumAndPacketSize(t *testing.T) {
	s := serveBroker(t, nil, mqttcore.ListenerOptions{MaxPacketSize: 512})
	sub := dialPaho(t, s.addr, paho.ClientConfig{ClientID: "sub"}, &paho.Connect{CleanStart: true, Properties: &paho.ConnectProperties{
		ReceiveMaximum: paho.Uint16(1), MaximumPacketSize: paho.Uint32(128),
	}})
	_, err := sub.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "rm", QoS: 2}}})
	require.NoError(t, err)
	// A packet above the broker's Maximum Packet Size ends the connection
	// with DISCONNECT 0x95.
	disc := make(chan byte, 1)
	big := dialPaho(t, s.addr, paho.ClientConfig{ClientID: "big", OnServerDisconnect: func(d *paho.Disconnect) { disc <- d.ReasonCode }},
		&paho.Connect{CleanStart: true})
	_, err = big.Publish(ctxT(t), &paho.Publish{Topic: "rm", Payload: make([]byte, 600)})
	require.NoError(t, err)
	select {
	case rc := <-disc:
		assert.Equal(t, byte(0x95), rc)
	case <-time.After(ioTimeout):
		t.Fatal("no DISCONNECT")
	}
	pub := dialPaho(t, s.addr, paho.ClientConfig{ClientID: "pub"}, &paho.Connect{CleanStart: true})
	// 200 bytes pass the broker but not the subscriber's limit: dropped.
	_, err = pub.Publish(ctxT(t), &paho.Publish{Topic: "rm", QoS: 2, Payload: make([]byte, 200)})
	require.NoError(t, err)
	for i := range 3 {
		_, err := pub.Publish(ctxT(t), &paho.Publish{Topic: "rm", QoS: 2, Payload: []byte{'0' + byte(i)}})
		require.NoError(t, err)
	}
	// One at a time (Receive Maximum 1), in order, the large one skipped.
	for i := range 3 {
		m := sub.next(t)
		assert.Equal(t, []byte{'0' + byte(i)}, m.Payload)
	}
}
