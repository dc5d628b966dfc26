package simulator

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// commandQueue bounds the commands waiting for a device.
const commandQueue = 64

// device is one simulated sensor or actuator. Its fields are owned by its
// run goroutine, except sentOK, which the checker reads after run returns,
// and the command queue.
type device struct {
	sim        *Sim
	g          *Group
	st         *profileStats
	name       string
	topic      string
	n          int
	rng        *rand.Rand
	c          *client.Client
	ep         endpoint
	seq        uint64
	sentOK     seqSet // messages the gateway took (acknowledged at QoS 1 and 2)
	cmds       chan client.Message
	status     deviceStatus
	readings   readings
	bulb       bulbState
	subscribed bool
	lostMu     sync.Mutex
	lostSignal chan struct{} // closed by OnConnectionLost, replaced on connect
}

type deviceStatus int

const (
	statusOff deviceStatus = iota
	statusConnected
	statusAsleep
)

// readings are a sensor's drifting values.
type readings struct {
	temperature, humidity, battery float64
	linkquality                    int
}

func (s *Sim) newDevice(g *Group, n, index int, chk *checker) *device {
	name := g.deviceName(s.f.Base, n)
	d := &device{
		sim:   s,
		g:     g,
		st:    s.stats[g.Profile],
		name:  name,
		topic: g.deviceTopic(s.f.Base, name, n),
		n:     n,
		rng:   rand.New(rand.NewPCG(s.f.Seed, uint64(index)+1<<32)),
		cmds:  make(chan client.Message, commandQueue),
	}
	d.readings = readings{
		temperature: 18 + 6*d.rng.Float64(),
		humidity:    35 + 25*d.rng.Float64(),
		battery:     60 + 40*d.rng.Float64(),
		linkquality: 60 + d.rng.IntN(195),
	}
	d.bulb = newBulbState()
	if chk != nil {
		chk.watch(d)
	}
	return d
}

// setStatus moves the device between the gauges of Progress.
func (d *device) setStatus(st deviceStatus) {
	if d.status == st {
		return
	}
	switch d.status {
	case statusConnected:
		d.sim.connected.Add(-1)
	case statusAsleep:
		d.sim.asleep.Add(-1)
	}
	switch st {
	case statusConnected:
		d.sim.connected.Add(1)
	case statusAsleep:
		d.sim.asleep.Add(1)
	}
	d.status = st
}

// run is the device's life: start after delay, dial, behave as its
// profile says until ctx ends or its messages are sent, and leave.
func (d *device) run(ctx context.Context, lk linker, impair *ImpairOptions, delay time.Duration, sensorsDone <-chan struct{}) {
	if !sleepCtx(ctx, delay) {
		return
	}
	if impair != nil {
		// Each device's radio meets its own fate, repeatably.
		own := *impair
		own.Seed = d.rng.Uint64()
		impair = &own
	}
	c, ep, err := d.sim.dial(lk, d.name, impair, client.Options{
		KeepAlive:    d.g.KeepAlive,
		CleanSession: d.g.CleanSession,
		Logger:       d.sim.log.With("device", d.name),
		Handler:      d.handle,
		OnConnectionLost: func(error) {
			d.lostMu.Lock()
			if d.lostSignal != nil {
				close(d.lostSignal)
				d.lostSignal = nil
			}
			d.lostMu.Unlock()
		},
	})
	if err != nil {
		d.st.errors.Add(1)
		d.sim.log.Error("device link", "device", d.name, "err", err)
		return
	}
	d.c, d.ep = c, ep
	defer func() {
		d.setStatus(statusOff)
		c.Close()
	}()
	switch d.g.Profile {
	case Environment, Event:
		d.runSensor(ctx)
	case Sleepy:
		d.runSleepy(ctx)
	case Bulb:
		d.runBulb(ctx, sensorsDone)
	}
	if d.status != statusOff {
		disconnect(c)
	}
}

// handle queues a command for the run goroutine; it runs on the client's
// dispatcher.
func (d *device) handle(m client.Message) {
	select {
	case d.cmds <- m:
	default:
		d.st.errors.Add(1) // a device that cannot keep up drops commands
	}
}

