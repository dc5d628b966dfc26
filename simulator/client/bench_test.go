package client

import (
	"net"
	"testing"
	"time"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/require"
)

// discardConn accepts every write and blocks reads until closed, so a
// benchmark measures the client alone.
type discardConn struct{ closed chan struct{} }

func (d discardConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-d.closed
	return 0, nil, net.ErrClosed
}
func (discardConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (d discardConn) Close() error                            { close(d.closed); return nil }
func (discardConn) LocalAddr() net.Addr                       { return memconn.Addr("client") }
func (discardConn) SetDeadline(time.Time) error               { return nil }
func (discardConn) SetReadDeadline(time.Time) error           { return nil }
func (discardConn) SetWriteDeadline(time.Time) error          { return nil }

func benchClient(b *testing.B, opts Options) *Client {
	b.Helper()
	c, err := Dial(discardConn{closed: make(chan struct{})}, memconn.Addr("gateway"), opts)
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	c.mu.Lock()
	c.state = StateActive
	c.mu.Unlock()
	return c
}

// BenchmarkPublishQoS0 measures the send path: validation, encoding into
// the reused buffer, and the write.
func BenchmarkPublishQoS0(b *testing.B) {
	c := benchClient(b, Options{ClientID: "bench"})
	m := Message{Topic: Predefined(1), Payload: []byte("21.5")}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Publish(bg, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceivePublishQoS1 measures the receive path for a QoS 1
// PUBLISH: parse, topic lookup, queueing for the handler and the PUBACK.
func BenchmarkReceivePublishQoS1(b *testing.B) {
	c := benchClient(b, Options{ClientID: "bench", Handler: func(Message) {}})
	c.mu.Lock()
	require.NoError(b, c.topics.add(5, "sensors/1/temp"))
	c.mu.Unlock()
	d, err := mqttsn.Append(nil, &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 5, MsgID: 1, Data: []byte("21.5")})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		c.handleDatagram(d)
	}
}
