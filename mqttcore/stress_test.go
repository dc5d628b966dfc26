package mqttcore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentUse drives publishers, pulling consumers, reconnects and
// takeovers at once, for the race detector and to show that nothing
// deadlocks: every goroutine must finish and the broker must close.
func TestConcurrentUse(t *testing.T) {
	b, err := New(&Options{SysInterval: -1, MaxQueued: 50, ReceiveMaximum: 8})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	const rounds = 200
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	// Subscribers reconnect to persistent sessions and pull until drained,
	// acknowledging everything.
	for i := range 4 {
		id := fmt.Sprint("sub", i%2) // two share one client id: takeovers
		run(func() error {
			for r := range rounds {
				c := newConsumer()
				s, _, err := b.Connect(ConnectOptions{ClientID: id, SessionExpiry: 60, Consumer: c,
					Will: &Will{Message: Message{Topic: "will/" + id, Payload: []byte("x")}, Delay: uint32(r % 2)}})
				if err != nil {
					return err
				}
				if _, err := s.Subscribe(Subscription{Filter: "load/#", QoS: byte(r % 3), ID: 1},
					Subscription{Filter: "$share/g/load/+", QoS: 1}, Subscription{Filter: "will/#"}); err != nil && !errors.Is(err, ErrSessionClosed) {
					return err
				}
				for {
					d, ok := s.Next()
					if !ok {
						break
					}
					var err error
					switch {
					case d.Release:
						err = s.Complete(d.PacketID)
					case d.QoS == 1:
						err = s.Ack(d.PacketID)
					case d.QoS == 2:
						if err = s.Received(d.PacketID); err == nil {
							err = s.Complete(d.PacketID)
						}
					}
					if err != nil && !errors.Is(err, ErrSessionClosed) {
						return err
					}
				}
				if r%5 == 0 {
					_, _ = s.Unsubscribe("load/#")
				}
				if err := s.Disconnect(DisconnectOptions{SendWill: r%3 == 0}); err != nil && !errors.Is(err, ErrSessionClosed) {
					return err
				}
			}
			return nil
		})
	}
	for i := range 3 {
		run(func() error {
			s, _, err := b.Connect(ConnectOptions{ClientID: fmt.Sprint("pub", i), Consumer: newConsumer()})
			if err != nil {
				return err
			}
			for r := range rounds * 5 {
				m := Message{Topic: fmt.Sprint("load/", r%7), Payload: []byte("p"), QoS: byte(r % 3), Retain: r%11 == 0}
				if m.QoS == 2 {
					err = s.PublishQoS2(uint16(r%100+1), m)
					if err == nil {
						err = s.Release(uint16(r%100 + 1))
					}
				} else {
					err = s.Publish(m)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	st := b.Stats()
	assert.EqualValues(t, 3, st.ClientsConnected, "only the publishers are still connected")
	require.NoError(t, b.Close(context.Background()))
	assert.EqualValues(t, 0, b.Stats().ClientsConnected)
}
