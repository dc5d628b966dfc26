package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// Example publishes a reading and receives a command through a gateway.
// The gateway here is a tiny stand-in that answers on a loopback socket,
// so the example runs anywhere; point the client at a real gateway's
// address (UDP port 1883) instead.
func Example() {
	gw := startExampleGateway()
	defer gw.Close()

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	received := make(chan client.Message, 1)
	c, err := client.Dial(conn, gw.LocalAddr(), client.Options{
		ClientID:     "example-sensor",
		KeepAlive:    time.Minute,
		CleanSession: true,
		Will:         &client.Will{Topic: "sensors/example/status", Payload: []byte("offline"), Retain: true},
		Handler:      func(m client.Message) { received <- m },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	qos, _, err := c.Subscribe(ctx, client.TopicName("cmd/example"), mqttsn.QoS1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("subscribed with", qos)

	err = c.Publish(ctx, client.Message{
		Topic:   client.TopicName("sensors/example/temp"),
		Payload: []byte("21.5"),
		QoS:     mqttsn.QoS1,
	})
	if err != nil {
		log.Fatal(err)
	}
	m := <-received
	fmt.Printf("%s: %s\n", m.Topic, m.Payload)

	if err := c.Disconnect(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.State())
	// Output:
	// subscribed with QoS 1
	// cmd/example: led on
	// disconnected
}

// startExampleGateway answers one client the way a gateway would, just
// enough for Example: it accepts the connection and the Will, registers
// and acknowledges topics, and publishes a command to any subscriber.
func startExampleGateway() net.PacketConn {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		nextID := uint16(0)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			p, err := mqttsn.Parse(buf[:n])
			if err != nil {
				continue
			}
			var replies []mqttsn.Packet
			switch p := p.(type) {
			case *mqttsn.Connect:
				replies = append(replies, &mqttsn.WillTopicReq{})
			case *mqttsn.WillTopic:
				replies = append(replies, &mqttsn.WillMsgReq{})
			case *mqttsn.WillMsg:
				replies = append(replies, &mqttsn.ConnAck{})
			case *mqttsn.Register:
				nextID++
				replies = append(replies, &mqttsn.RegAck{TopicID: nextID, MsgID: p.MsgID})
			case *mqttsn.Subscribe:
				nextID++
				replies = append(replies,
					&mqttsn.SubAck{QoS: p.QoS, TopicID: nextID, MsgID: p.MsgID},
					&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: nextID, MsgID: 1, Data: []byte("led on")})
			case *mqttsn.Publish:
				replies = append(replies, &mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
			case *mqttsn.Disconnect:
				replies = append(replies, &mqttsn.Disconnect{})
			}
			for _, r := range replies {
				b, _ := mqttsn.Append(nil, r)
				conn.WriteTo(b, from)
			}
		}
	}()
	return conn
}

// ExampleSearchGateway finds a gateway by broadcasting SEARCHGW on the
// local network, then connects to it over the same socket.
func ExampleSearchGateway() {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gw, err := client.SearchGateway(ctx, conn, &net.UDPAddr{IP: net.IPv4bcast, Port: 1883}, 1)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Dial(conn, gw.Addr, client.Options{ClientID: "finder"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
}

// ExampleClient_Wake runs the sleep cycle of a battery-powered sensor:
// publish, sleep, and wake now and then to collect the commands the
// gateway buffered meanwhile (they reach the Handler before Wake returns).
func ExampleClient_Wake() {
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		log.Fatal(err)
	}
	gw := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1883}
	c, err := client.Dial(conn, gw, client.Options{
		ClientID:  "sensor-7",
		KeepAlive: 5 * time.Minute,
		Handler:   func(m client.Message) { fmt.Printf("command %s on %s\n", m.Payload, m.Topic) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.Subscribe(ctx, client.TopicName("cmd/sensor-7"), mqttsn.QoS1); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		if err := c.Publish(ctx, client.Message{Topic: client.Short("t7"), Payload: []byte("21.5")}); err != nil {
			log.Fatal(err)
		}
		if err := c.Sleep(ctx, 10*time.Minute); err != nil {
			log.Fatal(err)
		}
		time.Sleep(10 * time.Minute) // the radio is off
		if err := c.Wake(ctx); err != nil {
			log.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil { // active again to publish
			log.Fatal(err)
		}
	}
	if err := c.Disconnect(ctx); err != nil {
		log.Fatal(err)
	}
}
