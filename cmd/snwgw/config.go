package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"go.bug.st/serial"

	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttcore/websocket"
	"github.com/snwgw/snwgw/transport"
)

// Config is gateway.toml. Every field's zero value means "the default", so
// an empty file, or no file at all, is a working gateway; the defaults are
// written out, with a comment each, in the repository's gateway.toml.
type Config struct {
	Version int            `toml:"version"`
	Log     LogConfig      `toml:"log"`
	Gateway GatewayConfig  `toml:"gateway"`
	UDP     []UDPConfig    `toml:"udp"`
	Serial  []SerialConfig `toml:"serial"`
	Broker  BrokerConfig   `toml:"broker"`
	Bridges []BridgeConfig `toml:"bridge"`
	Auth    AuthConfig     `toml:"auth"`
	DTLS    []DTLSConfig   `toml:"dtls"`

	Persistence PersistenceConfig `toml:"persistence"`
}

// LogConfig selects the log output.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text, json
}

// GatewayConfig maps onto gateway.Options.
type GatewayConfig struct {
	ID                    int                          `toml:"id"`
	AdvertiseInterval     Duration                     `toml:"advertise_interval"`
	RetryInterval         Duration                     `toml:"retry_interval"`
	RetryCount            int                          `toml:"retry_count"`
	KeepAliveTolerance    float64                      `toml:"keepalive_tolerance"`
	AllowZeroKeepAlive    bool                         `toml:"allow_zero_keepalive"`
	MaxSleepDuration      Duration                     `toml:"max_sleep_duration"`
	SessionExpiry         Duration                     `toml:"session_expiry"`
	MaxClientIDLength     int                          `toml:"max_client_id_length"`
	MaxSessions           int                          `toml:"max_sessions"`
	MaxTopicsPerClient    int                          `toml:"max_topics_per_client"`
	SleepBuffer           int                          `toml:"sleep_buffer"`
	SleepBufferPolicy     string                       `toml:"sleep_buffer_policy"`
	QoSMinusOneTopicNames bool                         `toml:"qos_minus_one_topic_names"`
	Shards                int                          `toml:"shards"`
	Predefined            map[string]string            `toml:"predefined"`
	PredefinedPerClient   map[string]map[string]string `toml:"predefined_per_client"`

	// Bounds on the bytes of registered topic names.
	MaxTopicBytesPerClient Size `toml:"max_topic_bytes_per_client"`
	MaxTopicBytes          Size `toml:"max_topic_bytes"`
	MaxSessionsPerIP       int  `toml:"max_sessions_per_ip"`
}

// UDPConfig is one [[udp]] link.
type UDPConfig struct {
	Address             string   `toml:"address"`
	ReceiveBuffer       Size     `toml:"receive_buffer"`
	MulticastGroups     []string `toml:"multicast_groups"`
	MulticastInterfaces []string `toml:"multicast_interfaces"`
	Broadcast           string   `toml:"broadcast"`
	Advertise           *bool    `toml:"advertise"`
	MaxPacketSize       int      `toml:"max_packet_size"`
}

// SerialConfig is one [[serial]] link.
type SerialConfig struct {
	Device        string `toml:"device"`
	Baud          int    `toml:"baud"`
	DataBits      int    `toml:"data_bits"`
	Parity        string `toml:"parity"`
	StopBits      string `toml:"stop_bits"`
	RTSCTS        bool   `toml:"rtscts"`
	Framing       string `toml:"framing"`
	XBeeAPIMode   int    `toml:"xbee_api_mode"`
	MaxPacketSize int    `toml:"max_packet_size"`
	Advertise     bool   `toml:"advertise"`
}

// BrokerConfig maps onto mqttcore.Options.
type BrokerConfig struct {
	MaxQueued        int              `toml:"max_queued"`
	ReceiveMaximum   int              `toml:"receive_maximum"`
	MaxSessionExpiry Duration         `toml:"max_session_expiry"`
	SysInterval      Duration         `toml:"sys_interval"`
	Listeners        []ListenerConfig `toml:"listener"`
}

