//go:build linux

package main

import (
	"bufio"
	"bytes"
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
	rawMaster, rawSlave := openPTY(t)
	xbMaster, xbSlave := openPTY(t)

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
	_, _, err := sub.Subscribe(e.ctx, snclient.TopicName("serial/#"), mqttsn.QoS1)
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
	p, err := readRaw(d.r)
	require.NoError(d.t, err)
	return p
}

// readRaw reads one raw-framed packet from r.
func readRaw(r *bufio.Reader) (mqttsn.Packet, error) {
	head, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	n := int(head[0])
	if n == 0x01 {
		h, err := r.Peek(3)
		if err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(h[1:]))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return mqttsn.Parse(b)
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
	tx, err := readXBeeTx(d.r)
	require.NoError(d.t, err)
	assert.Equal(d.t, d.addr64, tx.addr64)
	assert.Equal(d.t, d.addr16, tx.addr16)
	return tx.p
}

// xbeeTx is a Transmit Request the gateway sent.
type xbeeTx struct {
	addr64 uint64
	addr16 uint16
	p      mqttsn.Packet
}

// readXBeeTx reads one API mode 1 frame from r, which must be a 0x10
// Transmit Request carrying an MQTT-SN packet.
func readXBeeTx(r *bufio.Reader) (xbeeTx, error) {
	start, err := r.ReadByte()
	if err != nil {
		return xbeeTx{}, err
	}
	if start != 0x7E {
		return xbeeTx{}, fmt.Errorf("frame starts with %#x", start)
	}
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return xbeeTx{}, err
	}
	body := make([]byte, binary.BigEndian.Uint16(l[:])+1)
	if _, err := io.ReadFull(r, body); err != nil {
		return xbeeTx{}, err
	}
	sum := body[len(body)-1]
	body = body[:len(body)-1]
	// 10, frame id, 64-bit destination, 16-bit destination, radius, options, data
	switch {
	case xbeeChecksum(body) != sum:
		return xbeeTx{}, fmt.Errorf("checksum %#x, want %#x", sum, xbeeChecksum(body))
	case len(body) < 14 || body[0] != 0x10:
		return xbeeTx{}, fmt.Errorf("not a transmit request: % x", body)
	}
	p, err := mqttsn.Parse(body[14:])
	return xbeeTx{addr64: binary.BigEndian.Uint64(body[2:10]), addr16: binary.BigEndian.Uint16(body[10:12]), p: p}, err
}

func xbeeChecksum(frameData []byte) byte {
	var s byte
	for _, b := range frameData {
		s += b
	}
	return 0xFF - s
}

// TestServeSerialPacketLimits checks that max_packet_size reaches serial
// links: packets up to it cross the line, longer ones are dropped by the
// gateway without a retry, and the node's later messages still arrive, in
// order, on a session that lives on.
func TestServeSerialPacketLimits(t *testing.T) {
	rawMaster, rawSlave := openPTY(t)
	xbMaster, xbSlave := openPTY(t)

	cfg := writeConfig(t, fmt.Sprintf(`
[[udp]]
address = "127.0.0.1:0"
[[serial]]
device = %q
baud = 115200
framing = "raw"
max_packet_size = 2048
[[serial]]
device = %q
baud = 115200
framing = "xbee"
xbee_api_mode = 1
max_packet_size = 400
`, rawSlave.Name(), xbSlave.Name()))
	srv, _ := startServe(t, "--config", cfg)
	e := &e2e{t: t, srv: srv, udp: srv.udp[0].LocalAddr(), ctx: t.Context()}
	pub := e.snClient("udp-publisher", snclient.Options{CleanSession: true})

	// A device's packets, read on their own goroutine so that a packet
	// that never comes fails the test instead of hanging it. The reads
	// end with an error once the gateway and the test close the slave.
	packets := func(read func() (mqttsn.Packet, error)) <-chan mqttsn.Packet {
		ch := make(chan mqttsn.Packet, 16)
		go func() {
			defer close(ch)
			for {
				p, err := read()
				if err != nil {
					return
				}
				ch <- p
			}
		}()
		return ch
	}
	next := func(t *testing.T, ch <-chan mqttsn.Packet) mqttsn.Packet {
		t.Helper()
		select {
		case p, ok := <-ch:
			require.True(t, ok, "the line failed")
			return p
		case <-time.After(30 * time.Second): // a stuck gateway only
			t.Fatal("nothing arrived on the line")
			return nil
		}
	}
	publish := func(t *testing.T, topic string, size int, fill byte) []byte {
		t.Helper()
		data := bytes.Repeat([]byte{fill}, size)
		require.NoError(t, pub.Publish(e.ctx, snclient.Message{Topic: snclient.TopicName(topic), Payload: data, QoS: mqttsn.QoS1}))
		return data
	}

	rawIn, xbIn := bufio.NewReader(rawMaster), bufio.NewReader(xbMaster)
	for _, tc := range []struct {
		name      string
		device    func(t *testing.T) func(mqttsn.Packet) // the node's send
		read      func() (mqttsn.Packet, error)
		fits, not int // payload sizes that fit max_packet_size and that do not
	}{
		{
			name:   "raw",
			device: func(t *testing.T) func(mqttsn.Packet) { return (&rawDevice{t: t, w: rawMaster}).send },
			read:   func() (mqttsn.Packet, error) { return readRaw(rawIn) },
			// Longer than the raw framing's default (1024) allows.
			fits: 1500, not: 2100,
		},
		{
			name: "xbee",
			device: func(t *testing.T) func(mqttsn.Packet) {
				return (&xbeeDevice{t: t, w: xbMaster, addr64: 0x0013A20040A1B2C3, addr16: 0x1234}).send
			},
			read: func() (mqttsn.Packet, error) {
				tx, err := readXBeeTx(xbIn)
				return tx.p, err
			},
			// Longer than the XBee framing's default (255) allows.
			fits: 300, not: 500,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, send := packets(tc.read), tc.device(t)
			topic := "limits/" + tc.name
			send(&mqttsn.Connect{ClientID: tc.name + "-node", Duration: 600, CleanSession: true})
			require.Equal(t, &mqttsn.ConnAck{}, next(t, line))
			send(&mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 1, TopicName: topic})
			ack := next(t, line).(*mqttsn.SubAck)
			require.Equal(t, mqttsn.Accepted, ack.ReturnCode)
			deliver := func() *mqttsn.Publish {
				t.Helper()
				p := next(t, line).(*mqttsn.Publish)
				send(&mqttsn.PubAck{TopicID: p.TopicID, MsgID: p.MsgID})
				return p
			}

			want := publish(t, topic, tc.fits, 'a')
			got := deliver()
			assert.Equal(t, want, got.Data, "a packet within max_packet_size crosses the line")
			assert.False(t, got.DUP)

			tooLarge := srv.gw.Stats().TooLarge
			publish(t, topic, tc.not, 'b')
			want = publish(t, topic, 10, 'c')
			got = deliver()
			assert.Equal(t, want, got.Data, "the packet too long for the line is dropped, not retried ahead of the next")
			assert.False(t, got.DUP)
			assert.Equal(t, tooLarge+1, srv.gw.Stats().TooLarge)

			// The node is still connected: it is answered.
			send(&mqttsn.PingReq{})
			assert.Equal(t, &mqttsn.PingResp{}, next(t, line))
		})
	}
}

// openPTY opens a pseudo-terminal, closed when the test ends: the test
// plays a serial device on the master side, serve opens the slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, slave, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	return master, slave
}
