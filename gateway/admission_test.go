package gateway

import (
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/memconn"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// fakeAdmission binds ClientIds to the one address each may use, can play
// a rate limit that has run out, and records what it was asked.
type fakeAdmission struct {
	mu          sync.Mutex
	home        map[string]string // ClientId → the only address it may use
	congested   bool
	dropUnknown bool
	connects    []Sender
	unknown     []Sender
}

func (a *fakeAdmission) AdmitConnect(id string, from Sender) mqttsn.ReturnCode {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.connects = append(a.connects, from)
	switch {
	case a.congested:
		return mqttsn.RejectedCongestion
	case a.home[id] != from.Addr.String():
		return mqttsn.RejectedNotSupported
	}
	return mqttsn.Accepted
}

func (a *fakeAdmission) AdmitUnknown(from Sender) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unknown = append(a.unknown, from)
	return !a.dropUnknown
}

func (a *fakeAdmission) set(f func(a *fakeAdmission)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// TestAdmissionStopsClientIdTakeover: a device that claims another's
// ClientId from elsewhere is refused with CONNACK 0x03, and the owner's
// session stays where it is.
func TestAdmissionStopsClientIdTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		adm := &fakeAdmission{home: map[string]string{"boiler": "node-1"}}
		h := newHarness(t, &Options{AdmitConnect: adm.AdmitConnect, AdmitUnknown: adm.AdmitUnknown})
		owner := h.client("node-1")
		owner.connect("boiler", 60, true)
		id := owner.register("heating/boiler", 1)

		spoof := h.client("node-2")
		spoof.send(&mqttsn.Connect{ClientID: "boiler", Duration: 60, CleanSession: true})
		spoof.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})
		spoof.send(&mqttsn.Connect{ClientID: "stranger", Duration: 60, CleanSession: true})
		spoof.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedNotSupported})

		// The owner's session was not touched: its topic id still works.
		obs := h.observe("heating/#", 1)
		owner.send(&mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: id, MsgID: 2, Data: []byte("60C")})
		owner.expect(&mqttsn.PubAck{TopicID: id, MsgID: 2, ReturnCode: mqttsn.Accepted})
		assert.Equal(t, "60C", string(obs.next().Payload))

		st := h.gw.Stats()
		assert.Equal(t, uint64(2), st.NotAdmitted)
		assert.Equal(t, uint64(2), st.Refused)
		assert.Equal(t, int64(1), st.Sessions, "a refused CONNECT keeps no state")
		adm.mu.Lock()
		defer adm.mu.Unlock()
		require.Len(t, adm.connects, 3)
		assert.Equal(t, Sender{Link: "mem", Addr: memconn.Addr("node-2")}, adm.connects[1])
	})
}

// TestAdmissionJudgesAWakeFromANewAddress: a PINGREQ that would move a
// sleeping session, and hand over what was buffered for it, is judged
// like a CONNECT; from the right address the client wakes as usual.
func TestAdmissionJudgesAWakeFromANewAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		adm := &fakeAdmission{home: map[string]string{"node-1": "node-1"}}
		h := newHarness(t, &Options{AdmitConnect: adm.AdmitConnect, AdmitUnknown: adm.AdmitUnknown})
		pub := h.publisher("app")
		c := sleepingSubscriber(t, h, mqttsn.QoS1)
		require.NoError(t, pub.Publish(mqttcore.Message{Topic: "cmd/open", Payload: []byte("secret"), QoS: 1}))

		thief := h.client("node-9")
		thief.send(&mqttsn.PingReq{ClientID: "node-1"})
		thief.quiet()
		assert.Equal(t, uint64(1), h.gw.Stats().NotAdmitted)
		assert.Zero(t, h.gw.Stats().Wakes)

		c.send(&mqttsn.PingReq{ClientID: "node-1"})
		reg := c.next().(*mqttsn.Register)
		c.send(&mqttsn.RegAck{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: mqttsn.Accepted})
		p := c.next().(*mqttsn.Publish)
		assert.Equal(t, "secret", string(p.Data))
	})
}

// TestAdmissionCongestionAsksToComeBack: a refusal as too frequent is
// CONNACK 0x01, counted apart from "not allowed", and a reconnect from a
// bound address is judged too, so a device in a reconnect loop is held.
func TestAdmissionCongestionAsksToComeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		adm := &fakeAdmission{home: map[string]string{"n": "node-1"}}
		h := newHarness(t, &Options{AdmitConnect: adm.AdmitConnect, AdmitUnknown: adm.AdmitUnknown})
		c := h.client("node-1")
		c.connect("n", 60, true)
		adm.set(func(a *fakeAdmission) { a.congested = true })
		c.send(&mqttsn.Connect{ClientID: "n", Duration: 60, CleanSession: true})
		c.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedCongestion})
		other := h.client("node-2")
		other.send(&mqttsn.Connect{ClientID: "m", Duration: 60, CleanSession: true})
		other.expect(&mqttsn.ConnAck{ReturnCode: mqttsn.RejectedCongestion})
		st := h.gw.Stats()
		assert.Equal(t, uint64(2), st.ConnectLimited)
		assert.Zero(t, st.NotAdmitted)

		adm.set(func(a *fakeAdmission) { a.congested = false })
		c.connect("n", 60, true)
	})
}

// TestAdmissionDropsUnknownSenders: when the hook says no, a datagram
// from an address without a session is dropped unanswered — a SEARCHGW,
// a CONNECT, a QoS -1 PUBLISH alike — and a connected client is not asked
// about.
func TestAdmissionDropsUnknownSenders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		adm := &fakeAdmission{home: map[string]string{"n": "node-1"}}
		h := newHarness(t, &Options{AdmitConnect: adm.AdmitConnect, AdmitUnknown: adm.AdmitUnknown, Predefined: map[uint16]string{1: "qm1/x"}})
		known := h.client("node-1")
		known.connect("n", 60, true)
		adm.set(func(a *fakeAdmission) { a.dropUnknown = true })

		obs := h.observe("qm1/#", 0)
		c := h.client("node-2")
		c.send(&mqttsn.SearchGW{Radius: 1})
		c.send(&mqttsn.Connect{ClientID: "m", Duration: 60, CleanSession: true})
		c.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 1, Data: []byte("x")})
		c.quiet()
		obs.none()
		assert.Equal(t, uint64(3), h.gw.Stats().UnknownLimited)

		known.send(&mqttsn.PingReq{})
		known.expect(&mqttsn.PingResp{})

		adm.set(func(a *fakeAdmission) { a.dropUnknown = false })
		c.send(&mqttsn.SearchGW{Radius: 1})
		c.expect(&mqttsn.GWInfo{})
		adm.mu.Lock()
		defer adm.mu.Unlock()
		fromKnown := 0
		for _, s := range adm.unknown {
			if s.Addr.String() == "node-1" {
				fromKnown++
			}
		}
		assert.Equal(t, 1, fromKnown, "only node-1's first CONNECT came from an unknown sender")
		assert.Len(t, adm.unknown, 5)
	})
}
