package simulator

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
)

// testGateway is our gateway and broker in-process, on loopback UDP.
type testGateway struct {
	addr   *net.UDPAddr
	mqtt   string // the broker's MQTT listener, host:port
	broker *mqttcore.Broker
	gw     *gateway.Gateway
}

func startGateway(t testing.TB, opts *gateway.Options) *testGateway {
	t.Helper()
	broker, mqttAddr := startBroker(t)
	if opts == nil {
		opts = &gateway.Options{}
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 200 * time.Millisecond
	}
	if opts.RetryCount == 0 {
		opts.RetryCount = 8
	}
	opts.AdvertiseInterval = -1
	g, err := gateway.New(broker, opts)
	require.NoError(t, err)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, conn.SetReadBuffer(4<<20)) // as transport.ListenUDP does
	require.NoError(t, g.Serve(gateway.Link{Name: "udp", Conn: conn}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(ctx)
		_ = conn.Close()
	})
	return &testGateway{addr: conn.LocalAddr().(*net.UDPAddr), mqtt: mqttAddr, broker: broker, gw: g}
}

// startBroker starts a broker with an MQTT listener on loopback TCP.
func startBroker(t testing.TB) (*mqttcore.Broker, string) {
	t.Helper()
	broker, err := mqttcore.New(&mqttcore.Options{SysInterval: -1})
	require.NoError(t, err)
	require.NoError(t, broker.Start(context.Background()))
	l, err := mqttcore.Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- broker.Serve(l, mqttcore.ListenerOptions{}) }()
	t.Cleanup(func() {
		_ = l.Close()
		<-served
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = broker.Close(ctx)
	})
	return broker, l.Addr().String()
}

// lossy is the impairment of the guarantee tests: a poor radio link that
// loses and duplicates datagrams. Duplicates follow their original at once;
// a copy delayed past the end of its QoS 2 exchange is a new message to
// any receiver that forgets completed message ids.
var lossy = Impairment{Loss: 10, Duplicate: 5}

// testFleet is a small fleet with fast timers for tests.
func testFleet(addr string, groups ...Group) Fleet {
	for i := range groups {
		if groups[i].Interval == 0 {
			groups[i].Interval = 20 * time.Millisecond
			groups[i].Jitter = 5 * time.Millisecond
		}
		if groups[i].Count == 0 {
			groups[i].Count = 3
		}
		groups[i].CleanSession = DefaultCleanSession(groups[i].Profile)
	}
	return Fleet{
		Link:          Link{UDP: addr},
		Up:            lossy,
		Down:          lossy,
		Seed:          7,
		Groups:        groups,
		Messages:      8,
		RetryInterval: 50 * time.Millisecond,
		RetryCount:    12,
		Check:         Check{MQTTSN: true, Grace: 20 * time.Second},
	}
}

func runFleet(t *testing.T, f Fleet) *Report {
	t.Helper()
	s, err := New(f)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r, err := s.Run(ctx)
	require.NoError(t, err)
	return r
}

// TestFleetGuaranteesUnderImpairment runs every sensor profile at QoS 1
// and 2 over a link that loses 10 % and duplicates 5 % of the datagrams
// both ways, and requires the checker to see every acknowledged message,
// and at QoS 2 exactly once.
func TestFleetGuaranteesUnderImpairment(t *testing.T) {
	for _, p := range []Profile{Environment, Event, Sleepy} {
		for _, qos := range []mqttsn.QoS{mqttsn.QoS1, mqttsn.QoS2} {
			t.Run(fmt.Sprintf("%s/%v", p, qos), func(t *testing.T) {
				t.Parallel()
				gw := startGateway(t, nil)
				g := Group{Profile: p, QoS: qos}
				if p == Sleepy {
					g.Interval, g.Jitter = 50*time.Millisecond, 0
				}
				f := testFleet(gw.addr.String(), g)
				if p == Sleepy {
					f.CommandInterval = 10 * time.Millisecond
				}
				r := runFleet(t, f)
				require.Len(t, r.Profiles, 1)
				pr := r.Profiles[0]
				assert.Equal(t, p, pr.Profile)
				assert.Equal(t, uint64(3*8), pr.Sent)
				assert.Positive(t, pr.Acknowledged)
				assert.Equal(t, pr.Acknowledged, pr.Delivered-0, "every acknowledged message delivered")
				assert.Zero(t, pr.Lost)
				if qos == mqttsn.QoS2 {
					assert.Zero(t, pr.Duplicated)
				}
				assert.True(t, r.OK(), "failures: %v", r.Failures)
				assert.Positive(t, r.Up.Dropped+r.Down.Dropped, "the impairment dropped datagrams")
				assert.Positive(t, r.Up.Duplicated+r.Down.Duplicated, "the impairment duplicated datagrams")
				assert.Equal(t, "delivery", pr.LatencyKind)
				assert.Equal(t, pr.Delivered, pr.Latency.Count)
				if p == Sleepy {
					assert.Positive(t, pr.Received, "the sleepy sensors collected buffered commands")
				}
			})
		}
	}
}

