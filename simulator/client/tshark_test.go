package client

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrafficDecodesInTshark has Wireshark's MQTT-SN dissector, an
// independent decoder, read every datagram of a full session: each must
// decode as the message type the client meant, and none may be
// malformed. The session avoids the empty WILLTOPIC, which tshark 4.0
// wrongly reports as malformed (docs/mqtt-sn-protocol.md §C1).
func TestTrafficDecodesInTshark(t *testing.T) {
	tshark := testpeer.Look(t, "tshark", "tshark")
	var trace []traced
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{
			ClientID:  "tshark-1",
			KeepAlive: time.Minute,
			Will:      &Will{Topic: "will/t", Payload: []byte("bye"), QoS: mqttsn.QoS1, Retain: true},
		})
		converse(t, h)
		trace = append(trace, h.gw.trace...)

		f := newHarness(t, Options{ClientID: "xbee", Forwarder: &Forwarder{NodeID: []byte{0x12, 0x34}, Radius: 1}})
		f.connect()
		require.NoError(t, f.c.Publish(bg, Message{Topic: Predefined(5), Payload: []byte("hi")}))
		f.gw.recv()
		trace = append(trace, f.gw.trace...)
	})

	pcap := filepath.Join(t.TempDir(), "session.pcap")
	require.NoError(t, os.WriteFile(pcap, pcapFile(trace), 0o644))
	out, err := exec.Command(tshark, "-r", pcap, "-d", "udp.port==1883,mqttsn",
		"-T", "fields", "-e", "frame.number", "-e", "mqttsn.msg.type", "-e", "_ws.malformed").Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	require.Len(t, lines, len(trace))
	for i, line := range lines {
		fields := strings.Split(line, "\t")
		require.Len(t, fields, 3, "frame %d: %q", i+1, line)
		assert.Equal(t, wantTypes(t, trace[i].b), fields[1], "frame %d (% x)", i+1, trace[i].b)
		assert.Empty(t, fields[2], "frame %d (% x) is malformed to tshark", i+1, trace[i].b)
	}
}

// converse runs a session that sends every message type the client has.
func converse(t *testing.T, h *harness) {
	t.Helper()
	done := run(func() error { return h.c.Connect(bg) })
	h.gw.recv()
	h.gw.send(&mqttsn.WillTopicReq{})
	h.gw.recv()
	h.gw.send(&mqttsn.WillMsgReq{})
	h.gw.recv()
	h.gw.send(&mqttsn.ConnAck{})
	require.NoError(t, <-done)

	done = run(func() error {
		return h.c.Publish(bg, Message{Topic: TopicName("sensors/1/temp"), QoS: mqttsn.QoS2, Payload: []byte("21.5")})
	})
	reg := h.gw.recv().(*mqttsn.Register)
	h.gw.send(&mqttsn.RegAck{TopicID: 1, MsgID: reg.MsgID})
	pub := h.gw.recv().(*mqttsn.Publish)
	h.gw.send(&mqttsn.PubRec{MsgID: pub.MsgID})
	h.gw.recv()
	h.gw.send(&mqttsn.PubComp{MsgID: pub.MsgID})
	require.NoError(t, <-done)

	for _, topic := range []Topic{TopicName("cmd/#"), Predefined(7), Short("ab")} {
		done = run(func() error { _, _, err := h.c.Subscribe(bg, topic, mqttsn.QoS1); return err })
		sub := h.gw.recv().(*mqttsn.Subscribe)
		h.gw.send(&mqttsn.SubAck{QoS: mqttsn.QoS1, TopicID: sub.TopicID, MsgID: sub.MsgID})
		require.NoError(t, <-done)
	}
	h.gw.send(&mqttsn.Register{TopicID: 2, MsgID: 1, TopicName: "cmd/led"})
	h.gw.recv()
	h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 2, MsgID: 2, Data: []byte("on")})
	h.gw.recv()
	h.gw.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicIDType: mqttsn.TopicShort, TopicID: 0x6162, MsgID: 3, Data: []byte("x")})
	h.gw.recv()
	h.gw.send(&mqttsn.PubRel{MsgID: 3})
	h.gw.recv()
	h.gw.send(&mqttsn.Publish{TopicID: 99}) // unknown: PUBACK "invalid topic ID"
	h.gw.recv()

	done = run(func() error { return h.c.Unsubscribe(bg, TopicName("cmd/#")) })
	unsub := h.gw.recv().(*mqttsn.Unsubscribe)
	h.gw.send(&mqttsn.UnsubAck{MsgID: unsub.MsgID})
	require.NoError(t, <-done)

	done = run(func() error { return h.c.UpdateWillTopic(bg, "will/new", mqttsn.QoS0, false) })
	h.gw.recv()
	h.gw.send(&mqttsn.WillTopicResp{})
	require.NoError(t, <-done)
	done = run(func() error { return h.c.UpdateWillMessage(bg, []byte("gone")) })
	h.gw.recv()
	h.gw.send(&mqttsn.WillMsgResp{})
	require.NoError(t, <-done)

	h.gw.recv() // the keep-alive PINGREQ
	h.gw.send(&mqttsn.PingResp{})
	h.gw.send(&mqttsn.PingReq{})
	h.gw.recv()

	done = run(func() error { return h.c.Sleep(bg, time.Hour) })
	h.gw.recv()
	h.gw.send(&mqttsn.Disconnect{})
	require.NoError(t, <-done)
	done = run(func() error { return h.c.Wake(bg) })
	h.gw.recv()
	h.gw.send(&mqttsn.PingResp{})
	require.NoError(t, <-done)

	for _, topic := range []Topic{Predefined(3), Short("t1")} {
		require.NoError(t, h.c.Publish(bg, Message{Topic: topic, QoS: mqttsn.QoSMinus1, Payload: []byte("-1")}))
		h.gw.recv()
	}
	done = run(func() error { return h.c.Disconnect(bg) })
	h.gw.recv()
	h.gw.send(&mqttsn.Disconnect{})
	require.NoError(t, <-done)
}

