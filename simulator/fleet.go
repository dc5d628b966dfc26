package simulator

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// Profile is the behaviour of a kind of device.
type Profile string

// The device profiles.
const (
	// Environment is a periodic sensor publishing temperature, humidity and
	// battery as JSON, drifting as real readings do.
	Environment Profile = "env"
	// Event is a motion or contact sensor publishing bursts of events at
	// random times.
	Event Profile = "event"
	// Sleepy is a battery sensor that sleeps between readings, wakes on
	// schedule, publishes and collects the commands the gateway buffered.
	Sleepy Profile = "sleepy"
	// Bulb is a colour bulb in the manner of a zigbee2mqtt ZB_A60_RGBCW
	// device: commands on <topic>/set, reads on <topic>/get, its state
	// published retained on <topic>.
	Bulb Profile = "bulb"
)

// Profiles lists every profile, in report order.
var Profiles = []Profile{Environment, Event, Sleepy, Bulb}

// Defaults for Fleet and Group fields left at their zero value.
const (
	DefaultBase          = "zigbee2mqtt"
	DefaultName          = "{profile}-{n}"
	DefaultTopic         = "{base}/{name}"
	DefaultInterval      = 10 * time.Second
	DefaultKeepAlive     = time.Minute
	DefaultRetryInterval = time.Second
	DefaultRetryCount    = 5
	DefaultGrace         = 5 * time.Second
	DefaultStagger       = 2 * time.Millisecond
)

// Fleet describes a simulated fleet.
type Fleet struct {
	// Link is how the devices reach the gateway.
	Link Link
	// Impairment applies to every device's traffic in each direction.
	Up, Down Impairment
	// Seed makes a run repeatable: impairment, jitter and readings.
	Seed uint64
	// Groups are the devices, by profile.
	Groups []Group
	// Duration bounds the run; 0 runs until Messages are sent or the
	// context ends.
	Duration time.Duration
	// Messages is how many messages each sensor publishes (bulbs publish on
	// command); 0 means no limit.
	Messages int
	// Base replaces {base} in names and topics.
	Base string
	// RetryInterval and RetryCount are the devices' T_retry and N_retry.
	RetryInterval time.Duration
	RetryCount    int
	// Stagger separates the start of consecutive devices, sparing the
	// gateway a connect storm.
	Stagger time.Duration
	// CommandInterval is how often a commander (an unimpaired MQTT-SN
	// client of its own) sends a command to a random bulb or sleepy
	// sensor, at QoS 1; 0 sends none.
	CommandInterval time.Duration
	// Check, when set, checks delivery on the far side.
	Check Check
	// Logger receives device errors and rejected commands.
	Logger *slog.Logger
}

// Check configures the subscriber that verifies delivery.
type Check struct {
	// MQTTSN subscribes through the fleet's own link, unimpaired, as an
	// MQTT-SN client.
	MQTTSN bool
	// MQTT is an MQTT broker's address (tcp://host:port or host:port),
	// subscribed to with MQTT 5.
	MQTT string
	// Grace is how long, after the last device stopped, the checker may
	// take to see every acknowledged message.
	Grace time.Duration
}

// Enabled reports whether a checker runs.
func (c Check) Enabled() bool { return c.MQTTSN || c.MQTT != "" }

// Group is a number of devices of one profile.
type Group struct {
	Profile Profile
	Count   int
	// Name is the device name pattern: {n} is the device's number in the
	// group (from 1), {profile} and {base} as their names say; without {n}
	// the number is appended.
	Name string
	// Topic is the data topic pattern, with {name} and {base}. A bulb's
	// commands are on Topic/set and its reads on Topic/get; a sleepy
	// sensor's commands on Topic/set.
	Topic string
	// QoS of the data messages: -1, 0, 1 or 2. QoS -1 needs no session,
	// and is allowed for environment and event sensors only, on topic
	// names the gateway accepts in that form.
	QoS mqttsn.QoS
	// Interval between messages (for a sleepy sensor, its sleep), varied
	// by up to Jitter either way.
	Interval time.Duration
	Jitter   time.Duration
	// PayloadSize pads every message to at least this many octets.
	PayloadSize int
	// CleanSession is asked for in CONNECT. A sleepy sensor needs its
	// session kept, so its group must leave it false.
	CleanSession bool
	// KeepAlive is the keep-alive period in CONNECT.
	KeepAlive time.Duration
}

// WithDefaults returns the fleet with defaults in place of zero values.
func (f Fleet) WithDefaults() Fleet {
	if f.Base == "" {
		f.Base = DefaultBase
	}
	if f.RetryInterval == 0 {
		f.RetryInterval = DefaultRetryInterval
	}
	if f.RetryCount == 0 {
		f.RetryCount = DefaultRetryCount
	}
	if f.Stagger == 0 {
		f.Stagger = DefaultStagger
	}
	if f.Check.Grace == 0 {
		f.Check.Grace = DefaultGrace
	}
	f.Groups = append([]Group(nil), f.Groups...)
	for i := range f.Groups {
		g := &f.Groups[i]
		if g.Name == "" {
			g.Name = DefaultName
		}
		if g.Topic == "" {
			g.Topic = DefaultTopic
		}
		if g.Interval == 0 {
			g.Interval = DefaultInterval
		}
		if g.KeepAlive == 0 {
			g.KeepAlive = DefaultKeepAlive
		}
	}
	return f
}

