package gateway

import (
	"context"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// harness runs a broker and a gateway on an in-memory network, inside a
// synctest bubble, so timers are driven by the fake clock.
type harness struct {
	t      *testing.T
	net    *memconn.Network
	broker *mqttcore.Broker
	gw     *Gateway
	gwAddr memconn.Addr

	// bopts and opts start the broker and the gateway again on restart.
	bopts mqttcore.Options
	opts  Options
}

const gwAddr = "gateway"

func newHarness(t *testing.T, opts *Options) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts)
}

// newHarnessWith starts a harness whose broker has bopts (nil: defaults).
func newHarnessWith(t *testing.T, bopts *mqttcore.Options, opts *Options) *harness {
	t.Helper()
	h := &harness{t: t, net: memconn.NewNetwork(), gwAddr: gwAddr}
	if bopts != nil {
		h.bopts = *bopts
	}
	if h.bopts.SysInterval == 0 {
		h.bopts.SysInterval = -1
	}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.Shards == 0 {
		h.opts.Shards = 2
	}
	h.start()
	t.Cleanup(h.stop)
	return h
}

// memLink is the harness's link; its addresses parse back from their
// strings, so restored sessions find their clients.
func (h *harness) memLink() Link {
	return Link{Name: "mem", Conn: h.net.Listen(gwAddr),
		ParseAddr: func(s string) (net.Addr, error) { return memconn.Addr(s), nil }}
}

// start runs a broker and a gateway, restoring what their stores hold.
func (h *harness) start() {
	t := h.t
	t.Helper()
	bopts := h.bopts
	b, err := mqttcore.New(&bopts)
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	opts := h.opts
	g, err := New(b, &opts)
	require.NoError(t, err)
	h.broker, h.gw = b, g
	require.NoError(t, g.Serve(h.memLink()))
	require.NoError(t, g.Restore())
}

// stop closes the gateway and the broker, as a graceful shutdown does.
func (h *harness) stop() {
	if h.gw == nil {
		return
	}
	require.NoError(h.t, h.gw.Close(context.Background()))
	require.NoError(h.t, h.broker.Close(context.Background()))
	h.gw, h.broker = nil, nil
}

// restart stops the gateway and its broker and starts new ones on the
// same stores and network: a reboot, as far as the stores tell.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

// client is a scripted MQTT-SN client: the test plays the client's side of
// the conversation byte for byte.
type client struct {
	h    *harness
	conn *memconn.Conn
	buf  []byte
}

func (h *harness) client(addr string) *client {
	return &client{h: h, conn: h.net.Listen(addr), buf: make([]byte, 65536)}
}

// send encodes p and sends it to the gateway.
func (c *client) send(p mqttsn.Packet) {
	c.h.t.Helper()
	b, err := mqttsn.Append(nil, p)
	require.NoError(c.h.t, err)
	c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) {
	c.h.t.Helper()
	_, err := c.conn.WriteTo(b, c.h.gwAddr)
	require.NoError(c.h.t, err)
}

// next returns the next message from the gateway. Under synctest a read
// that can never be satisfied fails the test as a deadlock, so no timeout
// is needed; the deadline only guards against a gateway that keeps
// retransmitting forever.
func (c *client) next() mqttsn.Packet {
	c.h.t.Helper()
	require.NoError(c.h.t, c.conn.SetReadDeadline(time.Now().Add(24*time.Hour)))
	n, _, err := c.conn.ReadFrom(c.buf)
	require.NoError(c.h.t, err)
	p, err := mqttsn.Parse(c.buf[:n])
	require.NoError(c.h.t, err, "gateway sent % x", c.buf[:n])
	return p
}

// expect reads the next message and requires it to equal want.
func (c *client) expect(want mqttsn.Packet) mqttsn.Packet {
	c.h.t.Helper()
	got := c.next()
	require.Equal(c.h.t, want, got)
	return got
}

// quiet requires that the gateway has nothing more to say right now.
func (c *client) quiet() {
	c.h.t.Helper()
	synctest.Wait()
	require.Zero(c.h.t, c.conn.Pending(), "unexpected message from the gateway")
}