// ListenerConfig is one [[broker.listener]]: MQTT 3.1.1/5.0 over TCP, or
// TLS when a certificate is given; with protocol "websocket", MQTT over
// WebSocket (ws, or wss with a certificate).
type ListenerConfig struct {
	Address               string   `toml:"address"`
	Protocol              string   `toml:"protocol"`
	WebSocketPath         string   `toml:"websocket_path"`
	CertFile              string   `toml:"cert_file"`
	KeyFile               string   `toml:"key_file"`
	ClientCAFile          string   `toml:"client_ca_file"`
	UseIdentityAsUsername bool     `toml:"use_identity_as_username"`
	MaxConnections        int      `toml:"max_connections"`
	MaxPacketSize         Size     `toml:"max_packet_size"`
	MaxKeepAlive          Duration `toml:"max_keepalive"`
	ConnectTimeout        Duration `toml:"connect_timeout"`
}

// errIdentityWithoutClientCA reports use_identity_as_username on a
// listener that does not verify client certificates: the user name would
// have nothing to stand on.
var errIdentityWithoutClientCA = errors.New("use_identity_as_username needs client_ca_file (with cert_file and key_file)")

// Listener protocols (protocol = ...).
const (
	protocolMQTT      = "mqtt"
	protocolWebSocket = "websocket"
)

// options maps the table onto mqttcore.ListenerOptions and a TLS
// configuration (nil for plain TCP).
func (l ListenerConfig) options(log *slog.Logger) (mqttcore.ListenerOptions, *tls.Config, error) {
	o := mqttcore.ListenerOptions{
		MaxConnections: l.MaxConnections,
		MaxPacketSize:  uint32(max(l.MaxPacketSize, 0)),
		MaxKeepAlive:   uint16(min(l.MaxKeepAlive.Duration/time.Second, 65535)),
		ConnectTimeout: l.ConnectTimeout.Duration,
		Logger:         log,

		UseIdentityAsUsername: l.UseIdentityAsUsername,
	}
	if l.MaxPacketSize < 0 {
		return o, nil, fmt.Errorf("max_packet_size %d is negative", l.MaxPacketSize)
	}
	switch l.Protocol {
	case "", protocolMQTT, protocolWebSocket:
	default:
		return o, nil, fmt.Errorf("protocol %q is not %q or %q", l.Protocol, protocolMQTT, protocolWebSocket)
	}
	if l.WebSocketPath != "" && !strings.HasPrefix(l.WebSocketPath, "/") {
		return o, nil, fmt.Errorf("websocket_path %q does not start with \"/\"", l.WebSocketPath)
	}
	if l.UseIdentityAsUsername && l.ClientCAFile == "" {
		return o, nil, fmt.Errorf("listener %s: %w", l.address(), errIdentityWithoutClientCA)
	}
	// Validate what was set; Serve fills the zero fields with defaults.
	check := o
	if check.MaxPacketSize == 0 {
		check.MaxPacketSize = mqttcore.DefaultMaxPacketSize
	}
	if err := check.Validate(); err != nil {
		return o, nil, err
	}
	if l.CertFile == "" && l.KeyFile == "" && l.ClientCAFile == "" {
		return o, nil, nil
	}
	cfg, err := mqttcore.LoadTLSConfig(l.CertFile, l.KeyFile, l.ClientCAFile)
	return o, cfg, err
}

// address is the configured address or the protocol's default: 1883 and
// 8883 for MQTT (IANA), 8083 and 8084 for MQTT over WebSocket (the ports
// EMQX and others have made the convention).
func (l ListenerConfig) address() string {
	ws := l.Protocol == protocolWebSocket
	switch {
	case l.Address != "":
		return l.Address
	case ws && l.CertFile != "":
		return ":8084"
	case ws:
		return ":8083"
	case l.CertFile != "":
		return ":8883"
	}
	return ":1883"
}

// websocketPath is the configured HTTP path or the default.
func (l ListenerConfig) websocketPath() string {
	if l.WebSocketPath != "" {
		return l.WebSocketPath
	}
	return websocket.DefaultPath
}

