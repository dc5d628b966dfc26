package mqttcore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testConsumer records the engine's callbacks on buffered channels.
type testConsumer struct {
	notify chan struct{}
	disc   chan ReasonCode
}

func newConsumer() *testConsumer {
	return &testConsumer{notify: make(chan struct{}, 1), disc: make(chan ReasonCode, 4)}
}

func (c *testConsumer) Notify() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *testConsumer) Disconnected(r ReasonCode) {
	select {
	case c.disc <- r:
	default:
	}
}

// notified reports whether Notify was called since the last check.
func (c *testConsumer) notified() bool {
	select {
	case <-c.notify:
		return true
	default:
		return false
	}
}

// startBroker returns a started broker that is closed when the test ends.
// $SYS publishing is off unless opts ask for it, so that counts of retained
// messages and deliveries are the test's own.
func startBroker(t *testing.T, opts *Options) *Broker {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.SysInterval == 0 {
		opts.SysInterval = -1
	}
	b, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { assert.NoError(t, b.Close(context.Background())) })
	return b
}

// client is an in-process connection under test.
type client struct {
	*Session
	c *testConsumer
}

func connect(t *testing.T, b *Broker, opts ConnectOptions) (*client, bool) {
	t.Helper()
	c := newConsumer()
	opts.Consumer = c
	s, present, err := b.Connect(opts)
	require.NoError(t, err)
	return &client{s, c}, present
}

// drain returns every delivery Next has now.
func (c *client) drain() []Delivery {
	var out []Delivery
	for {
		d, ok := c.Next()
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

func (c *client) subscribe(t *testing.T, subs ...Subscription) {
	t.Helper()
	codes, err := c.Subscribe(subs...)
	require.NoError(t, err)
	for i, code := range codes {
		require.Equal(t, ReasonCode(subs[i].QoS), code, "subscription %q", subs[i].Filter)
	}
}

func (c *client) publish(t *testing.T, topic, payload string, qos byte, retain bool) {
	t.Helper()
	require.NoError(t, c.Publish(Message{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}))
}

func payloads(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Payload)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
