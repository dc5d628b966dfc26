package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
	"github.com/snwgw/snwgw/mqttsn"
	snclient "github.com/snwgw/snwgw/simulator/client"
)

// End-to-end tests: `snwgw serve` with MQTT-SN clients (the simulator's
// client library over loopback UDP) on one side and mosquitto_sub /
// mosquitto_pub, independent MQTT clients, on the broker's TCP side.

// e2e is a running gateway with its two addresses.
type e2e struct {
	t    *testing.T
	srv  *server
	udp  net.Addr
	mqtt string // host:port of the MQTT listener
	ctx  context.Context
}

func startE2E(t *testing.T, extra ...string) *e2e {
	t.Helper()
	testpeer.Look(t, "mosquitto_sub", "mosquitto-clients")
	args := append([]string{"--udp", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}, extra...)
	srv, _ := startServe(t, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return &e2e{t: t, srv: srv, udp: srv.udp[0].LocalAddr(), mqtt: srv.mqtt[0].Addr().String(), ctx: ctx}
}

func (e *e2e) hostPort() (string, string) {
	host, port, err := net.SplitHostPort(e.mqtt)
	require.NoError(e.t, err)
	return host, port
}

// snClient connects an MQTT-SN client over UDP.
func (e *e2e) snClient(id string, opts snclient.Options) *snclient.Client {
	e.t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(e.t, err)
	opts.ClientID = id
	if opts.KeepAlive == 0 {
		opts.KeepAlive = time.Minute
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = time.Second
	}
	c, err := snclient.Dial(conn, e.udp, opts)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { c.Close() })
	require.NoError(e.t, c.Connect(e.ctx))
	return c
}

// mosquittoSub runs mosquitto_sub with -v (lines "topic payload") and -d,
// and returns once its subscription is acknowledged, so nothing published
// afterwards can be missed. Lines are read from the returned channel, which
// closes when mosquitto_sub exits.
func (e *e2e) mosquittoSub(version string, qos int, topic string, extra ...string) (<-chan string, *exec.Cmd) {
	e.t.Helper()
	host, port := e.hostPort()
	args := append([]string{"-h", host, "-p", port, "-V", version, "-q", strconv.Itoa(qos), "-t", topic, "-v", "-d"}, extra...)
	// mosquitto_sub block-buffers a pipe; stdbuf makes it write each line
	// as it happens, so the SUBACK line can be waited for.
	stdbuf := testpeer.Look(e.t, "stdbuf", "coreutils")
	cmd := exec.CommandContext(e.ctx, stdbuf, append([]string{"-oL", testpeer.Look(e.t, "mosquitto_sub", "mosquitto-clients")}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(e.t, err)
	require.NoError(e.t, cmd.Start())
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	subscribed := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "Client ") || strings.HasPrefix(l, "Subscribed (mid") {
				// -d debug lines; SUBACK means the subscription is in place.
				if !once && strings.Contains(l, "received SUBACK") {
					once = true
					close(subscribed)
				}
				continue
			}
			lines <- l
		}
	}()
	select {
	case <-subscribed:
	case <-e.ctx.Done():
		e.t.Fatalf("mosquitto_sub %v never subscribed", args)
	}
	return lines, cmd
}

func (e *e2e) mosquittoPub(version string, args ...string) {
	e.t.Helper()
	host, port := e.hostPort()
	all := append([]string{"-h", host, "-p", port, "-V", version}, args...)
	out, err := exec.CommandContext(e.ctx, testpeer.Look(e.t, "mosquitto_pub", "mosquitto-clients"), all...).CombinedOutput()
	require.NoError(e.t, err, "mosquitto_pub %v: %s", all, out)
}

func (e *e2e) line(lines <-chan string) string {
	e.t.Helper()
	select {
	case l, ok := <-lines:
		require.True(e.t, ok, "mosquitto_sub exited")
		return l
	case <-e.ctx.Done():
		e.t.Fatal("no message reached mosquitto_sub")
		return ""
	}
}

func TestE2EMQTTSNToMosquittoSubEveryQoS(t *testing.T) {
	e := startE2E(t)
	for _, version := range []string{"mqttv311", "mqttv5"} {
		lines, _ := e.mosquittoSub(version, 2, "e2e/up/#")
		c := e.snClient("sensor-up-"+version, snclient.Options{CleanSession: true})
		// QoS -1 needs a predefined or short topic: it has its own test.
		for _, q := range []mqttsn.QoS{mqttsn.QoS0, mqttsn.QoS1, mqttsn.QoS2} {
			topic := snclient.TopicName(fmt.Sprintf("e2e/up/%d", q))
			require.NoError(t, c.Publish(e.ctx, snclient.Message{Topic: topic, Payload: []byte("v" + version), QoS: q}))
			assert.Equal(t, fmt.Sprintf("e2e/up/%d v%s", q, version), e.line(lines))
		}
	}
}

