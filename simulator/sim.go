package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/simulator/client"
)

// Sim runs one Fleet. Progress may be called from any goroutine while Run
// runs.
type Sim struct {
	f     Fleet
	log   *slog.Logger
	stats map[Profile]*profileStats

	connected, asleep atomic.Int64
	started           atomic.Int64 // Unix nanoseconds; 0 before Run
	running           atomic.Bool

	commands commandStats
	wg       sync.WaitGroup
}

// profileStats are the counters of one profile's devices.
type profileStats struct {
	devices                     int
	sent, acked, errors         atomic.Uint64
	received, rejected          atomic.Uint64
	ackLatency, deliveryLatency Histogram
	delivered, duplicated, lost atomic.Uint64
	lostQoS1, lostQoS2, dupQoS2 atomic.Uint64
	lostUnacked                 atomic.Uint64
	impairUpMu                  sync.Mutex
	impairUp, impairDown        ImpairStats
}

type commandStats struct {
	sent, acked, errors atomic.Uint64
}

// New checks the fleet and prepares a run.
func New(f Fleet) (*Sim, error) {
	f = f.WithDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{f: f, log: f.Logger, stats: make(map[Profile]*profileStats)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range Profiles {
		s.stats[p] = &profileStats{}
	}
	for _, g := range f.Groups {
		s.stats[g.Profile].devices += g.Count
	}
	return s, nil
}

// goFunc starts f as a goroutine that Run waits for.
func (s *Sim) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Progress is a snapshot of a running fleet.
type Progress struct {
	Elapsed      time.Duration
	Devices      int
	Connected    int64
	Asleep       int64
	Sent         uint64
	Acknowledged uint64
	Received     uint64 // commands received by devices
	Delivered    uint64 // messages seen by the checker
	Errors       uint64
}

// Progress returns the fleet's counters now.
func (s *Sim) Progress() Progress {
	p := Progress{Connected: s.connected.Load(), Asleep: s.asleep.Load()}
	if t := s.started.Load(); t != 0 {
		p.Elapsed = time.Since(time.Unix(0, t))
	}
	for _, st := range s.stats {
		p.Devices += st.devices
		p.Sent += st.sent.Load()
		p.Acknowledged += st.acked.Load()
		p.Received += st.received.Load()
		p.Delivered += st.deliveryLatency.Count()
		p.Errors += st.errors.Load()
	}
	return p
}

// ErrRunning: Run was called twice.
var ErrRunning = errors.New("simulator: already run")

// Run runs the fleet until its Duration ends, every sensor has sent its
// Messages, or ctx ends, then stops the devices, lets the checker collect
// what is still in flight (up to Check.Grace) and returns the report.
// An error means the fleet could not start: the link or the checker failed.
// Lost and duplicated messages are not errors; they are in the Report.
func (s *Sim) Run(ctx context.Context) (*Report, error) {
	if !s.running.CompareAndSwap(false, true) {
		return nil, ErrRunning
	}
	start := time.Now()
	var upImp *ImpairOptions
	if !s.f.Up.IsZero() || !s.f.Down.IsZero() {
		upImp = &ImpairOptions{Up: s.f.Up, Down: s.f.Down, Seed: s.f.Seed}
	}
	lk, err := newLinker(ctx, s.f.Link, upImp)
	if err != nil {
		return nil, err
	}
	defer lk.close()

	var chk *checker
	if s.f.Check.Enabled() {
		chk, err = s.startChecker(ctx, lk, start)
		if err != nil {
			return nil, err
		}
		defer chk.close()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.f.Duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, s.f.Duration)
		defer cancel()
	}
	s.started.Store(start.UnixNano())

	// Bulbs run until the sensors and the commander are done.
	sensorsDone := make(chan struct{})
	var sensors sync.WaitGroup
	var devices []*device
	i := 0
	for gi := range s.f.Groups {
		g := &s.f.Groups[gi]
		for n := 1; n <= g.Count; n++ {
			d := s.newDevice(g, n, i, chk)
			devices = append(devices, d)
			delay := time.Duration(i) * s.f.Stagger
			i++
			if g.Profile != Bulb {
				sensors.Add(1)
			}
			s.goFunc(func() {
				if g.Profile != Bulb {
					defer sensors.Done()
				}
				d.run(runCtx, lk, upImp, delay, sensorsDone)
			})
		}
	}
	var commanderDone chan struct{}
	if targets := commandTargets(devices); s.f.CommandInterval > 0 && len(targets) > 0 {
		commanderDone = make(chan struct{})
		s.goFunc(func() {
			defer close(commanderDone)
			s.runCommander(runCtx, lk, targets, sensorsDone)
		})
	}
	sensors.Wait()
	close(sensorsDone)
	s.wg.Wait()
	elapsed := time.Since(start)

	for _, d := range devices {
		if d.ep.impaired != nil {
			up, down := d.ep.impaired.Stats()
			st := d.st
			st.impairUpMu.Lock()
			st.impairUp, st.impairDown = st.impairUp.Add(up), st.impairDown.Add(down)
			st.impairUpMu.Unlock()
		}
	}
	if chk != nil {
		chk.settle(ctx, devices, s.f.Check.Grace)
		chk.account(devices)
	}
	r := s.report(elapsed, chk != nil, lk)
	return r, nil
}

