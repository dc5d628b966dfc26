package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/BurntSushi/toml"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/transport"
)

const configUsage = `usage: snwgw config check [PATH]

Validates the configuration file PATH (without PATH, the built-in defaults)
and prints the configuration serve would run, every default written out.
`

// runConfig implements `snwgw config check [PATH]`.
func runConfig(args []string, stdout io.Writer) error {
	if isHelp(args) || len(args) == 2 && args[0] == "check" && isHelp(args[1:]) {
		return helpRequested{configUsage}
	}
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: snwgw config check [PATH]"}
	}
	if len(args) > 2 {
		return usageError{"config check takes at most one path"}
	}
	path := ""
	if len(args) == 2 {
		path = args[1]
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	eff, err := cfg.effective()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# %s is valid; the effective configuration, defaults included:\n", describe(path))
	return toml.NewEncoder(stdout).Encode(eff)
}

func describe(path string) string {
	if path == "" {
		return "the built-in default configuration"
	}
	return path
}

// effective returns the configuration serve would run, with every default
// written out.
func (c *Config) effective() (*Config, error) {
	e := *c
	e.Version = 1
	e.Persistence = c.Persistence.withDefaults()
	if e.Log.Level == "" {
		e.Log.Level = "info"
	}
	if e.Log.Format == "" {
		e.Log.Format = "text"
	}
	gopts, err := c.gatewayOptions(nil)
	if err != nil {
		return nil, err
	}
	g := gopts.WithDefaults()
	e.Gateway = GatewayConfig{
		ID:                    int(g.GatewayID),
		AdvertiseInterval:     Duration{g.AdvertiseInterval},
		RetryInterval:         Duration{g.RetryInterval},
		RetryCount:            g.RetryCount,
		KeepAliveTolerance:    g.KeepAliveTolerance,
		AllowZeroKeepAlive:    g.AllowZeroKeepAlive,
		MaxSleepDuration:      Duration{g.MaxSleepDuration},
		SessionExpiry:         Duration{g.SessionExpiry},
		MaxClientIDLength:     g.MaxClientIDLength,
		MaxSessions:           g.MaxSessions,
		MaxTopicsPerClient:    g.MaxTopicsPerClient,
		SleepBuffer:           g.SleepBuffer,
		SleepBufferPolicy:     string(g.SleepBufferPolicy),
		QoSMinusOneTopicNames: g.QoSMinusOneTopicNames,
		Shards:                g.Shards,

		MaxTopicBytesPerClient: Size(g.MaxTopicBytesPerClient),
		MaxTopicBytes:          Size(g.MaxTopicBytes),
		MaxSessionsPerIP:       g.MaxSessionsPerIP,
	}
	if len(c.Gateway.Predefined) > 0 {
		e.Gateway.Predefined = c.Gateway.Predefined
	}
	if len(c.Gateway.PredefinedPerClient) > 0 {
		e.Gateway.PredefinedPerClient = c.Gateway.PredefinedPerClient
	}
	e.Auth = e.Auth.withDefaults()
	if len(e.UDP) == 0 && len(e.Serial) == 0 {
		e.UDP = []UDPConfig{{}}
	}
	e.UDP = append([]UDPConfig(nil), e.UDP...)
	for i := range e.UDP {
		u := &e.UDP[i]
		if u.Address == "" {
			u.Address = ":1883"
		}
		if u.ReceiveBuffer == 0 {
			u.ReceiveBuffer = transport.DefaultRecvBuffer
		}
		if u.MaxPacketSize == 0 {
			u.MaxPacketSize = 65535
		}
		if len(u.MulticastGroups) == 0 {
			u.MulticastGroups = nil
		}
		if len(u.MulticastInterfaces) == 0 {
			u.MulticastInterfaces = nil
		}
		if u.Advertise == nil {
			t := true
			u.Advertise = &t
		}
	}
	e.Serial = append([]SerialConfig(nil), e.Serial...)
	for i := range e.Serial {
		s := &e.Serial[i]
		if s.Baud == 0 {
			s.Baud = transport.DefaultBaudRate
		}
		if s.DataBits == 0 {
			s.DataBits = transport.DefaultDataBits
		}
		if s.Parity == "" {
			s.Parity = "none"
		}
		if s.StopBits == "" {
			s.StopBits = "1"
		}
		if s.Framing == "" {
			s.Framing = transport.FramingRaw
		}
		if s.XBeeAPIMode == 0 {
			s.XBeeAPIMode = 2
		}
		if s.MaxPacketSize == 0 {
			s.MaxPacketSize = transport.DefaultRawMaxPacket
			if s.Framing == transport.FramingXBee {
				s.MaxPacketSize = transport.DefaultXBeeMaxPayload
			}
		}
	}
	if len(e.Broker.Listeners) == 0 {
		e.Broker.Listeners = []ListenerConfig{{}}
	}
	e.Broker.Listeners = append([]ListenerConfig(nil), e.Broker.Listeners...)
	for i := range e.Broker.Listeners {
		l := &e.Broker.Listeners[i]
		l.Address = l.address()
		if l.Protocol == "" {
			l.Protocol = protocolMQTT
		}
		l.WebSocketPath = l.websocketPath()
		if l.MaxConnections == 0 {
			l.MaxConnections = mqttcore.DefaultMaxConnections
		}
		if l.MaxPacketSize == 0 {
			l.MaxPacketSize = mqttcore.DefaultMaxPacketSize
		}
		if l.ConnectTimeout.Duration == 0 {
			l.ConnectTimeout = Duration{mqttcore.DefaultConnectTimeout}
		}
	}
	if e.Broker.MaxQueued == 0 {
		e.Broker.MaxQueued = mqttcore.DefaultMaxQueued
	}
	if e.Broker.ReceiveMaximum == 0 {
		e.Broker.ReceiveMaximum = mqttcore.DefaultReceiveMaximum
	}
	if e.Broker.SysInterval.Duration == 0 {
		e.Broker.SysInterval = Duration{mqttcore.DefaultSysInterval}
	}
	return &e, nil
}

// MarshalTOML writes a size back in bytes.
func (s Size) MarshalTOML() ([]byte, error) { return []byte(strconv.Itoa(int(s))), nil }