// wantTypes returns the mqttsn.msg.type field tshark should show for
// datagram b: the type, or for an encapsulation the outer and the inner
// type.
func wantTypes(t *testing.T, b []byte) string {
	t.Helper()
	p, err := mqttsn.Parse(b)
	require.NoError(t, err)
	if e, ok := p.(*mqttsn.Encapsulated); ok {
		inner, err := mqttsn.Parse(e.Message)
		require.NoError(t, err)
		return fmt.Sprintf("0x%02x,0x%02x", byte(p.Type()), byte(inner.Type()))
	}
	return fmt.Sprintf("0x%02x", byte(p.Type()))
}

// pcapFile returns a capture file (LINKTYPE_RAW) of the datagrams as UDP
// between a client at 10.0.0.2:40000 and a gateway at 10.0.0.1:1883.
func pcapFile(trace []traced) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0)     // thiszone
	b = le.AppendUint32(b, 0)     // sigfigs
	b = le.AppendUint32(b, 65535) // snaplen
	b = le.AppendUint32(b, 101)   // LINKTYPE_RAW: IPv4 packets
	for i, d := range trace {
		src, dst, sport, dport := [4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, uint16(40000), uint16(1883)
		if !d.fromClient {
			src, dst, sport, dport = dst, src, dport, sport
		}
		pkt := ipv4UDP(src, dst, sport, dport, d.b)
		b = le.AppendUint32(b, uint32(i)) // one frame a second
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, uint32(len(pkt)))
		b = le.AppendUint32(b, uint32(len(pkt)))
		b = append(b, pkt...)
	}
	return b
}

// ipv4UDP builds an IPv4 header (RFC 791) and a UDP header (RFC 768, no
// checksum) around payload.
func ipv4UDP(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	be := binary.BigEndian
	ip := []byte{0x45, 0}
	ip = be.AppendUint16(ip, uint16(20+8+len(payload)))
	ip = append(ip, 0, 0, 0x40, 0, 64, 17, 0, 0) // id, DF, TTL, UDP, checksum
	ip = append(append(ip, src[:]...), dst[:]...)
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(be.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	be.PutUint16(ip[10:], ^uint16(sum))
	ip = be.AppendUint16(ip, sport)
	ip = be.AppendUint16(ip, dport)
	ip = be.AppendUint16(ip, uint16(8+len(payload)))
	ip = be.AppendUint16(ip, 0)
	return append(ip, payload...)
}
