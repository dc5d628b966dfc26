package mqttcore_test

import (
	"context"
	"fmt"

	"github.com/snwgw/snwgw/mqttcore"
)

// wakeup is a Consumer that posts a wake-up to the connection's owner; the
// owner then pulls deliveries from its own goroutine.
type wakeup chan struct{}

func (w wakeup) Notify() {
	select {
	case w <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (w wakeup) Disconnected(reason mqttcore.ReasonCode) {
	fmt.Println("disconnected:", reason.String())
}

func Example() {
	b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	// A sensor's session: persistent, so QoS 1 messages wait while it sleeps.
	wake := make(wakeup, 1)
	sensor, present, err := b.Connect(mqttcore.ConnectOptions{
		ClientID:       "sensor-1",
		SessionExpiry:  3600,
		ReceiveMaximum: 1, // one unacknowledged message at a time
		Consumer:       wake,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("session present:", present)
	codes, _ := sensor.Subscribe(mqttcore.Subscription{Filter: "cmd/sensor-1/#", QoS: 1, ID: 7})
	fmt.Println("granted:", codes[0].String())

	// The application publishes two commands.
	app, _, _ := b.Connect(mqttcore.ConnectOptions{ClientID: "app", Consumer: make(wakeup, 1)})
	for _, cmd := range []string{"on", "off"} {
		if err := app.Publish(mqttcore.Message{Topic: "cmd/sensor-1/led", Payload: []byte(cmd), QoS: 1}); err != nil {
			panic(err)
		}
	}
	if err := app.Disconnect(mqttcore.DisconnectOptions{}); err != nil {
		panic(err)
	}

	// The sensor's owner wakes up and pulls; the window holds one message
	// until it is acknowledged.
	<-wake
	for {
		d, ok := sensor.Next()
		if !ok {
			break
		}
		fmt.Printf("%s %q qos=%d ids=%v\n", d.Topic, d.Payload, d.QoS, d.SubscriptionIDs)
		_, more := sensor.Next()
		fmt.Println("more before ack:", more)
		if err := sensor.Ack(d.PacketID); err != nil {
			panic(err)
		}
	}
	// Output:
	// session present: false
	// granted: granted QoS 1
	// cmd/sensor-1/led "on" qos=1 ids=[7]
	// more before ack: false
	// cmd/sensor-1/led "off" qos=1 ids=[7]
	// more before ack: false
	// disconnected: server shutting down
}
