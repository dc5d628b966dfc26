package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/auth"
	"github.com/snwgw/snwgw/mqttcore"
)

// These tests put the Authorizer into the broker core and drive it through
// the in-process API, where what a session holds can be read directly.

// nopConsumer is a consumer that drains on demand (Session.Next) rather
// than on Notify.
type nopConsumer struct{}

func (nopConsumer) Notify()                          {}
func (nopConsumer) Disconnected(mqttcore.ReasonCode) {}

func inProcessBroker(t *testing.T, opts auth.Options, store mqttcore.Store) *mqttcore.Broker {
	t.Helper()
	b, err := mqttcore.New(&mqttcore.Options{Authorizer: auth.NewAuthorizer(opts), Store: store, SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { assert.NoError(t, b.Close(context.Background())) })
	return b
}

// aclOptions is an ACL without passwords: the tests name clients by
// "client" sections, so no password hash slows them down.
func aclOptions(t *testing.T, text string) auth.Options {
	t.Helper()
	acl, err := auth.ParseACL(strings.NewReader(text))
	require.NoError(t, err)
	return auth.Options{ACL: acl}
}

func login(t *testing.T, b *mqttcore.Broker, opts mqttcore.ConnectOptions) (*mqttcore.Session, bool) {
	t.Helper()
	opts.Consumer = nopConsumer{}
	s, present, err := b.Connect(opts)
	require.NoError(t, err)
	return s, present
}

// drain returns the topics delivered, acknowledging QoS 1 at once.
func drain(t *testing.T, s *mqttcore.Session) []string {
	t.Helper()
	var topics []string
	for {
		d, ok := s.Next()
		if !ok {
			return topics
		}
		topics = append(topics, d.Topic)
		if d.QoS == 1 {
			require.NoError(t, s.Ack(d.PacketID))
		}
	}
}

// A wildcard subscription overlapping a deny rule is granted, as in
// Mosquitto, and the denied topics are held back message by message: a
// denied QoS 1 message takes no place in the in-flight window or the
// queue of an offline session, and retained ones are held back too.
func TestACLReadCheckedAtDelivery(t *testing.T) {
	store := mqttcore.NewMemoryStore()
	opts := aclOptions(t, "client bob\ntopic read #\ntopic deny secret/#\nclient alice\ntopic write #\n")
	b := inProcessBroker(t, opts, store)
	alice, _ := login(t, b, mqttcore.ConnectOptions{ClientID: "alice"})
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "secret/plans", Payload: []byte("r"), Retain: true}))
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "open/news", Payload: []byte("r"), Retain: true}))

	bob, _ := login(t, b, mqttcore.ConnectOptions{ClientID: "bob", SessionExpiry: 3600, ReceiveMaximum: 1})
	codes, err := bob.Subscribe(mqttcore.Subscription{Filter: "#", QoS: 1}, mqttcore.Subscription{Filter: "secret/plans", QoS: 1})
	require.NoError(t, err)
	assert.Equal(t, []mqttcore.ReasonCode{mqttcore.ReasonGrantedQoS1, mqttcore.ReasonNotAuthorized}, codes,
		"# may deliver something; secret/plans never could")
	assert.Equal(t, []string{"open/news"}, drain(t, bob), "retained messages are judged too")

	// With a window of one, a denied message left in flight would block
	// the one after it.
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "secret/x", Payload: []byte("1"), QoS: 1}))
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "open/y", Payload: []byte("2"), QoS: 1}))
	assert.Equal(t, []string{"open/y"}, drain(t, bob))

	// Offline, the denied message is not queued, in memory or in the
	// store: neither the resumed session nor the one a restarted broker
	// restores has it.
	require.NoError(t, bob.Disconnect(mqttcore.DisconnectOptions{}))
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "secret/z", Payload: []byte("3"), QoS: 1}))
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "open/z", Payload: []byte("4"), QoS: 1}))
	bob, present := login(t, b, mqttcore.ConnectOptions{ClientID: "bob", SessionExpiry: 3600})
	require.True(t, present)
	assert.Equal(t, []string{"open/z"}, drain(t, bob))

	require.NoError(t, bob.Disconnect(mqttcore.DisconnectOptions{}))
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "secret/w", Payload: []byte("5"), QoS: 1}))
	require.NoError(t, alice.Publish(mqttcore.Message{Topic: "open/w", Payload: []byte("6"), QoS: 1}))
	require.NoError(t, b.Close(context.Background()))
	b = inProcessBroker(t, opts, store)
	bob, present = login(t, b, mqttcore.ConnectOptions{ClientID: "bob", SessionExpiry: 3600})
	require.True(t, present)
	assert.Equal(t, []string{"open/w"}, drain(t, bob))
}
