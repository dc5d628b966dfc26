package simulator

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/transport"
)

// SerialLink returns the link options of a serial line to a gateway: the
// device, its baud rate (0: transport's default), the framing ("raw" or
// "xbee"), for XBee the API mode (1 or 2) and the gateway's XBee address.
// 8 data bits, no parity and one stop bit, as MQTT-SN radios use.
func SerialLink(device string, baud int, framing string, apiMode int, gateway string) (transport.SerialOptions, net.Addr, error) {
	o := transport.SerialOptions{Device: device, BaudRate: baud}
	switch strings.ToLower(framing) {
	case "", transport.FramingRaw:
		o.Framing = transport.FramingRaw
		if gateway != "" {
			return o, nil, fmt.Errorf("%w: a raw serial line has one peer; no gateway address is needed", ErrInvalidFleet)
		}
		return o, nil, nil
	case transport.FramingXBee:
		o.Framing = transport.FramingXBee
		switch apiMode {
		case 0, 1:
		case 2:
			o.XBee.Escaped = true
		default:
			return o, nil, fmt.Errorf("%w: XBee API mode %d is not 1 or 2", ErrInvalidFleet, apiMode)
		}
		if gateway == "" {
			return o, nil, fmt.Errorf("%w: XBee framing needs the gateway's XBee address", ErrInvalidFleet)
		}
		a, err := transport.ParseXBeeAddr(gateway)
		if err != nil {
			return o, nil, fmt.Errorf("%w: gateway XBee address: %w", ErrInvalidFleet, err)
		}
		return o, a, nil
	default:
		return o, nil, fmt.Errorf("%w: framing %q is not raw or xbee", ErrInvalidFleet, framing)
	}
}

// duration is a TOML duration string such as "1.5s".
type duration time.Duration

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// The fleet file, as TOML. Tags live here only; Fleet is the library's.
type fleetFile struct {
	Seed            uint64      `toml:"seed"`
	Duration        duration    `toml:"duration"`
	Messages        int         `toml:"messages"`
	Base            string      `toml:"base"`
	RetryInterval   duration    `toml:"retry_interval"`
	RetryCount      int         `toml:"retry_count"`
	Stagger         duration    `toml:"stagger"`
	CommandInterval duration    `toml:"command_interval"`
	Link            linkFile    `toml:"link"`
	Impairment      impairFile  `toml:"impairment"`
	Check           checkFile   `toml:"check"`
	Groups          []groupFile `toml:"group"`
}

type linkFile struct {
	UDP         string `toml:"udp"`
	Serial      string `toml:"serial"`
	Baud        int    `toml:"baud"`
	Framing     string `toml:"framing"`
	XBeeAPIMode int    `toml:"xbee_api_mode"`
	Gateway     string `toml:"gateway"`
}

type impairFields struct {
	Loss      float64  `toml:"loss"`
	Duplicate float64  `toml:"duplicate"`
	Reorder   float64  `toml:"reorder"`
	Delay     duration `toml:"delay"`
	Jitter    duration `toml:"jitter"`
}

type impairFile struct {
	impairFields
	Up   *impairFields `toml:"up"`
	Down *impairFields `toml:"down"`
}

type checkFile struct {
	MQTTSN bool     `toml:"mqttsn"`
	MQTT   string   `toml:"mqtt"`
	Grace  duration `toml:"grace"`
}

type groupFile struct {
	Profile      string   `toml:"profile"`
	Count        int      `toml:"count"`
	Name         string   `toml:"name"`
	Topic        string   `toml:"topic"`
	QoS          int      `toml:"qos"`
	Interval     duration `toml:"interval"`
	Jitter       duration `toml:"jitter"`
	PayloadSize  int      `toml:"payload_size"`
	CleanSession *bool    `toml:"clean_session"`
	KeepAlive    duration `toml:"keep_alive"`
}