// listen opens the listener's socket for Broker.Serve, with tlsConfig from
// options, and names it for the logs: "tcp ADDR" or "tls ADDR" for MQTT,
// "ws ADDR" or "wss ADDR" for MQTT over WebSocket.
func (l ListenerConfig) listen(tlsConfig *tls.Config, log *slog.Logger) (net.Listener, string, error) {
	if l.Protocol != protocolWebSocket {
		nl, err := mqttcore.Listen("tcp", l.address(), tlsConfig)
		if err != nil {
			return nil, "", err
		}
		if tlsConfig != nil {
			return nl, "tls " + nl.Addr().String(), nil
		}
		return nl, "tcp " + nl.Addr().String(), nil
	}
	nl, err := websocket.Listen("tcp", l.address(), websocket.Options{Path: l.websocketPath(), TLSConfig: tlsConfig, Logger: log})
	if err != nil {
		return nil, "", err
	}
	if tlsConfig != nil {
		return nl, "wss " + nl.Addr().String(), nil
	}
	return nl, "ws " + nl.Addr().String(), nil
}

// Duration is a TOML string such as "10s" or "15m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (write it like \"10s\", \"15m\" or \"24h\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is a byte count: an integer, or a string with a unit ("4MiB", "512KiB").
type Size int

// UnmarshalTOML implements toml.Unmarshaler.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*s = Size(v)
		return nil
	case string:
		units := []struct {
			suffix string
			mult   int
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
		for _, u := range units {
			if num, ok := strings.CutSuffix(v, u.suffix); ok {
				n, err := strconv.Atoi(strings.TrimSpace(num))
				if err == nil {
					*s = Size(n * u.mult)
					return nil
				}
			}
		}
		return fmt.Errorf("not a size (write it like 4194304 or \"4MiB\"): %q", v)
	}
	return fmt.Errorf("not a size: %v", v)
}

// ConfigError reports a problem in a configuration file, with its position
// when the problem is tied to one.
type ConfigError struct {
	Path string
	Line int // 0 when unknown
	Key  string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// typeErrorRE picks the line, key and message out of the TOML decoder's
// type errors ("toml: line 3 (last key "a.b"): incompatible types: …").
var typeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// errUnknownKey is wrapped by a ConfigError for a key gateway.toml does not
// define; most often a typo.
var errUnknownKey = errors.New("unknown key")

// loadConfig reads path strictly: unknown keys, wrong types and invalid
// values are errors naming the file, line and key. An empty path returns
// the defaults.
func loadConfig(path string) (*Config, error) {
	var c Config
	if path == "" {
		c.Persistence.DataDir = defaultDataDir("")
		return &c, c.validate("(defaults)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(raw), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{Path: path, Line: pe.Position.Line, Key: pe.LastKey, Err: errors.New(pe.Message)}
		}
		// Type errors are plain errors whose text carries the position.
		ce := &ConfigError{Path: path, Err: err}
		if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
			ce.Line, _ = strconv.Atoi(m[1])
			ce.Key = m[2]
			ce.Err = errors.New(m[3])
		}
		return nil, ce
	}
	if und := md.Undecoded(); len(und) > 0 {
		key := und[0]
		return nil, &ConfigError{Path: path, Line: keyLine(string(raw), key), Key: key.String(), Err: errUnknownKey}
	}
	if c.Version != 0 && c.Version != 1 {
		return nil, &ConfigError{Path: path, Key: "version", Err: fmt.Errorf("version %d is not supported (this snwgw reads version 1)", c.Version)}
	}
	c.resolvePaths(path)
	if c.Persistence.DataDir == "" {
		c.Persistence.DataDir = defaultDataDir(path)
	}
	return &c, c.validate(path)
}

// keyLine finds the line that defines the last part of key, as an
// assignment ("name =") or a table header ("[a.name]", "[[name]]"); the
// TOML decoder reports positions only for syntax and type errors.
func keyLine(raw string, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	last := key[len(key)-1]
	for i, line := range strings.Split(raw, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") {
			h := strings.Trim(l, "[] \t")
			if h == last || strings.HasSuffix(h, "."+last) {
				return i + 1
			}
			continue
		}
		name, _, ok := strings.Cut(l, "=")
		if ok && strings.Trim(strings.TrimSpace(name), `"'`) == last {
			return i + 1
		}
	}
	return 0
}

