//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// TestServeOverSerialLinks serves three links at once — UDP, a serial line
// with raw MQTT-SN framing and a serial line to an XBee module in API mode 1
// — and checks that sensors on both serial lines reach a subscriber on UDP.
// The serial lines are pseudo-terminals; the test plays the devices on
// their master sides, byte for byte.
func TestServeOverSerialLinks(t *testing.T) {
	rawMaster, rawSlave, err := pty.Open()
	require.NoError(t, err)
	defer rawMaster.Close()
	defer rawSlave.Close()
	xbMaster, xbSlave, err := pty.Open()
	require.NoError(t, err)
	defer xbMaster.Close()
	defer xbSlave.Close()

	cfg := writeConfig(t, fmt.Sprintf(`
[[udp]]
address = "127.0.0.1:0"
[[serial]]
device = %q
baud = 115200
framing = "raw"
[[serial]]
device = %q
baud = 9600
framing = "xbee"
xbee_api_mode = 1
[[broker.listener]]
address = "127.0.0.1:0"
`, rawSlave.Name(), xbSlave.Name()))
	srv, _ := startServe(t, "--config", cfg)
	e := &e2e{t: t, srv: srv, udp: srv.udp[0].LocalAddr(), ctx: t.Context()}

	got := make(chan snclient.Message, 10)
	sub := e.snClient("udp-subscriber", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { got <- m }})
	_, _, err = sub.Subscribe(e.ctx, snclient.TopicName("serial/#"), mqttsn.QoS1)
	require.NoError(t, err)
	expect := func(topic, payload string) {
		t.Helper()
		select {
		case m := <-got:
			assert.Equal(t, topic, m.Topic.Name)
			assert.Equal(t, payload, string(m.Payload))
		case <-time.After(30 * time.Second):
			t.Fatalf("%s never reached the UDP subscriber", topic)
		}
	}

	// Raw framing: MQTT-SN packets back to back.
	raw := &rawDevice{t: t, w: rawMaster, r: bufio.NewReader(rawMaster)}
	raw.send(&mqttsn.Connect{ClientID: "raw-node", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, raw.next())
	raw.send(&mqttsn.Register{MsgID: 1, TopicName: "serial/raw"})
	reg := raw.next().(*mqttsn.RegAck)
	raw.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: 2, Data: []byte("from raw")})
	assert.Equal(t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: 2}, raw.next())
	expect("serial/raw", "from raw")

	// XBee API mode 1: the node speaks through 0x90 receive frames and is
	// answered with 0x10 transmit requests addressed to it.
	xb := &xbeeDevice{t: t, w: xbMaster, r: bufio.NewReader(xbMaster), addr64: 0x0013A20040A1B2C3, addr16: 0x1234}
	xb.send(&mqttsn.Connect{ClientID: "xbee-node", Duration: 60, CleanSession: true})
	assert.Equal(t, &mqttsn.ConnAck{}, xb.next())
	xb.send(&mqttsn.Register{MsgID: 1, TopicName: "serial/xbee"})
	reg = xb.next().(*mqttsn.RegAck)
	xb.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: reg.TopicID, MsgID: 2, Data: []byte("from xbee")})
	assert.Equal(t, &mqttsn.PubAck{TopicID: reg.TopicID, MsgID: 2}, xb.next())
	expect("serial/xbee", "from xbee")
}

// rawDevice is a node on a raw-framed serial line.
type rawDevice struct {
	t *testing.T
	w io.Writer
	r *bufio.Reader
}

func (d *rawDevice) send(p mqttsn.Packet) {
	d.t.Helper()
	b, err := mqttsn.Append(nil, p)
	require.NoError(d.t, err)
	_, err = d.w.Write(b)
	require.NoError(d.t, err)
}

// next reads one packet, delimited by its own length field.
func (d *rawDevice) next() mqttsn.Packet {
	d.t.Helper()
	head, err := d.r.Peek(1)
	require.NoError(d.t, err)
	n := int(head[0])
	if n == 0x01 {
		h, err := d.r.Peek(3)
		require.NoError(d.t, err)
		n = int(binary.BigEndian.Uint16(h[1:]))
	}
	b := make([]byte, n)
	_, err = io.ReadFull(d.r, b)
	require.NoError(d.t, err)
	p, err := mqttsn.Parse(b)
	require.NoError(d.t, err)
	return p
}

// xbeeDevice plays an XBee module in API mode 1 with one remote node.
type xbeeDevice struct {
	t      *testing.T
	w      *os.File
	r      *bufio.Reader
	addr64 uint64
	addr16 uint16
}

// send wraps p in a 0x90 Receive Packet frame from the node:
// 7E, length, 90, 64-bit source, 16-bit source, options, RF data, checksum.
func (d *xbeeDevice) send(p mqttsn.Packet) {
	d.t.Helper()
	data, err := mqttsn.Append(nil, p)
	require.NoError(d.t, err)
	body := []byte{0x90}
	body = binary.BigEndian.AppendUint64(body, d.addr64)
	body = binary.BigEndian.AppendUint16(body, d.addr16)
	body = append(body, 0x01) // options: packet acknowledged
	body = append(body, data...)
	frame := []byte{0x7E}
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(body)))
	frame = append(frame, body...)
	frame = append(frame, xbeeChecksum(body))
	_, err = d.w.Write(frame)
	require.NoError(d.t, err)
}

// next reads the gateway's next 0x10 Transmit Request and returns the
// MQTT-SN packet in it, checking that it is addressed to the node.
func (d *xbeeDevice) next() mqttsn.Packet {
	d.t.Helper()
	start, err := d.r.ReadByte()
	require.NoError(d.t, err)
	require.Equal(d.t, byte(0x7E), start)
	var l [2]byte
	_, err = io.ReadFull(d.r, l[:])
	require.NoError(d.t, err)
	body := make([]byte, binary.BigEndian.Uint16(l[:])+1)
	_, err = io.ReadFull(d.r, body)
	require.NoError(d.t, err)
	sum := body[len(body)-1]
	body = body[:len(body)-1]
	require.Equal(d.t, xbeeChecksum(body), sum, "checksum")
	require.Equal(d.t, byte(0x10), body[0], "frame type")
	// 10, frame id, 64-bit destination, 16-bit destination, radius, options, data
	require.GreaterOrEqual(d.t, len(body), 14)
	assert.Equal(d.t, d.addr64, binary.BigEndian.Uint64(body[2:10]))
	assert.Equal(d.t, d.addr16, binary.BigEndian.Uint16(body[10:12]))
	p, err := mqttsn.Parse(body[14:])
	require.NoError(d.t, err)
	return p
}

func xbeeChecksum(frameData []byte) byte {
	var s byte
	for _, b := range frameData {
		s += b
	}
	return 0xFF - s
}