// commandTargets are the devices the commander may address.
func commandTargets(devices []*device) []*device {
	var t []*device
	for _, d := range devices {
		if d.g.Profile == Bulb || d.g.Profile == Sleepy {
			t = append(t, d)
		}
	}
	return t
}

// dial opens a client on a new endpoint of the link; impair nil leaves it
// unimpaired.
func (s *Sim) dial(lk linker, name string, impair *ImpairOptions, opts client.Options) (*client.Client, endpoint, error) {
	ep, err := lk.open(name, impair)
	if err != nil {
		return nil, endpoint{}, err
	}
	opts.ClientID = name
	opts.Forwarder = ep.forwarder
	if opts.RetryInterval == 0 {
		opts.RetryInterval = s.f.RetryInterval
	}
	if opts.RetryCount == 0 {
		opts.RetryCount = s.f.RetryCount
	}
	if opts.MaxPacketSize == 0 {
		opts.MaxPacketSize = 4096 // a fleet of thousands keeps small read buffers
	}
	c, err := client.Dial(ep.conn, ep.gw, opts)
	if err != nil {
		ep.conn.Close()
		return nil, endpoint{}, err
	}
	return c, ep, nil
}

// runCommander publishes a command to a random bulb or sleepy sensor every
// CommandInterval, at QoS 1, until ctx ends or, in a run bounded by
// messages only, until the sensors are done.
func (s *Sim) runCommander(ctx context.Context, lk linker, targets []*device, sensorsDone <-chan struct{}) {
	c, _, err := s.dial(lk, "snwgw-sim-commander", nil, client.Options{KeepAlive: DefaultKeepAlive, CleanSession: true})
	if err != nil {
		s.log.Error("commander", "err", err)
		return
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		s.log.Error("commander connect", "err", err)
		return
	}
	defer disconnect(c)
	rng := rand.New(rand.NewPCG(s.f.Seed, 0xC0FFEE))
	t := time.NewTicker(s.f.CommandInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sensorsDone:
			if s.f.Duration == 0 {
				return
			}
			sensorsDone = nil // run on to the end of the Duration
			continue
		case <-t.C:
		}
		d := targets[rng.IntN(len(targets))]
		topic, payload := d.randomCommand(rng)
		s.commands.sent.Add(1)
		err := c.Publish(ctx, client.Message{Topic: client.TopicName(topic), Payload: payload, QoS: mqttsn.QoS1})
		switch {
		case err == nil:
			s.commands.acked.Add(1)
		case ctx.Err() != nil:
			return
		default:
			s.commands.errors.Add(1)
			s.log.Warn("command not acknowledged", "topic", topic, "err", err)
		}
	}
}

// disconnect ends a session politely, within a bounded time.
func disconnect(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}

func (s *Sim) startChecker(ctx context.Context, lk linker, start time.Time) (*checker, error) {
	filters := map[string]bool{}
	var list []string
	for _, g := range s.f.Groups {
		if f := g.checkFilter(s.f.Base); !filters[f] {
			filters[f] = true
			list = append(list, f)
		}
	}
	chk := newChecker(start)
	if s.f.Check.MQTT != "" {
		if err := chk.subscribeMQTT(ctx, s.f.Check.MQTT, list, s.log); err != nil {
			return nil, err
		}
		return chk, nil
	}
	devices := 0
	for _, g := range s.f.Groups {
		devices += g.Count
	}
	c, _, err := s.dial(lk, "snwgw-sim-checker", nil, client.Options{
		KeepAlive:    DefaultKeepAlive,
		CleanSession: true,
		MaxTopics:    2*devices + 64,
		QueueSize:    4096,
		Handler: func(m client.Message) {
			chk.observe(m.Topic.Name, m.Payload, time.Now())
		},
	})
	if err != nil {
		return nil, fmt.Errorf("simulator: checker: %w", err)
	}
	chk.sn = c
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("simulator: checker connect: %w", err)
	}
	for _, f := range list {
		if _, _, err := c.Subscribe(ctx, client.TopicName(f), mqttsn.QoS2); err != nil {
			c.Close()
			return nil, fmt.Errorf("simulator: checker subscribe %s: %w", f, err)
		}
	}
	return chk, nil
}