// validate checks what the packages' own Validate methods cannot see, and
// then runs those, so `snwgw config check` finds every problem serve would.
func (c *Config) validate(path string) error {
	bad := func(key string, err error) error { return &ConfigError{Path: path, Key: key, Err: err} }
	if _, err := c.logLevel(); err != nil {
		return bad("log.level", err)
	}
	if f := c.Log.Format; f != "" && f != "text" && f != "json" {
		return bad("log.format", fmt.Errorf("%q is neither \"text\" nor \"json\"", f))
	}
	if _, err := c.Auth.admission(); err != nil {
		return bad("auth", err)
	}
	if err := c.Persistence.validate(); err != nil {
		return bad("persistence", err)
	}
	if _, err := c.Auth.mqttAdmit(); err != nil {
		return bad("auth", err)
	}
	if _, err := c.gatewayOptions(nil); err != nil {
		return bad("gateway", err)
	}
	for i, u := range c.UDP {
		if _, err := u.options(nil); err != nil {
			return bad(fmt.Sprintf("udp[%d]", i), err)
		}
	}
	for i, s := range c.Serial {
		if _, err := s.options(nil); err != nil {
			return bad(fmt.Sprintf("serial[%d]", i), err)
		}
	}
	if err := c.brokerOptions(nil).Validate(); err != nil {
		return bad("broker", err)
	}
	if _, err := c.Auth.authorizer(); err != nil {
		return bad("auth", err)
	}
	for i, d := range c.DTLS {
		if _, err := d.options(nil); err != nil {
			return bad(fmt.Sprintf("dtls[%d]", i), err)
		}
	}
	for i, l := range c.Broker.Listeners {
		if _, _, err := l.options(nil); err != nil {
			return bad(fmt.Sprintf("broker.listener[%d]", i), err)
		}
	}
	names := map[string]bool{}
	for i, b := range c.Bridges {
		o, err := b.options(nil)
		if err != nil {
			return bad(fmt.Sprintf("bridge[%d]", i), err)
		}
		if names[o.Name] && o.Name != "" {
			return bad(fmt.Sprintf("bridge[%d].name", i), fmt.Errorf("%q is used by another bridge", o.Name))
		}
		names[o.Name] = true
	}
	return nil
}

func (c *Config) logLevel() (slog.Level, error) {
	var l slog.Level
	if c.Log.Level == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return 0, fmt.Errorf("%q is not one of debug, info, warn, error", c.Log.Level)
	}
	return l, nil
}

// logger builds the process logger on w.
func (c *Config) logger(w io.Writer) *slog.Logger {
	level, _ := c.logLevel()
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *Config) gatewayOptions(log *slog.Logger) (*gateway.Options, error) {
	g := &c.Gateway
	if g.ID < 0 || g.ID > 255 {
		return nil, fmt.Errorf("id %d is outside 0..255", g.ID)
	}
	pre, err := predefinedMap(g.Predefined)
	if err != nil {
		return nil, fmt.Errorf("predefined: %w", err)
	}
	var per map[string]map[uint16]string
	for id, m := range g.PredefinedPerClient {
		pm, err := predefinedMap(m)
		if err != nil {
			return nil, fmt.Errorf("predefined_per_client.%s: %w", id, err)
		}
		if per == nil {
			per = make(map[string]map[uint16]string)
		}
		per[id] = pm
	}
	o := &gateway.Options{
		GatewayID:             uint8(g.ID),
		AdvertiseInterval:     g.AdvertiseInterval.Duration,
		RetryInterval:         g.RetryInterval.Duration,
		RetryCount:            g.RetryCount,
		KeepAliveTolerance:    g.KeepAliveTolerance,
		AllowZeroKeepAlive:    g.AllowZeroKeepAlive,
		MaxSleepDuration:      g.MaxSleepDuration.Duration,
		SessionExpiry:         g.SessionExpiry.Duration,
		MaxClientIDLength:     g.MaxClientIDLength,
		MaxSessions:           g.MaxSessions,
		MaxTopicsPerClient:    g.MaxTopicsPerClient,
		SleepBuffer:           g.SleepBuffer,
		SleepBufferPolicy:     gateway.SleepPolicy(g.SleepBufferPolicy),
		QoSMinusOneTopicNames: g.QoSMinusOneTopicNames,
		Shards:                g.Shards,
		Predefined:            pre,
		PredefinedPerClient:   per,
		Logger:                log,

		MaxTopicBytesPerClient: int(g.MaxTopicBytesPerClient),
		MaxTopicBytes:          int64(g.MaxTopicBytes),
		MaxSessionsPerIP:       g.MaxSessionsPerIP,
	}
	adm, err := c.Auth.admission()
	if err != nil {
		return nil, err
	}
	adm.setHooks(o)
	return o, o.Validate()
}

