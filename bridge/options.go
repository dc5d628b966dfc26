package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/snwgw/snwgw/mqttcore"
)

// Directions of a Rule.
const (
	DirectionOut  = "out"  // local broker to upstream
	DirectionIn   = "in"   // upstream to local broker
	DirectionBoth = "both" // both ways
)

// Policies of a full outbound queue.
const (
	// PolicyDropOldest discards the oldest queued message for the new one,
	// so the upstream broker gets the newest state when it returns.
	PolicyDropOldest = "drop-oldest"
	// PolicyRejectNew discards the new message and keeps the queue as it is,
	// so what arrives upstream is an unbroken prefix of the stream.
	PolicyRejectNew = "reject-new"
)

// Defaults applied by Options for zero fields.
const (
	DefaultKeepAlive       = 30 * time.Second
	DefaultSessionExpiry   = time.Hour
	DefaultConnectRetryMin = time.Second
	DefaultConnectRetryMax = time.Minute
	DefaultConnectTimeout  = 10 * time.Second
	DefaultPublishTimeout  = 30 * time.Second
	DefaultQueueLimit      = 10000
	DefaultQueuePolicy     = PolicyDropOldest
)

// Limits of the queue. A memory queue keeps its messages in flight on the
// local session, whose window is at most 65535 messages, so it is capped
// well below that to leave room for the deliveries the pump must still see
// to apply the policy.
const (
	MaxMemoryQueue = 32768
	MaxDiskQueue   = 1000000
)

// ErrInvalidOptions reports Options that cannot work; the message names the
// field.
var ErrInvalidOptions = errors.New("bridge: invalid options")

// Options configure one bridge to one upstream broker. Zero fields take the
// defaults above; Validate reports what cannot work.
type Options struct {
	// Name identifies the bridge in logs, in the local session's client id
	// ("snwgw-bridge-<Name>") and in the loop marker; it must be unique among
	// the bridges of a gateway. Default: the URL's host.
	Name string
	// URL of the upstream broker: mqtt://host:1883, mqtts://host:8883,
	// ws://host/mqtt or wss://host/mqtt. A missing port takes 1883 or 8883
	// (mqtt, mqtts) or 80 or 443 (ws, wss).
	URL string
	// ClientID upstream; it must be stable for the upstream session to
	// survive reconnects. Default: "snwgw-<hostname>".
	ClientID string
	// Username and Password authenticate upstream. PasswordFile, instead of
	// Password, names a file whose content (without trailing newlines) is
	// the password.
	Username     string
	Password     string
	PasswordFile string
	// TLS configures mqtts:// and wss://.
	TLS TLSOptions
	// KeepAlive is the MQTT keep-alive upstream, in whole seconds.
	KeepAlive time.Duration
	// SessionExpiry is the session expiry upstream and of the local session,
	// in whole seconds: upstream, messages for the in direction wait that
	// long for a reconnect; locally, messages for the out direction wait
	// that long for the bridge to return.
	SessionExpiry time.Duration
	// ConnectRetryMin and ConnectRetryMax bound the wait between connection
	// attempts: it starts at ConnectRetryMin and doubles up to
	// ConnectRetryMax.
	ConnectRetryMin time.Duration
	ConnectRetryMax time.Duration
	// ConnectTimeout bounds one connection attempt (dial, TLS and CONNACK).
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for the upstream acknowledgement of one
	// message before it is sent again.
	PublishTimeout time.Duration
	// Rules say what is forwarded; at least one is needed.
	Rules []Rule
	// StateTopic is the upstream topic of the retained availability message
	// ("online", "offline"; "offline" is also the will). Default:
	// "snwgw/<ClientID>/state".
	StateTopic string
	// Queue bounds what waits for the upstream broker.
	Queue QueueOptions
	// Logger receives connection changes, refusals and drops; nil discards.
	Logger *slog.Logger
}

// TLSOptions configure TLS upstream (mqtts://, wss://).
type TLSOptions struct {
	// CAFile is a PEM bundle of the CAs trusted for the server certificate;
	// empty trusts the system's.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate (chain) and its key,
	// for brokers that authenticate clients by certificate.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the server certificate
	// (default: the URL's host).
	ServerName string
	// InsecureSkipVerify accepts any server certificate. It defeats TLS
	// against an active attacker; the bridge logs a warning when it is set.
	InsecureSkipVerify bool
}

// Rule is one topic mapping.
type Rule struct {
	// LocalFilter is the topic filter on the local broker ("sensors/#"); it
	// must start with LocalPrefix and may not be a shared subscription.
	LocalFilter string
	// Direction is DirectionOut, DirectionIn or DirectionBoth.
	Direction string
	// QoS is the highest QoS forwarded (0, 1 or 2): messages keep their own
	// QoS up to it.
	QoS byte
	// LocalPrefix and RemotePrefix rewrite topics: LocalPrefix+rest locally
	// is RemotePrefix+rest upstream. Both may be empty.
	LocalPrefix  string
	RemotePrefix string
	// Retain passes the RETAIN flag (and the retained messages present when
	// the bridge subscribes); without it every forwarded message is plain.
	Retain bool
}

// QueueOptions bound the outbound queue.
type QueueOptions struct {
	// Limit is the most QoS 1 and 2 messages waiting for the upstream broker
	// (default 10000; at most MaxMemoryQueue, or MaxDiskQueue with Dir).
	Limit int
	// Policy is PolicyDropOldest (default) or PolicyRejectNew.
	Policy string
	// Dir, when set, keeps the queue on disk in this directory, one file per
	// message, so a gateway restart loses nothing. Each bridge needs a
	// directory of its own.
	Dir string
}