// Validate reports what cannot run, naming the group.
func (f Fleet) Validate() error {
	if err := f.Link.Validate(); err != nil {
		return err
	}
	if err := f.Up.Validate(); err != nil {
		return fmt.Errorf("impairment up: %w", err)
	}
	if err := f.Down.Validate(); err != nil {
		return fmt.Errorf("impairment down: %w", err)
	}
	if len(f.Groups) == 0 {
		return fmt.Errorf("%w: no devices", ErrInvalidFleet)
	}
	if f.Duration < 0 || f.Messages < 0 || f.RetryInterval < 0 || f.Stagger < 0 || f.CommandInterval < 0 || f.Check.Grace < 0 {
		return fmt.Errorf("%w: negative duration or count", ErrInvalidFleet)
	}
	if f.Duration == 0 && f.Messages == 0 {
		return fmt.Errorf("%w: neither a duration nor a message count bounds the run", ErrInvalidFleet)
	}
	if f.Link.rawSerial() {
		devices := 0
		for _, g := range f.Groups {
			devices += g.Count
		}
		if devices != 1 || f.Check.MQTTSN || f.CommandInterval > 0 {
			return fmt.Errorf("%w: a raw serial line carries one device, and no MQTT-SN checker or commander beside it (check with MQTT instead)", ErrInvalidFleet)
		}
	}
	names := make(map[string]bool)
	for i, g := range f.Groups {
		if err := g.validate(); err != nil {
			return fmt.Errorf("group %d (%s): %w", i+1, g.Profile, err)
		}
		for n := 1; n <= g.Count; n++ {
			name := g.deviceName(f.Base, n)
			if names[name] {
				return fmt.Errorf("%w: group %d: device name %q used twice", ErrInvalidFleet, i+1, name)
			}
			names[name] = true
		}
	}
	return nil
}

func (g Group) validate() error {
	switch g.Profile {
	case Environment, Event, Sleepy, Bulb:
	default:
		return fmt.Errorf("%w: unknown profile %q (want env, event, sleepy or bulb)", ErrInvalidFleet, g.Profile)
	}
	switch {
	case g.Count < 0:
		return fmt.Errorf("%w: negative count", ErrInvalidFleet)
	case g.QoS < mqttsn.QoSMinus1 || g.QoS > mqttsn.QoS2:
		return fmt.Errorf("%w: QoS %d is not -1, 0, 1 or 2", ErrInvalidFleet, g.QoS)
	case g.QoS == mqttsn.QoSMinus1 && (g.Profile == Sleepy || g.Profile == Bulb):
		return fmt.Errorf("%w: QoS -1 has no session, which a %s device needs", ErrInvalidFleet, g.Profile)
	case g.Interval <= 0 || g.Jitter < 0 || g.Jitter > g.Interval:
		return fmt.Errorf("%w: interval must be positive and jitter between 0 and the interval", ErrInvalidFleet)
	case g.PayloadSize < 0 || g.PayloadSize > 65000:
		return fmt.Errorf("%w: payload size %d is outside 0-65000", ErrInvalidFleet, g.PayloadSize)
	case g.KeepAlive < 0 || g.KeepAlive > 65535*time.Second:
		return fmt.Errorf("%w: keep-alive outside 0-65535 s", ErrInvalidFleet)
	case g.Profile == Sleepy && g.CleanSession:
		return fmt.Errorf("%w: a sleepy sensor keeps its session; clean session must be off", ErrInvalidFleet)
	case !strings.Contains(g.Topic, "{name}") && !strings.Contains(g.Topic, "{n}"):
		return fmt.Errorf("%w: topic %q must contain {name} or {n}, or every device would share it", ErrInvalidFleet, g.Topic)
	}
	if strings.ContainsAny(g.Topic, "+#") || strings.ContainsAny(g.Name, "+#/") {
		return fmt.Errorf("%w: names and topics cannot hold wildcards, nor names '/'", ErrInvalidFleet)
	}
	return nil
}

// deviceName expands the group's Name for device n.
func (g Group) deviceName(base string, n int) string {
	name := g.Name
	if !strings.Contains(name, "{n}") {
		name += "-{n}"
	}
	return strings.NewReplacer("{n}", strconv.Itoa(n), "{profile}", string(g.Profile), "{base}", base).Replace(name)
}

// deviceTopic expands the group's Topic for the device called name.
func (g Group) deviceTopic(base, name string, n int) string {
	return strings.NewReplacer("{name}", name, "{n}", strconv.Itoa(n), "{base}", base).Replace(g.Topic)
}

// checkFilter returns the topic filter that covers the group's topics: the
// levels before the first one holding a placeholder, then '#'.
func (g Group) checkFilter(base string) string {
	levels := strings.Split(strings.ReplaceAll(g.Topic, "{base}", base), "/")
	var fixed []string
	for _, l := range levels {
		if strings.Contains(l, "{") {
			break
		}
		fixed = append(fixed, l)
	}
	return strings.Join(append(fixed, "#"), "/")
}