// ensureConnected connects, or reconnects after a lost session, retrying
// every RetryInterval until ctx ends. It reports whether the device is
// connected.
func (d *device) ensureConnected(ctx context.Context) bool {
	if d.g.QoS == mqttsn.QoSMinus1 && d.g.Profile != Bulb && d.g.Profile != Sleepy {
		return true // no session at QoS -1
	}
	for d.c.State() != client.StateActive {
		d.setStatus(statusOff)
		d.lostMu.Lock()
		d.lostSignal = make(chan struct{})
		d.lostMu.Unlock()
		err := d.c.Connect(ctx)
		if err == nil {
			d.setStatus(statusConnected)
			if err := d.afterConnect(ctx); err == nil {
				return true
			} else if ctx.Err() == nil {
				d.st.errors.Add(1)
				d.sim.log.Warn("device subscribe", "device", d.name, "err", err)
			}
		} else if ctx.Err() == nil {
			d.st.errors.Add(1)
			d.sim.log.Warn("device connect", "device", d.name, "err", err)
		}
		if !sleepCtx(ctx, d.sim.f.RetryInterval) {
			return false
		}
	}
	return true
}

// afterConnect subscribes a device that takes commands, once per session
// the gateway keeps.
func (d *device) afterConnect(ctx context.Context) error {
	if d.subscribed && !d.g.CleanSession {
		return nil
	}
	var topics []string
	switch d.g.Profile {
	case Sleepy:
		topics = []string{d.topic + "/set"}
	case Bulb:
		topics = []string{d.topic + "/set", d.topic + "/get"}
	}
	for _, t := range topics {
		if _, _, err := d.c.Subscribe(ctx, client.TopicName(t), mqttsn.QoS1); err != nil {
			return err
		}
	}
	d.subscribed = true
	return nil
}

// done reports whether the device has sent all its messages.
func (d *device) done() bool {
	return d.sim.f.Messages > 0 && d.seq >= uint64(d.sim.f.Messages)
}

// nextWait returns the interval varied by the jitter.
func (d *device) nextWait() time.Duration {
	w := d.g.Interval
	if j := d.g.Jitter; j > 0 {
		w += time.Duration(d.rng.Int64N(2*int64(j)+1)) - j
	}
	return max(w, 0)
}

// publish sends one message with the next sequence number, and accounts
// for it. fields are the profile's readings; retain is the bulb's.
func (d *device) publish(ctx context.Context, fields map[string]any, retain bool) {
	d.seq++
	fields["seq"] = d.seq
	fields["ts"] = time.Now().UnixNano()
	payload, err := json.Marshal(fields)
	if err != nil { // the profiles marshal plain values only
		d.st.errors.Add(1)
		return
	}
	if pad := d.g.PayloadSize - len(payload); pad > 0 {
		fields["pad"] = strings.Repeat("x", max(pad-9, 0)) // ,"pad":"" is 9 octets
		payload, _ = json.Marshal(fields)
	}
	topic := client.TopicName(d.topic)
	d.st.sent.Add(1)
	t0 := time.Now()
	err = d.c.Publish(ctx, client.Message{Topic: topic, Payload: payload, QoS: d.g.QoS, Retain: retain})
	if err != nil {
		if ctx.Err() == nil { // not the end of the run
			d.st.errors.Add(1)
			d.sim.log.Warn("publish", "device", d.name, "seq", d.seq, "err", err)
		}
		return
	}
	d.st.acked.Add(1)
	if d.g.QoS >= mqttsn.QoS1 {
		d.st.ackLatency.Record(time.Since(t0))
	}
	d.sentOK.add(d.seq)
}

// runSensor is the environment and event sensors' loop.
func (d *device) runSensor(ctx context.Context) {
	for !d.done() {
		if !d.ensureConnected(ctx) {
			return
		}
		if d.g.Profile == Event {
			d.burst(ctx)
		} else {
			d.publish(ctx, d.environment(), false)
		}
		if d.done() || !sleepCtx(ctx, d.nextWait()) {
			return
		}
	}
}