// predefinedMap turns TOML's string keys ("1" = "a/b") into topic ids.
func predefinedMap(m map[string]string) (map[uint16]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	r := make(map[uint16]string, len(m))
	for k, v := range m {
		id, err := strconv.ParseUint(k, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("key %q is not a topic id in 1..65534", k)
		}
		r[uint16(id)] = v
	}
	return r, nil
}

func (u UDPConfig) options(log *slog.Logger) (transport.UDPOptions, error) {
	o := transport.UDPOptions{
		Addr:                u.Address,
		RecvBuffer:          int(u.ReceiveBuffer),
		MulticastGroups:     u.MulticastGroups,
		MulticastInterfaces: u.MulticastInterfaces,
		BroadcastAddr:       u.Broadcast,
		Logger:              log,
	}
	if o.Addr == "" {
		o.Addr = ":1883"
	}
	if u.MaxPacketSize < 0 || u.MaxPacketSize > 65535 {
		return o, fmt.Errorf("max_packet_size %d is outside 0..65535", u.MaxPacketSize)
	}
	return o, o.Validate()
}

func (s SerialConfig) options(log *slog.Logger) (transport.SerialOptions, error) {
	o := transport.SerialOptions{
		Device:      s.Device,
		BaudRate:    s.Baud,
		DataBits:    s.DataBits,
		FlowControl: s.RTSCTS,
		Framing:     s.Framing,
		Logger:      log,
	}
	switch strings.ToLower(s.Parity) {
	case "", "none":
		o.Parity = serial.NoParity
	case "odd":
		o.Parity = serial.OddParity
	case "even":
		o.Parity = serial.EvenParity
	case "mark":
		o.Parity = serial.MarkParity
	case "space":
		o.Parity = serial.SpaceParity
	default:
		return o, fmt.Errorf("parity %q is not one of none, odd, even, mark, space", s.Parity)
	}
	switch s.StopBits {
	case "", "1":
		o.StopBits = serial.OneStopBit
	case "1.5":
		o.StopBits = serial.OnePointFiveStopBits
	case "2":
		o.StopBits = serial.TwoStopBits
	default:
		return o, fmt.Errorf("stop_bits %q is not one of \"1\", \"1.5\", \"2\"", s.StopBits)
	}
	switch s.XBeeAPIMode {
	case 0, 2:
		o.XBee.Escaped = true
	case 1:
	default:
		return o, fmt.Errorf("xbee_api_mode %d is neither 1 nor 2", s.XBeeAPIMode)
	}
	if s.MaxPacketSize < 0 || s.MaxPacketSize > 65535 {
		return o, fmt.Errorf("max_packet_size %d is outside 0..65535", s.MaxPacketSize)
	}
	// The framing is what limits a serial link; 0 keeps its own default.
	o.RawMaxPacket, o.XBee.MaxPayload = s.MaxPacketSize, s.MaxPacketSize
	return o, o.Validate()
}

func (c *Config) brokerOptions(log *slog.Logger) *mqttcore.Options {
	b := &c.Broker
	o := &mqttcore.Options{
		Logger:           log,
		MaxQueued:        b.MaxQueued,
		ReceiveMaximum:   uint16(min(max(b.ReceiveMaximum, 0), 65535)),
		MaxSessionExpiry: uint32(b.MaxSessionExpiry.Duration / time.Second),
		SysInterval:      b.SysInterval.Duration,
		Version:          "snwgw " + readBuildInfo().Version,
	}
	return o
}
