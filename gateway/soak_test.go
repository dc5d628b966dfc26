package gateway

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// TestSoakThousandClients runs 1,000 MQTT-SN clients over real loopback
// UDP against the gateway and the real broker. Each subscribes to its own
// topic and publishes to its neighbour's, alternating QoS 1 and QoS 2,
// all at once. Every message must arrive; QoS 2 exactly once.
func TestSoakThousandClients(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 clients")
	}
	const (
		clients  = 1000
		messages = 6
	)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, broker.Start(ctx))
	defer broker.Close(context.Background())
	g, err := New(broker, &Options{RetryInterval: 2 * time.Second, RetryCount: 10})
	require.NoError(t, err)
	defer g.Close(context.Background())
	gwConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, gwConn.SetReadBuffer(8<<20))
	require.NoError(t, g.Serve(Link{Name: "udp", Conn: gwConn}))

	type inbox struct {
		mu   sync.Mutex
		seen map[string]int
	}
	boxes := make([]*inbox, clients)
	all := make([]*snclient.Client, clients)
	var received sync.WaitGroup
	received.Add(clients * messages)
	for i := range clients {
		box := &inbox{seen: map[string]int{}}
		boxes[i] = box
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		c, err := snclient.Dial(conn, gwConn.LocalAddr(), snclient.Options{
			ClientID:      fmt.Sprintf("soak-%04d", i),
			KeepAlive:     5 * time.Minute,
			CleanSession:  true,
			RetryInterval: 2 * time.Second,
			RetryCount:    10,
			MaxPacketSize: 1500,
			Handler: func(m snclient.Message) {
				box.mu.Lock()
				box.seen[string(m.Payload)]++
				first := box.seen[string(m.Payload)] == 1
				box.mu.Unlock()
				if first {
					received.Done()
				}
			},
		})
		require.NoError(t, err)
		defer c.Close()
		all[i] = c
	}

	// Connect and subscribe everyone first, so no message can be published
	// to a topic nobody has subscribed to yet.
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Connect(ctx); err != nil {
				errs <- fmt.Errorf("client %d connect: %w", i, err)
				return
			}
			if _, _, err := c.Subscribe(ctx, snclient.TopicName(fmt.Sprintf("soak/%d", i)), mqttsn.QoS2); err != nil {
				errs <- fmt.Errorf("client %d subscribe: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	errs = make(chan error, clients)
	for i, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := snclient.TopicName(fmt.Sprintf("soak/%d", (i+1)%clients))
			for m := range messages {
				qos := mqttsn.QoS1
				if m%2 == 1 {
					qos = mqttsn.QoS2
				}
				payload := fmt.Sprintf("%d-%d", i, m)
				if err := c.Publish(ctx, snclient.Message{Topic: to, Payload: []byte(payload), QoS: qos}); err != nil {
					errs <- fmt.Errorf("client %d publish %d: %w", i, m, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	done := make(chan struct{})
	go func() { received.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		missing := 0
		for _, b := range boxes {
			b.mu.Lock()
			missing += messages - len(b.seen)
			b.mu.Unlock()
		}
		t.Fatalf("%d of %d messages never arrived", missing, clients*messages)
	}
	// QoS 2 messages (odd m) arrived exactly once.
	for i, b := range boxes {
		from := (i - 1 + clients) % clients
		b.mu.Lock()
		for m := 1; m < messages; m += 2 {
			assert.Equal(t, 1, b.seen[fmt.Sprintf("%d-%d", from, m)], "client %d, QoS 2 message %d-%d", i, from, m)
		}
		b.mu.Unlock()
	}
	st := g.Stats()
	assert.Equal(t, int64(clients), st.Sessions)
	assert.Zero(t, st.Lost)
	t.Logf("gateway: %d datagrams in, %d out, %d retransmissions", st.Received, st.Sent, st.Retransmissions)
}
