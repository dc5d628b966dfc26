package client

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDialSerial runs CONNECT and a QoS 1 PUBLISH over a raw-framed
// serial line: a pseudo-terminal whose master side plays the gateway.
func TestDialSerial(t *testing.T) {
	master, slave, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	c, err := DialSerial(bg, transport.SerialOptions{Device: slave.Name(), BaudRate: 115200}, nil, Options{ClientID: "serial-1"})
	require.NoError(t, err)
	defer func() { assert.NoError(t, c.Close()) }()

	// A guard against a hung test, not a synchronisation.
	require.NoError(t, master.SetReadDeadline(time.Now().Add(10*time.Second)))
	expect := func(want mqttsn.Packet) {
		t.Helper()
		b, err := mqttsn.Append(nil, want)
		require.NoError(t, err)
		got := make([]byte, len(b))
		_, err = io.ReadFull(master, got)
		require.NoError(t, err)
		assert.Equal(t, b, got)
	}
	send := func(p mqttsn.Packet) {
		t.Helper()
		b, err := mqttsn.Append(nil, p)
		require.NoError(t, err)
		_, err = master.Write(b)
		require.NoError(t, err)
	}

	done := run(func() error { return c.Connect(bg) })
	expect(&mqttsn.Connect{ClientID: "serial-1"})
	send(&mqttsn.ConnAck{})
	require.NoError(t, <-done)

	done = run(func() error {
		return c.Publish(bg, Message{Topic: Predefined(2), QoS: mqttsn.QoS1, Payload: []byte("x")})
	})
	// The first message id of the session is 1.
	expect(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicIDType: mqttsn.TopicPredefined, TopicID: 2, MsgID: 1, Data: []byte("x")})
	send(&mqttsn.PubAck{TopicID: 2, MsgID: 1})
	require.NoError(t, <-done)
}

func TestDialSerialNeedsGatewayAddressForXBee(t *testing.T) {
	_, slave, err := pty.Open()
	require.NoError(t, err)
	defer slave.Close()
	_, err = DialSerial(bg, transport.SerialOptions{Device: slave.Name(), Framing: transport.FramingXBee}, nil, Options{})
	require.ErrorIs(t, err, ErrInvalidOptions)
	_, err = DialSerial(bg, transport.SerialOptions{Device: "/nonexistent/tty"}, nil, Options{})
	require.ErrorIs(t, err, os.ErrNotExist)
}