// TestBulbFleet drives bulbs with commands over the lossy link: each
// answers with its state, retained, and rejects out-of-range values.
func TestBulbFleet(t *testing.T) {
	for _, qos := range []mqttsn.QoS{mqttsn.QoS1, mqttsn.QoS2} {
		t.Run(qos.String(), func(t *testing.T) {
			t.Parallel()
			gw := startGateway(t, nil)
			f := testFleet(gw.addr.String(), Group{Profile: Bulb, QoS: qos})
			f.Messages = 0
			f.Duration = 2 * time.Second
			f.CommandInterval = 10 * time.Millisecond
			r := runFleet(t, f)
			require.Len(t, r.Profiles, 1)
			pr := r.Profiles[0]
			assert.Positive(t, pr.Received, "commands reached the bulbs")
			assert.Positive(t, pr.Rejected, "out-of-range commands were rejected")
			assert.Greater(t, pr.Sent, uint64(3), "bulbs published their state")
			assert.Zero(t, pr.Lost)
			assert.True(t, r.OK(), "failures: %v", r.Failures)
			assert.Positive(t, r.Commands.Acknowledged)
		})
	}
}

// TestFleetCheckedOverMQTT checks delivery with an MQTT 5 subscriber on the
// broker instead of an MQTT-SN one.
func TestFleetCheckedOverMQTT(t *testing.T) {
	gw := startGateway(t, nil)
	f := testFleet(gw.addr.String(), Group{Profile: Environment, QoS: mqttsn.QoS2}, Group{Profile: Event, QoS: mqttsn.QoS1})
	f.Check = Check{MQTT: gw.mqtt, Grace: 20 * time.Second}
	r := runFleet(t, f)
	assert.True(t, r.Checked)
	assert.True(t, r.OK(), "failures: %v", r.Failures)
	require.Len(t, r.Profiles, 2)
	for _, p := range r.Profiles {
		assert.Equal(t, p.Acknowledged, p.Delivered, p.Profile)
	}
	assert.Zero(t, r.Profiles[0].Duplicated, "QoS 2 delivers exactly once")
}

// TestReportFailsOnLoss feeds the checker less than the devices sent and
// requires the report to name the broken guarantees.
func TestReportFailsOnLoss(t *testing.T) {
	s, err := New(Fleet{Link: Link{UDP: "127.0.0.1:1"}, Messages: 3, Groups: []Group{
		{Profile: Environment, Count: 1, QoS: mqttsn.QoS1},
		{Profile: Event, Count: 1, QoS: mqttsn.QoS2},
	}})
	require.NoError(t, err)
	chk := newChecker(time.Unix(0, 1))
	var devices []*device
	for i := range s.f.Groups {
		d := s.newDevice(&s.f.Groups[i], 1, i, chk)
		for seq := uint64(1); seq <= 3; seq++ {
			d.sentOK.add(seq)
		}
		devices = append(devices, d)
	}
	now := time.Unix(0, 100)
	chk.observe(devices[0].topic, []byte(`{"seq":1,"ts":50}`), now)
	chk.observe(devices[0].topic, []byte(`{"seq":1,"ts":50}`), now) // a QoS 1 duplicate is allowed
	chk.observe(devices[1].topic, []byte(`{"seq":1,"ts":50}`), now)
	chk.observe(devices[1].topic, []byte(`{"seq":2,"ts":50}`), now)
	chk.observe(devices[1].topic, []byte(`{"seq":2,"ts":50}`), now)
	chk.observe(devices[1].topic, []byte(`{"seq":3,"ts":50}`), now)
	chk.observe(devices[1].topic+"/set", []byte(`{"seq":9,"ts":50}`), now) // not a device topic
	chk.observe(devices[1].topic, []byte(`{"seq":4,"ts":0}`), now)         // an earlier run's message
	chk.account(devices)
	r := s.report(time.Second, true, &udpLinker{})
	assert.False(t, r.OK())
	assert.Equal(t, []string{"env: QoS 1 lost 2 acknowledged messages", "event: QoS 2 delivered 1 duplicates"}, r.Failures)
	assert.Equal(t, uint64(1), r.Profiles[0].Delivered)
	assert.Equal(t, uint64(2), r.Profiles[0].Lost)
	assert.Equal(t, uint64(1), r.Profiles[0].Duplicated)
	assert.Equal(t, uint64(3), r.Profiles[1].Delivered)
	assert.Equal(t, time.Duration(50), r.Profiles[1].Latency.Max)
}
