package gateway

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"

	"github.com/snwgw/snwgw/mqttsn"
)

// TestTopicNamesBoundedByBytesPerClient: with the defaults, one client
// cannot hold more than 64 KiB of topic names, however few; the count
// bound alone let one client register 826 MB.
func TestTopicNamesBoundedByBytesPerClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.client("node-1")
		c.connect("node-1", 600, true)
		c.register(strings.Repeat("a", 40_000), 1)
		c.send(&mqttsn.Register{MsgID: 2, TopicName: strings.Repeat("b", 40_000)})
		c.expect(&mqttsn.RegAck{MsgID: 2, ReturnCode: mqttsn.RejectedCongestion})
		c.send(&mqttsn.Subscribe{MsgID: 3, TopicName: strings.Repeat("c", 40_000)})
		c.expect(&mqttsn.SubAck{MsgID: 3, ReturnCode: mqttsn.RejectedCongestion})
		c.register("small/enough", 4)
		assert.Equal(t, uint64(2), h.gw.Stats().TopicBytesLimited)
	})
}

// TestTopicNamesBoundedByBytesInTotal: the gateway-wide bound holds across
// clients, and a session that ends gives its bytes back.
func TestTopicNamesBoundedByBytesInTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Options{MaxTopicBytes: 100})
		a, b := h.client("node-1"), h.client("node-2")
		a.connect("node-1", 600, true)
		b.connect("node-2", 600, true)
		a.register(strings.Repeat("a", 60), 1)
		b.send(&mqttsn.Register{MsgID: 1, TopicName: strings.Repeat("b", 60)})
		b.expect(&mqttsn.RegAck{MsgID: 1, ReturnCode: mqttsn.RejectedCongestion})
		assert.Equal(t, int64(60), h.gw.Stats().TopicBytes)

		a.send(&mqttsn.Disconnect{})
		a.expect(&mqttsn.Disconnect{})
		// Answered once the bytes are given back; node-2 may be on another
		// shard.
		b.register(strings.Repeat("b", 60), 2)
		assert.Equal(t, int64(60), h.gw.Stats().TopicBytes)
	})
}
