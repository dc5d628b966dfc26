package simulator

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// script is what fakeBroker answers one connection: CONNACK, SUBACK and
// what follows them.
type script struct{ connack, suback, rest []byte }

// fakeBroker accepts one MQTT connection on loopback for each script, in
// turn: it reads the counter's CONNECT and SUBSCRIBE, sends the filter
// subscribed on filters, answers as scripted and waits for the counter to
// close. It reports on the returned channel once it is done.
func fakeBroker(t *testing.T, scripts ...script) (string, <-chan string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	filters := make(chan string, len(scripts))
	serve := func(sc script) error {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for _, want := range []byte{0x10, 0x82} {
			h, b, err := readMQTTPacket(r, nil)
			if err != nil {
				return err
			}
			if h != want {
				return errors.New("unexpected packet from the counter")
			}
			if h == 0x82 && len(b) > 4 {
				filters <- string(b[4 : len(b)-1]) // packet id, length, filter, QoS
			}
		}
		for _, b := range [][]byte{sc.connack, sc.suback, sc.rest} {
			if _, err := conn.Write(b); err != nil {
				return err
			}
		}
		_, err = io.Copy(io.Discard, r)
		return err
	}
	go func() {
		for _, sc := range scripts {
			if err := serve(sc); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return ln.Addr().String(), filters, done
}

func mqttPacket(first byte, body []byte) []byte {
	return append(appendMQTTHeader(nil, first, len(body)), body...)
}

func publish0(topic string, payload []byte) []byte {
	return mqttPacket(0x30, append(appendMQTTString(nil, topic), payload...))
}

var (
	connackOK = []byte{0x20, 2, 0, 0}
	subackOK  = []byte{0x90, 3, 0, 1, 0}
)

func TestCounterCounts(t *testing.T) {
	var rest []byte
	stamp := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	for range 1000 {
		rest = append(rest, publish0("bench/latency/1", stamp)...)
	}
	rest = append(rest, publish0("bench/latency/2", []byte("short"))...)             // counted, not timed
	big := append(append([]byte{}, stamp...), bytes.Repeat([]byte("x"), 100<<10)...) // beyond the read buffer
	rest = append(rest, publish0("bench/latency/3", big)...)
	addr, _, done := fakeBroker(t, script{connackOK, subackOK, rest})

	c, err := newCounter(t.Context(), addr, "bench/latency/#", 1, true)
	require.NoError(t, err)
	assert.Equal(t, uint64(1002), c.settle(t.Context(), 1002, 10*time.Second))
	require.NoError(t, c.err())
	assert.Equal(t, uint64(1001), c.latency.Summary().Count)
	c.close()
	c.close() // idempotent
	require.NoError(t, <-done)
}

func TestCounterRefused(t *testing.T) {
	for name, tc := range map[string]struct{ connack, suback []byte }{
		"connect": {[]byte{0x20, 2, 0, 5}, subackOK},
		"filter":  {connackOK, []byte{0x90, 3, 0, 1, 0x80}},
	} {
		t.Run(name, func(t *testing.T) {
			addr, _, done := fakeBroker(t, script{tc.connack, tc.suback, nil})
			_, err := newCounter(t.Context(), addr, "bench/#", 1, false)
			require.ErrorIs(t, err, ErrBench)
			require.ErrorIs(t, err, ErrMQTTRefused)
			<-done
		})
	}
}

func TestCounterFallsBackWithoutSharedSubscriptions(t *testing.T) {
	refused := []byte{0x90, 3, 0, 1, 0x80}
	addr, filters, done := fakeBroker(t, script{connackOK, refused, nil}, script{connackOK, subackOK, publish0("a/1", nil)})
	c, err := newCounter(t.Context(), addr, "a/#", 4, false)
	require.NoError(t, err)
	assert.Regexp(t, `^\$share/[^/]+/a/#$`, <-filters)
	assert.Equal(t, "a/#", <-filters)
	assert.Len(t, c.conns, 1)
	assert.Equal(t, uint64(1), c.settle(t.Context(), 1, 10*time.Second))
	c.close()
	require.NoError(t, <-done)
}

// TestCounterSharedCountsOnce: over a shared subscription on our broker
// every message is counted once, by one of the connections.
func TestCounterSharedCountsOnce(t *testing.T) {
	gw := startGateway(t, nil)
	c, err := newCounter(t.Context(), gw.mqtt, "bench/share/#", 4, false)
	require.NoError(t, err)
	defer c.close()
	require.Len(t, c.conns, 4)
	pubs, err := benchClients(t.Context(), gw.addr.String(), "share-", 1, client.Options{KeepAlive: time.Minute, CleanSession: true})
	require.NoError(t, err)
	defer closeClients(pubs)
	const n = 200
	for i := range n {
		// QoS 1: the gateway has each one before the next is sent.
		require.NoError(t, pubs[0].Publish(t.Context(), client.Message{Topic: client.TopicName("bench/share/" + strconv.Itoa(i%7)), Payload: []byte("x"), QoS: mqttsn.QoS1}))
	}
	assert.Equal(t, uint64(n), c.settle(t.Context(), n, 10*time.Second))
	c.close() // every read loop has ended: a duplicate would be counted now
	assert.Equal(t, uint64(n), c.n.Load())
	require.NoError(t, c.err())
}

func TestCounterBrokenStream(t *testing.T) {
	for name, rest := range map[string][]byte{
		"qos 1 on a qos 0 subscription": mqttPacket(0x32, append(appendMQTTString(nil, "a"), 0, 1, 'x')),
		"topic beyond body":             mqttPacket(0x30, []byte{0, 9, 'a'}),
		"unexpected type":               mqttPacket(0xb0, []byte{0, 1}),
		"closed by the broker":          nil,
	} {
		t.Run(name, func(t *testing.T) {
			rest = append(publish0("a", []byte("1")), rest...)
			addr, _, done := fakeBroker(t, script{connackOK, subackOK, rest})
			c, err := newCounter(t.Context(), addr, "a", 1, false)
			require.NoError(t, err)
			// The fake broker closes once the counter stops writing; the
			// stream still holds what it wrote before.
			require.NoError(t, c.conns[0].(*net.TCPConn).CloseWrite())
			c.wg.Wait() // the read loop ends on the error or on EOF
			require.NoError(t, <-done)
			assert.Equal(t, uint64(1), c.n.Load())
			err = c.err()
			require.ErrorIs(t, err, ErrBench)
			if name != "closed by the broker" {
				require.ErrorIs(t, err, ErrMQTTPacket)
			}
			c.close()
		})
	}
}

func TestReadMQTTPacket(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"five length bytes": {[]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrMQTTPacket},
		"oversize":          {appendMQTTHeader(nil, 0x30, maxCounterPacket+1), ErrMQTTPacket},
		"cut in length":     {[]byte{0x30, 0x80}, io.ErrUnexpectedEOF},
		"cut in body":       {[]byte{0x30, 3, 0}, io.ErrUnexpectedEOF},
		"empty":             {nil, io.EOF},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := readMQTTPacket(bufio.NewReader(bytes.NewReader(tc.in)), nil)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	// Four length bytes: the largest header the codec allows.
	body := bytes.Repeat([]byte{7}, 1<<14+1) // 3 length bytes
	h, b, err := readMQTTPacket(bufio.NewReader(bytes.NewReader(mqttPacket(0x30, body))), nil)
	require.NoError(t, err)
	assert.Equal(t, byte(0x30), h)
	assert.Equal(t, body, b)
}

func TestPublishPayload(t *testing.T) {
	p, err := publishPayload(0, append(appendMQTTString(nil, "t/1"), "pay"...))
	require.NoError(t, err)
	assert.Equal(t, []byte("pay"), p)
	p, err = publishPayload(2, append(appendMQTTString(nil, "t/1"), 0, 7, 'p'))
	require.NoError(t, err)
	assert.Equal(t, []byte("p"), p, "QoS 1 skips the packet identifier")
	for _, tc := range []struct {
		flags byte
		body  []byte
	}{{6, []byte{0, 0}}, {0, []byte{0}}, {0, []byte{0, 2, 'a'}}, {2, []byte{0, 1, 'a', 0}}} {
		_, err := publishPayload(tc.flags, tc.body)
		assert.ErrorIs(t, err, ErrMQTTPacket, "%x %x", tc.flags, tc.body)
	}
}

// FuzzCounterStream feeds the counter's packet reader what a broker might
// send: it must never panic nor return more than it bounds.
func FuzzCounterStream(f *testing.F) {
	f.Add(publish0("bench/ingest/1", []byte("21.5")))
	f.Add(append(append([]byte{}, connackOK...), subackOK...))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Add(mqttPacket(0x34, []byte{0, 1, 'a', 0, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		for {
			h, b, err := readMQTTPacket(r, buf)
			if err != nil {
				return
			}
			buf = b
			if len(b) > maxCounterPacket {
				t.Fatalf("%d-byte body", len(b))
			}
			if h>>4 == mqttPublish {
				if p, err := publishPayload(h&0x0f, b); err == nil && len(p) > len(b) {
					t.Fatalf("payload longer than body")
				}
			}
		}
	})
}

// FuzzCounterRoundTrip: a packet framed by appendMQTTHeader reads back
// unchanged.
func FuzzCounterRoundTrip(f *testing.F) {
	f.Add(byte(0x30), []byte("\x00\x01a21.5"))
	f.Add(byte(0x90), []byte{0, 1, 0})
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		h, b, err := readMQTTPacket(bufio.NewReader(bytes.NewReader(mqttPacket(first, body))), nil)
		if err != nil {
			t.Fatal(err)
		}
		if h != first || !bytes.Equal(b, body) {
			t.Fatalf("read %x %x, wrote %x %x", h, b, first, body)
		}
	})
}
