package mqttcore_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/packet"
)

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// closeWatch reports when the server closes its end.
type closeWatch struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeWatch) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func fuzzSeeds() [][]byte {
	var seeds [][]byte
	add := func(v packet.Version, ps ...packet.Packet) {
		var b []byte
		for _, p := range ps {
			var err error
			if b, err = packet.Append(b, p, v); err != nil {
				panic(err)
			}
		}
		seeds = append(seeds, b)
	}
	add(packet.V311, &packet.ConnectPacket{ClientID: "f", KeepAlive: 30},
		&packet.SubscribePacket{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#", QoS: 2}}},
		&packet.PublishPacket{Topic: "a/b", QoS: 2, PacketID: 2, Payload: []byte("x"), Retain: true},
		&packet.AckPacket{PacketType: packet.Pubrel, PacketID: 2},
		&packet.AckPacket{PacketType: packet.Pubrec, PacketID: 1},
		&packet.UnsubscribePacket{PacketID: 3, Filters: []string{"a/#"}},
		&packet.PingreqPacket{}, &packet.DisconnectPacket{})
	add(packet.V5, &packet.ConnectPacket{ClientID: "g", CleanStart: true, Will: &packet.Will{Topic: "w", Payload: []byte("w")},
		Properties: packet.Properties{TopicAliasMaximum: ptr(uint16(2)), MaximumPacketSize: ptr(uint32(40))}},
		&packet.SubscribePacket{PacketID: 1, Properties: packet.Properties{SubscriptionIDs: []uint32{5}},
			Subscriptions: []packet.Subscription{{Filter: "$share/g/t", QoS: 1}, {Filter: "t", QoS: 1, NoLocal: true}}},
		&packet.PublishPacket{Topic: "t", QoS: 1, PacketID: 2, Properties: packet.Properties{TopicAlias: ptr(uint16(1))}},
		&packet.PublishPacket{QoS: 1, PacketID: 3, Properties: packet.Properties{TopicAlias: ptr(uint16(1))}, Payload: make([]byte, 64)},
		&packet.AckPacket{PacketType: packet.Puback, PacketID: 1},
		&packet.DisconnectPacket{ReasonCode: packet.DisconnectWithWill, Properties: packet.Properties{SessionExpiry: ptr(uint32(5))}})
	seeds = append(seeds, []byte{0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, []byte("GET / HTTP/1.1\r\n\r\n"))
	return seeds
}

// FuzzConn feeds arbitrary bytes to a connection as a client would: the
// broker must neither panic nor keep the connection open once the client
// has gone. Each input gets a broker of its own, closed (with every
// goroutine of the listener and the engine) before the next, so inputs
// do not influence each other.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := mqttcore.New(&mqttcore.Options{SysInterval: -1, MaxQueued: 16})
		require.NoError(t, err)
		require.NoError(t, b.Start(context.Background()))
		l := newPipeListener()
		served := make(chan error, 1)
		go func() {
			served <- b.Serve(l, mqttcore.ListenerOptions{MaxPacketSize: 4096, CloseTimeout: time.Second, ConnectTimeout: time.Second})
		}()

		client, server := net.Pipe()
		w := &closeWatch{Conn: server, closed: make(chan struct{})}
		l.conns <- w
		drained := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, client)
			close(drained)
		}()
		_, _ = client.Write(data)
		client.Close()
		select {
		case <-w.closed:
		case <-time.After(ioTimeout):
			t.Fatal("the server did not close the connection after the client went away")
		}
		<-drained
		l.Close()
		require.NoError(t, <-served)
		require.NoError(t, b.Close(context.Background()))
	})
}