// withDefaults returns a copy of o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Name == "" {
		if u, err := url.Parse(o.URL); err == nil {
			o.Name = u.Host
		}
	}
	if o.ClientID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "gateway"
		}
		o.ClientID = "snwgw-" + host
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.SessionExpiry == 0 {
		o.SessionExpiry = DefaultSessionExpiry
	}
	if o.ConnectRetryMin == 0 {
		o.ConnectRetryMin = DefaultConnectRetryMin
	}
	if o.ConnectRetryMax == 0 {
		o.ConnectRetryMax = max(DefaultConnectRetryMax, o.ConnectRetryMin)
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.StateTopic == "" {
		o.StateTopic = "snwgw/" + o.ClientID + "/state"
	}
	if o.Queue.Limit == 0 {
		o.Queue.Limit = DefaultQueueLimit
		if o.Queue.Dir == "" {
			o.Queue.Limit = min(DefaultQueueLimit, MaxMemoryQueue)
		}
	}
	if o.Queue.Policy == "" {
		o.Queue.Policy = DefaultQueuePolicy
	}
	return o
}

// Validate reports options that cannot work, after defaults are applied. The
// error wraps ErrInvalidOptions and names the field.
func (o *Options) Validate() error {
	d := o.withDefaults()
	return d.validate()
}

func (o *Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	u, err := parseURL(o.URL)
	if err != nil {
		return bad("url: %v", err)
	}
	if o.Name == "" {
		return bad("name is empty")
	}
	if o.ClientID == "" || len(o.ClientID) > 65535 {
		return bad("client id must be 1 to 65535 bytes")
	}
	if o.Password != "" && o.PasswordFile != "" {
		return bad("password and password file are both set")
	}
	secure := u.Scheme == "mqtts" || u.Scheme == "wss"
	t := o.TLS
	if !secure && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		return bad("tls settings need an mqtts:// or wss:// url, not %s://", u.Scheme)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return bad("tls cert file and key file go together")
	}
	if err := wholeSeconds("keep alive", o.KeepAlive, 65535); err != nil {
		return bad("%v", err)
	}
	if err := wholeSeconds("session expiry", o.SessionExpiry, mqttcore.SessionExpiryNever-1); err != nil {
		return bad("%v", err)
	}
	if o.ConnectRetryMin < 0 || o.ConnectRetryMax < o.ConnectRetryMin {
		return bad("connect retry: need 0 < min <= max, have %v and %v", o.ConnectRetryMin, o.ConnectRetryMax)
	}
	if o.ConnectTimeout < 0 || o.PublishTimeout < 0 {
		return bad("timeouts must be positive")
	}
	if len(o.Rules) == 0 {
		return bad("no rules: nothing to forward")
	}
	for i := range o.Rules {
		if err := o.Rules[i].validate(); err != nil {
			return bad("rule %d: %v", i+1, err)
		}
	}
	if err := mqttcore.ValidateTopic(o.StateTopic); err != nil {
		return bad("state topic %q: %v", o.StateTopic, err)
	}
	switch o.Queue.Policy {
	case PolicyDropOldest, PolicyRejectNew:
	default:
		return bad("queue policy %q: want %q or %q", o.Queue.Policy, PolicyDropOldest, PolicyRejectNew)
	}
	limit := MaxMemoryQueue
	if o.Queue.Dir != "" {
		limit = MaxDiskQueue
	}
	if o.Queue.Limit < 1 || o.Queue.Limit > limit {
		return bad("queue limit %d: want 1 to %d", o.Queue.Limit, limit)
	}
	return nil
}

func (r *Rule) validate() error {
	switch r.Direction {
	case DirectionOut, DirectionIn, DirectionBoth:
	default:
		return fmt.Errorf("direction %q: want %q, %q or %q", r.Direction, DirectionOut, DirectionIn, DirectionBoth)
	}
	if r.QoS > 2 {
		return fmt.Errorf("qos %d: want 0, 1 or 2", r.QoS)
	}
	if err := mqttcore.ValidateFilter(r.LocalFilter); err != nil {
		return fmt.Errorf("local filter %q: %w", r.LocalFilter, err)
	}
	if strings.HasPrefix(r.LocalFilter, "$share/") {
		return fmt.Errorf("local filter %q: a shared subscription cannot be bridged", r.LocalFilter)
	}
	for _, p := range []string{r.LocalPrefix, r.RemotePrefix} {
		if strings.ContainsAny(p, "+#\x00") {
			return fmt.Errorf("prefix %q: no wildcards or NUL allowed", p)
		}
	}
	if !strings.HasPrefix(r.LocalFilter, r.LocalPrefix) {
		return fmt.Errorf("local filter %q does not start with local prefix %q", r.LocalFilter, r.LocalPrefix)
	}
	if err := mqttcore.ValidateFilter(r.remoteFilter()); err != nil {
		return fmt.Errorf("remote filter %q: %w", r.remoteFilter(), err)
	}
	return nil
}

// parseURL checks an upstream URL and fills in the default port.
func parseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.ToLower(u.Scheme)
	port := map[string]string{"mqtt": "1883", "mqtts": "8883", "ws": "80", "wss": "443"}[u.Scheme]
	if port == "" {
		return nil, fmt.Errorf("scheme %q: want mqtt, mqtts, ws or wss", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if u.Port() == "" {
		u.Host += ":" + port // an IPv6 host keeps its brackets in u.Host
	}
	return u, nil
}

func wholeSeconds(name string, d time.Duration, most uint32) error {
	if d < time.Second || d%time.Second != 0 || d/time.Second > time.Duration(most) {
		return fmt.Errorf("%s %v: want whole seconds from 1s to %ds", name, d, most)
	}
	return nil
}
