package client

import (
	"testing"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frames joins datagrams in the fuzz input format: each is preceded by
// its length octet.
func frames(tb testing.TB, ps ...mqttsn.Packet) []byte {
	tb.Helper()
	var out []byte
	for _, p := range ps {
		b, err := mqttsn.Append(nil, p)
		require.NoError(tb, err)
		out = append(append(out, byte(len(b))), b...)
	}
	return out
}

// FuzzReceive feeds arbitrary datagrams from the gateway into the
// client's receive path, in an active session. It must never panic, and
// the client's tables must stay within their bounds.
func FuzzReceive(f *testing.F) {
	f.Add(frames(f,
		&mqttsn.Register{TopicID: 1, MsgID: 1, TopicName: "a"},
		&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: 1, MsgID: 2, Data: []byte("x")},
		&mqttsn.Publish{QoS: mqttsn.QoS2, DUP: true, TopicID: 1, MsgID: 2, Data: []byte("x")},
		&mqttsn.PubRel{MsgID: 2},
	), false)
	f.Add(frames(f,
		&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: 9, MsgID: 3},
		&mqttsn.PingReq{},
		&mqttsn.PubAck{TopicID: 1, ReturnCode: mqttsn.RejectedInvalidTopicID},
		&mqttsn.Disconnect{},
	), false)
	f.Add(frames(f,
		&mqttsn.Encapsulated{NodeID: []byte{0x12, 0x34}, Message: []byte{0x02, 0x17}},
		&mqttsn.Encapsulated{NodeID: []byte{0x12}, Message: []byte{0x03, 0x05, 0x00}},
	), true)
	f.Add([]byte{0x04, 0x01, 0x00, 0x02, 0x0c}, false)
	f.Fuzz(func(t *testing.T, in []byte, encapsulated bool) {
		opts := Options{
			ClientID:       "fuzz",
			Handler:        func(Message) {},
			QueueSize:      4,
			MaxTopics:      8,
			MaxPendingQoS2: 4,
		}
		if encapsulated {
			opts.Forwarder = &Forwarder{NodeID: []byte{0x12, 0x34}}
		}
		// No goroutines: the receive path runs on the fuzzer's, replies
		// go nowhere and the bounded queue is never drained.
		c, err := newClient(discardConn{closed: make(chan struct{})}, memconn.Addr("gateway"), opts)
		require.NoError(t, err)
		c.mu.Lock()
		c.state = StateActive
		c.mu.Unlock()
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			c.handleDatagram(in[1 : 1+n])
			in = in[1+n:]
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		assert.LessOrEqual(t, len(c.topics.byID), 8)
		assert.Equal(t, len(c.topics.byID), len(c.topics.byName))
		assert.LessOrEqual(t, len(c.qos2), 4)
		assert.Equal(t, len(c.qos2), len(c.qos2Seq))
		assert.Empty(t, c.waiters)
		assert.LessOrEqual(t, len(c.events), 4)
	})
}