// connect runs a plain CONNECT / CONNACK.
func (c *client) connect(id string, keepAlive uint16, clean bool) {
	c.h.t.Helper()
	c.send(&mqttsn.Connect{ClientID: id, Duration: keepAlive, CleanSession: clean})
	c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
}

// connectWithWill runs CONNECT with CleanSession and the Will exchange
// (MQTT-SN 1.2 §6.2, Fig. 3), step by step:
//
//	client --CONNECT(Will)--> GW --WILLTOPICREQ--> client --WILLTOPIC--> GW
//	--WILLMSGREQ--> client --WILLMSG--> GW --CONNACK--> client
func (c *client) connectWithWill(id string, keepAlive uint16, will *mqttsn.WillTopic, msg string) {
	c.h.t.Helper()
	c.send(&mqttsn.Connect{ClientID: id, Duration: keepAlive, CleanSession: true, Will: true})
	c.expect(&mqttsn.WillTopicReq{})
	c.send(will)
	c.expect(&mqttsn.WillMsgReq{})
	c.send(&mqttsn.WillMsg{Message: []byte(msg)})
	c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.Accepted})
}

// publishQoS2 runs a whole client QoS 2 exchange on a registered topic id:
//
//	client --PUBLISH--> GW --PUBREC--> client --PUBREL--> GW --PUBCOMP--> client
func (c *client) publishQoS2(topicID, msgID uint16, dup bool, data string) {
	c.h.t.Helper()
	c.send(&mqttsn.Publish{DUP: dup, QoS: mqttsn.QoS2, TopicID: topicID, MsgID: msgID, Data: []byte(data)})
	c.expect(&mqttsn.PubRec{MsgID: msgID})
	c.send(&mqttsn.PubRel{MsgID: msgID})
	c.expect(&mqttsn.PubComp{MsgID: msgID})
}

// register registers topic and returns its id.
func (c *client) register(topic string, msgID uint16) uint16 {
	c.h.t.Helper()
	c.send(&mqttsn.Register{MsgID: msgID, TopicName: topic})
	ack := c.next().(*mqttsn.RegAck)
	require.Equal(c.h.t, msgID, ack.MsgID)
	require.Equal(c.h.t, mqttsn.Accepted, ack.ReturnCode)
	require.NotZero(c.h.t, ack.TopicID)
	return ack.TopicID
}

// observer is an in-process broker session that records what reaches a
// topic filter: the MQTT side of the gateway.
type observer struct {
	t     *testing.T
	s     *mqttcore.Session
	mu    sync.Mutex
	ready chan struct{}
}

func (o *observer) Notify() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}
func (o *observer) Disconnected(mqttcore.ReasonCode) {}

func (h *harness) observe(filter string, qos byte) *observer {
	h.t.Helper()
	o := &observer{t: h.t, ready: make(chan struct{}, 1)}
	s, _, err := h.broker.Connect(mqttcore.ConnectOptions{ClientID: "observer-" + filter, CleanStart: true, Consumer: o})
	require.NoError(h.t, err)
	codes, err := s.Subscribe(mqttcore.Subscription{Filter: filter, QoS: qos})
	require.NoError(h.t, err)
	require.Less(h.t, byte(codes[0]), byte(0x80))
	o.s = s
	return o
}

// next returns the next message published to the observer's filter.
func (o *observer) next() mqttcore.Delivery {
	o.t.Helper()
	for {
		if d, ok := o.s.Next(); ok {
			switch d.QoS {
			case 1:
				require.NoError(o.t, o.s.Ack(d.PacketID))
			case 2:
				require.NoError(o.t, o.s.Received(d.PacketID))
				require.NoError(o.t, o.s.Complete(d.PacketID))
			}
			return d
		}
		<-o.ready
	}
}

// none requires that nothing more reached the observer.
func (o *observer) none() {
	o.t.Helper()
	synctest.Wait()
	d, ok := o.s.Next()
	require.False(o.t, ok, "unexpected message %+v", d)
}

// publisher is an in-process broker session that publishes to clients.
func (h *harness) publisher(id string) *mqttcore.Session {
	h.t.Helper()
	s, _, err := h.broker.Connect(mqttcore.ConnectOptions{ClientID: id, CleanStart: true, Consumer: discardConsumer{}})
	require.NoError(h.t, err)
	return s
}
