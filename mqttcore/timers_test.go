package mqttcore

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait advances the bubble's fake clock by d and lets every timer that
// fell due run to completion.
func wait(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestSessionExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBroker(t, nil)
		c, _ := connect(t, b, ConnectOptions{ClientID: "c", SessionExpiry: 30})
		c.subscribe(t, Subscription{Filter: "x", QoS: 1})
		require.NoError(t, c.Disconnect(DisconnectOptions{}))

		wait(29 * time.Second)
		assert.EqualValues(t, 1, b.Stats().Sessions, "kept until the interval has passed")
		c, present := connect(t, b, ConnectOptions{ClientID: "c", SessionExpiry: 30})
		assert.True(t, present)
		require.NoError(t, c.Disconnect(DisconnectOptions{}))

		wait(29 * time.Second)
		assert.EqualValues(t, 1, b.Stats().Sessions, "a reconnect restarted the interval")
		wait(time.Second)
		assert.EqualValues(t, 0, b.Stats().Sessions, "expired")
		assert.EqualValues(t, 0, b.Stats().Subscriptions, "with its subscriptions")
		_, present = connect(t, b, ConnectOptions{ClientID: "c", SessionExpiry: 30})
		assert.False(t, present)
	})
}

func TestWillDelay(t *testing.T) {
	will := func(delay uint32) *Will {
		return &Will{Message: Message{Topic: "will/dev", Payload: []byte("gone")}, Delay: delay}
	}
	tests := []struct {
		name   string
		expiry uint32
		delay  uint32
		fires  time.Duration // after the connection is lost
	}{
		{"delay shorter than expiry", 100, 5, 5 * time.Second},
		{"expiry shorter than delay", 5, 100, 5 * time.Second},
		{"expiry 0 ends the session at once", 0, 100, 0},
		{"no delay", 100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := startBroker(t, nil)
				watch, _ := connect(t, b, ConnectOptions{ClientID: "watch"})
				watch.subscribe(t, Subscription{Filter: "will/#"})
				dev, _ := connect(t, b, ConnectOptions{ClientID: "dev", SessionExpiry: tt.expiry, Will: will(tt.delay)})
				require.NoError(t, dev.Disconnect(DisconnectOptions{SendWill: true}))
				if tt.fires > 0 {
					wait(tt.fires - time.Second)
					assert.Empty(t, watch.drain(), "not before %v", tt.fires)
					wait(time.Second)
				}
				assert.Equal(t, []string{"gone"}, payloads(watch.drain()))
				wait(200 * time.Second)
				assert.Empty(t, watch.drain(), "exactly once")
			})
		})
	}
}

func TestWillCancelledByReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBroker(t, nil)
		watch, _ := connect(t, b, ConnectOptions{ClientID: "watch"})
		watch.subscribe(t, Subscription{Filter: "will/#"})
		w := &Will{Message: Message{Topic: "will/dev", Payload: []byte("gone")}, Delay: 10}
		dev, _ := connect(t, b, ConnectOptions{ClientID: "dev", SessionExpiry: 60, Will: w})
		require.NoError(t, dev.Disconnect(DisconnectOptions{SendWill: true}))
		wait(5 * time.Second)
		dev, present := connect(t, b, ConnectOptions{ClientID: "dev", SessionExpiry: 60})
		assert.True(t, present)
		wait(time.Minute)
		assert.Empty(t, watch.drain(), "reconnecting within the delay cancels the will")
		require.NoError(t, dev.Disconnect(DisconnectOptions{}))
	})
}

func TestMessageExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBroker(t, nil)
		sub, _ := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
		sub.subscribe(t, Subscription{Filter: "m/#", QoS: 1})
		require.NoError(t, sub.Disconnect(DisconnectOptions{}))
		pub, _ := connect(t, b, ConnectOptions{ClientID: "pub"})
		expiring := func(topic string, secs uint32, retain bool) {
			require.NoError(t, pub.Publish(Message{Topic: topic, Payload: []byte(topic), QoS: 1, Retain: retain,
				Properties: MessageProperties{MessageExpiry: ptr(secs)}}))
		}
		expiring("m/short", 5, false)
		expiring("m/long", 20, false)
		expiring("m/retained", 10, true)
		require.NoError(t, pub.Publish(Message{Topic: "m/forever", Payload: []byte("m/forever"), QoS: 1}))

		wait(6 * time.Second)
		sub, present := connect(t, b, ConnectOptions{ClientID: "sub", SessionExpiry: 3600})
		require.True(t, present)
		ds := sub.drain()
		require.Equal(t, []string{"m/long", "m/retained", "m/forever"}, payloads(ds), "the expired message is dropped")
		assert.EqualValues(t, 1, b.Stats().MessagesExpired)
		require.NotNil(t, ds[0].Properties.MessageExpiry)
		assert.EqualValues(t, 14, *ds[0].Properties.MessageExpiry, "the interval is reduced by the time spent queued")
		assert.Nil(t, ds[2].Properties.MessageExpiry)

		// Retained: delivered with the remaining interval, then gone.
		late, _ := connect(t, b, ConnectOptions{ClientID: "late"})
		late.subscribe(t, Subscription{Filter: "m/retained"})
		ds = late.drain()
		require.Len(t, ds, 1)
		assert.EqualValues(t, 4, *ds[0].Properties.MessageExpiry)
		wait(4 * time.Second)
		late.subscribe(t, Subscription{Filter: "m/retained"})
		assert.Empty(t, late.drain(), "an expired retained message is not sent")
	})
}

func TestSysTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBroker(t, &Options{SysInterval: 10 * time.Second, Version: "snwgw test"})
		synctest.Wait() // the first beat is published at start
		all, _ := connect(t, b, ConnectOptions{ClientID: "all"})
		all.subscribe(t, Subscription{Filter: "#"})
		sys, _ := connect(t, b, ConnectOptions{ClientID: "sys"})
		sys.subscribe(t, Subscription{Filter: "$SYS/broker/#"})
		values := func(ds []Delivery) map[string]string {
			m := map[string]string{}
			for _, d := range ds {
				m[d.Topic] = string(d.Payload)
			}
			return m
		}
		got := values(sys.drain()) // the retained values of the first beat
		assert.Equal(t, "snwgw test", got["$SYS/broker/version"])
		assert.Equal(t, "0 seconds", got["$SYS/broker/uptime"])

		b.CountBytes(100, 250)
		all.publish(t, "a", "x", 0, false)
		all.drain()
		wait(10 * time.Second)
		got = values(sys.drain())
		assert.Equal(t, "10 seconds", got["$SYS/broker/uptime"])
		assert.Equal(t, "2", got["$SYS/broker/clients/connected"])
		assert.Equal(t, "1", got["$SYS/broker/messages/received"])
		assert.Equal(t, "100", got["$SYS/broker/bytes/received"])
		assert.Equal(t, "250", got["$SYS/broker/bytes/sent"])
		assert.Equal(t, "2", got["$SYS/broker/subscriptions/count"])
		assert.Contains(t, got, "$SYS/broker/messages/sent")
		assert.Contains(t, got, "$SYS/broker/retained messages/count")
		for _, d := range all.drain() {
			assert.False(t, strings.HasPrefix(d.Topic, "$"), "'#' does not match $SYS")
		}
		require.NoError(t, b.Close(context.Background()))
	})
}
