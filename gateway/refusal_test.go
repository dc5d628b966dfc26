package gateway

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// refuseSensors is an Authorizer that admits nobody but the gateway's own
// QoS -1 session.
type refuseSensors struct{ mqttcore.AllowAll }

func (refuseSensors) AllowConnect(c mqttcore.ClientInfo, _ []byte) bool {
	return c.ClientID == "snwgw-gw0-qos-1"
}

// TestBrokerRefusalIsNotSupported: a client the broker will never admit is
// told "not supported", not "congestion", which would have it retry
// forever (spec-interpretation #23).
func TestBrokerRefusalIsNotSupported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarnessWith(t, &mqttcore.Options{Authorizer: refuseSensors{}}, nil)
		c := h.client("node-1")
		c.send(&mqttsn.Connect{ClientID: "node-1", Duration: 60, CleanSession: true})
		c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})
		c.quiet()
		assert.Equal(t, int64(0), h.gw.Stats().Sessions)
	})
}

// TestTooManyUnreleasedQoS2IsCongestion: a client over the broker's window
// of unreleased QoS 2 messages is told to slow down, not that its message
// is unsupported.
func TestTooManyUnreleasedQoS2IsCongestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarnessWith(t, &mqttcore.Options{MaxInboundInflight: 1}, nil)
		c := h.client("node-1")
		c.connect("node-1", 60, true)
		id := c.register("t", 1)
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: id, MsgID: 2, Data: []byte("a")})
		c.expect(&mqttsn.PubRec{MsgID: 2})
		c.send(&mqttsn.Publish{QoS: mqttsn.QoS2, TopicID: id, MsgID: 3, Data: []byte("b")})
		c.expect(&mqttsn.PubAck{TopicID: id, MsgID: 3, ReturnCode: mqttsn.RejectedCongestion})
	})
}