func (i impairFields) impairment() Impairment {
	return Impairment{Loss: i.Loss, Duplicate: i.Duplicate, Reorder: i.Reorder, Delay: time.Duration(i.Delay), Jitter: time.Duration(i.Jitter)}
}

// FleetFileError locates a mistake in a fleet file.
type FleetFileError struct {
	Path string
	Line int // 0 when unknown
	Err  error
}

// Error names the file, and the line when known.
func (e *FleetFileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

// Unwrap returns the mistake, which wraps ErrInvalidFleet.
func (e *FleetFileError) Unwrap() error { return e.Err }

// LoadFleet reads a fleet file. Keys it does not know are errors, named
// with their line, so a misspelt option never goes unnoticed. The fleet is
// returned without defaults applied and without validation: callers
// override fields (command-line flags) before New does both.
func LoadFleet(path string) (Fleet, error) {
	var ff fleetFile
	md, err := toml.DecodeFile(path, &ff)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Fleet{}, &FleetFileError{Path: path, Line: pe.Position.Line, Err: fmt.Errorf("%w: %s", ErrInvalidFleet, pe.Message)}
		}
		return Fleet{}, &FleetFileError{Path: path, Err: fmt.Errorf("%w: %w", ErrInvalidFleet, err)}
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Fleet{}, &FleetFileError{Path: path, Err: fmt.Errorf("%w: unknown key %q", ErrInvalidFleet, und[0].String())}
	}
	f := Fleet{
		Seed:            ff.Seed,
		Duration:        time.Duration(ff.Duration),
		Messages:        ff.Messages,
		Base:            ff.Base,
		RetryInterval:   time.Duration(ff.RetryInterval),
		RetryCount:      ff.RetryCount,
		Stagger:         time.Duration(ff.Stagger),
		CommandInterval: time.Duration(ff.CommandInterval),
		Check:           Check{MQTTSN: ff.Check.MQTTSN, MQTT: ff.Check.MQTT, Grace: time.Duration(ff.Check.Grace)},
		Link:            Link{UDP: ff.Link.UDP},
	}
	if ff.Link.Serial != "" {
		f.Link.Serial, f.Link.SerialGateway, err = SerialLink(ff.Link.Serial, ff.Link.Baud, ff.Link.Framing, ff.Link.XBeeAPIMode, ff.Link.Gateway)
		if err != nil {
			return Fleet{}, &FleetFileError{Path: path, Err: fmt.Errorf("link: %w", err)}
		}
	}
	f.Up = ff.Impairment.impairment()
	f.Down = f.Up
	if ff.Impairment.Up != nil {
		f.Up = ff.Impairment.Up.impairment()
	}
	if ff.Impairment.Down != nil {
		f.Down = ff.Impairment.Down.impairment()
	}
	for _, g := range ff.Groups {
		grp := Group{
			Profile:     Profile(g.Profile),
			Count:       g.Count,
			Name:        g.Name,
			Topic:       g.Topic,
			QoS:         mqttsn.QoS(g.QoS),
			Interval:    time.Duration(g.Interval),
			Jitter:      time.Duration(g.Jitter),
			PayloadSize: g.PayloadSize,
			KeepAlive:   time.Duration(g.KeepAlive),
		}
		if g.QoS < -1 || g.QoS > 2 {
			return Fleet{}, &FleetFileError{Path: path, Err: fmt.Errorf("%w: group %s: QoS %d is not -1, 0, 1 or 2", ErrInvalidFleet, g.Profile, g.QoS)}
		}
		grp.CleanSession = DefaultCleanSession(grp.Profile)
		if g.CleanSession != nil {
			grp.CleanSession = *g.CleanSession
		}
		f.Groups = append(f.Groups, grp)
	}
	return f, nil
}

// DefaultCleanSession is the clean-session flag of a profile's devices when
// none is given: on, except for sleepy sensors, whose buffered commands
// live in the session.
func DefaultCleanSession(p Profile) bool { return p != Sleepy }
