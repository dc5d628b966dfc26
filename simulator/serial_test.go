package simulator

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/transport"
)

// serialCable joins two pseudo-terminals back to back, as a null-modem
// cable joins two serial ports: what is written to one slave is read from
// the other. It returns the two slave paths.
func serialCable(t *testing.T) (string, string) {
	t.Helper()
	m1, s1, err := pty.Open()
	require.NoError(t, err)
	m2, s2, err := pty.Open()
	require.NoError(t, err)
	var wg sync.WaitGroup
	pump := func(dst, src *os.File) {
		defer wg.Done()
		_, _ = io.Copy(dst, src) // ends when the masters close
	}
	wg.Add(2)
	go pump(m1, m2)
	go pump(m2, m1)
	t.Cleanup(func() {
		for _, f := range []*os.File{m1, m2, s1, s2} {
			_ = f.Close()
		}
		wg.Wait()
	})
	return s1.Name(), s2.Name()
}

// TestFleetOverSerialLink runs a sensor over a raw-framed serial line (two
// pseudo-terminals back to back) into the gateway's serial link, lossy, and
// checks delivery at QoS 2 with an MQTT subscriber on the broker.
func TestFleetOverSerialLink(t *testing.T) {
	gwEnd, simEnd := serialCable(t)
	broker, mqttAddr := startBroker(t)
	g, err := gateway.New(broker, &gateway.Options{RetryInterval: 200 * time.Millisecond, RetryCount: 8, AdvertiseInterval: -1})
	require.NoError(t, err)
	line, err := transport.OpenSerial(t.Context(), transport.SerialOptions{Device: gwEnd, BaudRate: 115200})
	require.NoError(t, err)
	require.NoError(t, g.Serve(gateway.Link{Name: "raw " + gwEnd, Conn: line}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(ctx)
		_ = line.Close()
	})

	f := testFleet("", Group{Profile: Environment, Count: 1, QoS: mqttsn.QoS2})
	f.Link = Link{Serial: transport.SerialOptions{Device: simEnd, BaudRate: 115200}}
	f.Check = Check{MQTT: mqttAddr, Grace: 20 * time.Second}
	f.Messages = 20
	r := runFleet(t, f)
	require.Len(t, r.Profiles, 1)
	assert.True(t, r.OK(), "failures: %v", r.Failures)
	p := r.Profiles[0]
	assert.Equal(t, uint64(20), p.Sent)
	assert.Equal(t, p.Acknowledged, p.Delivered)
	assert.Positive(t, r.Up.Datagrams, "the impairment sat on the serial line")

	// A raw line has room for one device only.
	f.Groups[0].Count = 2
	_, err = New(f)
	assert.ErrorIs(t, err, ErrInvalidFleet)
}

// FuzzNodeOf: whatever arrives on a shared serial line, routing it never
// panics, and a node id is found only in a well-formed encapsulation.
func FuzzNodeOf(f *testing.F) {
	f.Add([]byte{0x05, 0xFE, 0x00, 'a', 'b', 0x02, 0x16})
	f.Add([]byte{0x03, 0xFE, 0x01})
	f.Add([]byte{0x02, 0x16})
	f.Add([]byte{0x01, 0x00, 0x05, 0xFE})
	f.Fuzz(func(t *testing.T, b []byte) {
		node, ok := nodeOf(b)
		if !ok {
			assert.Empty(t, node)
			return
		}
		p, err := mqttsn.Parse(b)
		require.NoError(t, err)
		assert.Equal(t, node, string(p.(*mqttsn.Encapsulated).NodeID))
	})
}