func TestE2EMosquittoPubToMQTTSNEveryQoS(t *testing.T) {
	e := startE2E(t)
	got := make(chan snclient.Message, 10)
	c := e.snClient("actuator", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { got <- m }})
	_, _, err := c.Subscribe(e.ctx, snclient.TopicName("e2e/down/#"), mqttsn.QoS2)
	require.NoError(t, err)
	for _, version := range []string{"mqttv311", "mqttv5"} {
		for q := 0; q <= 2; q++ {
			payload := fmt.Sprintf("%s-q%d", version, q)
			e.mosquittoPub(version, "-q", strconv.Itoa(q), "-t", "e2e/down/led", "-m", payload)
			select {
			case m := <-got:
				assert.Equal(t, "e2e/down/led", m.Topic.Name)
				assert.Equal(t, payload, string(m.Payload))
				assert.Equal(t, mqttsn.QoS(q), m.QoS)
			case <-e.ctx.Done():
				t.Fatalf("%s never reached the MQTT-SN client", payload)
			}
		}
	}
}

func TestE2ERetainedFromMosquittoToMQTTSN(t *testing.T) {
	e := startE2E(t)
	e.mosquittoPub("mqttv5", "-r", "-q", "1", "-t", "e2e/state/door", "-m", "closed")
	got := make(chan snclient.Message, 1)
	c := e.snClient("late", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { got <- m }})
	_, _, err := c.Subscribe(e.ctx, snclient.TopicName("e2e/state/door"), mqttsn.QoS1)
	require.NoError(t, err)
	select {
	case m := <-got:
		assert.Equal(t, "closed", string(m.Payload))
		assert.True(t, m.Retain)
	case <-e.ctx.Done():
		t.Fatal("the retained message never arrived")
	}
}

// TestE2EWillOfALostMQTTSNClient: an MQTT-SN client that stops answering
// (its process killed, in effect) is lost after 1.5 × its keep-alive, and
// mosquitto_sub sees its Will.
func TestE2EWillOfALostMQTTSNClient(t *testing.T) {
	e := startE2E(t)
	lines, _ := e.mosquittoSub("mqttv311", 1, "e2e/will/#")
	c := e.snClient("doomed", snclient.Options{
		CleanSession: true,
		KeepAlive:    time.Second,
		Will:         &snclient.Will{Topic: "e2e/will/doomed", Payload: []byte("gone"), QoS: mqttsn.QoS1},
	})
	// Killing the client: its socket closes with no DISCONNECT.
	require.NoError(t, c.Close())
	assert.Equal(t, "e2e/will/doomed gone", e.line(lines))
}

func TestE2ESleepCyclesWithMosquittoPub(t *testing.T) {
	e := startE2E(t)
	got := make(chan snclient.Message, 10)
	c := e.snClient("sleepy", snclient.Options{CleanSession: true, Handler: func(m snclient.Message) { got <- m }})
	_, _, err := c.Subscribe(e.ctx, snclient.TopicName("e2e/sleepy/cmd"), mqttsn.QoS1)
	require.NoError(t, err)
	for cycle := range 3 {
		require.NoError(t, c.Sleep(e.ctx, time.Minute))
		e.mosquittoPub("mqttv5", "-q", "1", "-t", "e2e/sleepy/cmd", "-m", fmt.Sprintf("cycle-%d", cycle))
		require.NoError(t, c.Wake(e.ctx)) // returns after the buffered messages and PINGRESP
		select {
		case m := <-got:
			assert.Equal(t, fmt.Sprintf("cycle-%d", cycle), string(m.Payload))
		default:
			t.Fatalf("cycle %d: the buffered message was not delivered before PINGRESP", cycle)
		}
	}
}

func TestE2EQoSMinusOneAndShortAndPredefinedTopics(t *testing.T) {
	cfg := writeConfig(t, "[gateway.predefined]\n5 = \"e2e/pre/five\"\n")
	e := startE2E(t, "--config", cfg)
	lines, _ := e.mosquittoSub("mqttv5", 0, "#")

	// QoS -1: no CONNECT at all, predefined id and short name.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	anon, err := snclient.Dial(conn, e.udp, snclient.Options{})
	require.NoError(t, err)
	defer anon.Close()
	require.NoError(t, anon.Publish(e.ctx, snclient.Message{Topic: snclient.Predefined(5), Payload: []byte("m1"), QoS: mqttsn.QoSMinus1}))
	assert.Equal(t, "e2e/pre/five m1", e.line(lines))
	require.NoError(t, anon.Publish(e.ctx, snclient.Message{Topic: snclient.Short("zz"), Payload: []byte("m2"), QoS: mqttsn.QoSMinus1}))
	assert.Equal(t, "zz m2", e.line(lines))

	// A connected client on the same topic kinds, at QoS 1.
	c := e.snClient("kinds", snclient.Options{CleanSession: true})
	require.NoError(t, c.Publish(e.ctx, snclient.Message{Topic: snclient.Predefined(5), Payload: []byte("m3"), QoS: mqttsn.QoS1}))
	assert.Equal(t, "e2e/pre/five m3", e.line(lines))
	require.NoError(t, c.Publish(e.ctx, snclient.Message{Topic: snclient.Short("ab"), Payload: []byte("m4"), QoS: mqttsn.QoS1}))
	assert.Equal(t, "ab m4", e.line(lines))
}