// environment drifts the readings and returns them. Temperature and
// humidity follow a random walk pulled back towards their daily mean, the
// battery only ever drains.
func (d *device) environment() map[string]any {
	r := &d.readings
	r.temperature += 0.05*d.rng.NormFloat64() + 0.02*(21-r.temperature)
	r.humidity += 0.2*d.rng.NormFloat64() + 0.02*(45-r.humidity)
	r.humidity = math.Min(math.Max(r.humidity, 0), 100)
	r.battery = math.Max(r.battery-0.01*d.rng.Float64(), 0)
	r.linkquality = min(max(r.linkquality+d.rng.IntN(7)-3, 0), 255)
	return map[string]any{
		"temperature": round2(r.temperature),
		"humidity":    round2(r.humidity),
		"battery":     int(r.battery),
		"linkquality": r.linkquality,
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// burst publishes one to four events a moment apart: a person walking past
// a motion sensor, a door opened and closed.
func (d *device) burst(ctx context.Context) {
	n := 1 + d.rng.IntN(4)
	for i := 0; i < n && !d.done(); i++ {
		if i > 0 && !sleepCtx(ctx, d.g.Interval/20) {
			return
		}
		var fields map[string]any
		if d.n%2 == 1 {
			fields = map[string]any{"occupancy": i%2 == 0}
		} else {
			fields = map[string]any{"contact": i%2 == 1}
		}
		fields["battery"] = int(d.readings.battery)
		fields["linkquality"] = d.readings.linkquality
		d.publish(ctx, fields, false)
	}
}

// runSleepy is the battery sensor's cycle (MQTT-SN 1.2 §6.14): publish,
// sleep, wake after the interval to collect buffered commands, connect
// again to publish the next reading.
func (d *device) runSleepy(ctx context.Context) {
	for !d.done() {
		if !d.ensureConnected(ctx) {
			return
		}
		d.publish(ctx, d.environment(), false)
		if d.done() {
			return
		}
		wait := d.nextWait()
		if err := d.c.Sleep(ctx, max(wait, time.Second)); err != nil {
			if ctx.Err() == nil {
				d.st.errors.Add(1)
				d.sim.log.Warn("sleep", "device", d.name, "err", err)
			}
			if !sleepCtx(ctx, wait) {
				return
			}
			continue
		}
		d.setStatus(statusAsleep)
		if !sleepCtx(ctx, wait) {
			// Wake once more so the run ends with nothing left buffered.
			d.wake(context.WithoutCancel(ctx))
			return
		}
		d.wake(ctx)
	}
}

// wake collects the commands buffered during sleep.
func (d *device) wake(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.sim.f.RetryCount+1)*d.sim.f.RetryInterval+time.Second)
	defer cancel()
	if err := d.c.Wake(ctx); err != nil {
		d.st.errors.Add(1)
		d.sim.log.Warn("wake", "device", d.name, "err", err)
	}
	d.drainCommands()
}

// drainCommands counts the commands the sleepy sensor received.
func (d *device) drainCommands() {
	for {
		select {
		case <-d.cmds:
			d.st.received.Add(1)
		default:
			return
		}
	}
}

// runBulb answers commands until the run ends. A bulb publishes only when
// its state is asked for or changes.
func (d *device) runBulb(ctx context.Context, sensorsDone <-chan struct{}) {
	for {
		if !d.ensureConnected(ctx) {
			return
		}
		if d.seq == 0 {
			d.publish(ctx, d.bulb.fields(), true)
		}
		d.lostMu.Lock()
		lost := d.lostSignal
		d.lostMu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-sensorsDone:
			if d.sim.f.Duration == 0 {
				return
			}
			sensorsDone = nil
		case <-lost:
		case m := <-d.cmds:
			d.st.received.Add(1)
			d.command(ctx, m)
		}
	}
}

// command applies a bulb command and publishes the resulting state.
func (d *device) command(ctx context.Context, m client.Message) {
	name := m.Topic.Name
	if name == "" {
		// An id the client learnt from SUBACK without its name.
		if id, ok := d.c.LookupTopic(d.topic + "/get"); ok && id == m.Topic.ID {
			name = d.topic + "/get"
		} else {
			name = d.topic + "/set"
		}
	}
	if strings.HasSuffix(name, "/set") {
		if err := d.bulb.apply(m.Payload); err != nil {
			d.st.rejected.Add(1)
			d.sim.log.Error("bulb command rejected", "device", d.name, "payload", string(m.Payload), "err", err)
			return
		}
	}
	d.publish(ctx, d.bulb.fields(), true)
}

// randomCommand returns a command for the device, as the commander sends
// it: mostly valid, now and then out of range to exercise rejection.
func (d *device) randomCommand(rng *rand.Rand) (topic string, payload []byte) {
	if d.g.Profile == Sleepy {
		return d.topic + "/set", []byte(`{"led":"blink"}`)
	}
	switch rng.IntN(10) {
	case 0:
		return d.topic + "/get", []byte(`{"state":""}`)
	case 1:
		return d.topic + "/set", []byte(`{"brightness":300}`)
	case 2:
		return d.topic + "/set", []byte(`{"state":"TOGGLE"}`)
	case 3, 4:
		return d.topic + "/set", []byte(`{"color":{"x":` + ftoa(rng.Float64()*0.7) + `,"y":` + ftoa(rng.Float64()*0.8) + `}}`)
	case 5, 6:
		return d.topic + "/set", []byte(`{"color_temp":` + itoa(153+rng.IntN(348)) + `}`)
	default:
		return d.topic + "/set", []byte(`{"state":"ON","brightness":` + itoa(rng.IntN(255)) + `}`)
	}
}

// sleepCtx waits d, reporting false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
