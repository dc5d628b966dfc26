package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/snwgw/snwgw/mqttsn"
)

// SleepPolicy says what happens when a sleeping client's buffer is full.
type SleepPolicy string

// Sleep buffer policies.
const (
	// DropOldest discards the oldest buffered message to make room, so a
	// waking sensor sees the newest state (the default).
	DropOldest SleepPolicy = "drop-oldest"
	// RejectNew keeps what is buffered and drops the new message.
	RejectNew SleepPolicy = "reject-new"
)

// Options configure a Gateway. The zero value of every field means its
// default; Validate reports what cannot work.
type Options struct {
	// GatewayID is sent in ADVERTISE and GWINFO (MQTT-SN 1.2 §5.3.6).
	GatewayID uint8

	// RetryInterval is T_retry: how long the gateway waits for the answer to
	// a REGISTER, QoS 1/2 PUBLISH, PUBREL, WILLTOPICREQ or WILLMSGREQ before
	// sending it again (default 10 s).
	RetryInterval time.Duration
	// RetryCount is N_retry: how many times it is sent again before the
	// client is declared lost (default 3).
	RetryCount int
	// KeepAliveTolerance multiplies a client's keep-alive (and sleep
	// duration) to get the silence after which it is lost (default 1.5).
	KeepAliveTolerance float64
	// AllowZeroKeepAlive accepts CONNECT with Duration 0 as "not
	// supervised"; otherwise such a CONNECT is refused (spec-interpretation #16).
	AllowZeroKeepAlive bool
	// MaxSleepDuration caps the sleep a client may ask for (default 18 h,
	// the largest Duration the 16-bit field can carry).
	MaxSleepDuration time.Duration
	// SessionExpiry is how long the session of a client that connected with
	// CleanSession=0 outlives its connection: subscriptions, registrations
	// and queued messages (default 24 h).
	SessionExpiry time.Duration

	// MaxClientIDLength bounds the ClientId in bytes (default 64).
	MaxClientIDLength int
	// MaxSessions bounds the sessions the gateway holds, connected, asleep or
	// kept for a later CleanSession=0 connect (default 100,000). A CONNECT
	// beyond it is answered CONNACK "rejected: congestion".
	MaxSessions int
	// MaxSessionsPerIP bounds the sessions of clients at one IP address,
	// whatever their ports (default 1,000; negative: no bound), so one
	// host cannot take every session slot from many source ports. A
	// CONNECT beyond it is answered "rejected: congestion". Clients of
	// links without IP addresses (serial, XBee) and of loopback addresses
	// are not counted; those behind a forwarder count at the forwarder's
	// address.
	MaxSessionsPerIP int
	// MaxTopicsPerClient bounds each client's registered topic ids
	// (default 10,000); REGISTER beyond it gets REGACK "congestion".
	MaxTopicsPerClient int
	// MaxTopicBytesPerClient bounds the bytes of topic names one client
	// may have registered (default 64 KiB), and MaxTopicBytes those of
	// every client together (default 64 MiB); a REGISTER or SUBSCRIBE
	// beyond either is answered "congestion", a delivery that would need
	// a new id is dropped and counted.
	MaxTopicBytesPerClient int
	MaxTopicBytes          int64
	// SleepBuffer bounds the messages kept for a sleeping client
	// (default 100), with SleepBufferPolicy when it is full.
	SleepBuffer       int
	SleepBufferPolicy SleepPolicy

	// Predefined maps topic ids to topic names for every client
	// (TopicIdType 0b01). PredefinedPerClient adds or overrides ids for
	// single ClientIds.
	Predefined          map[uint16]string
	PredefinedPerClient map[string]map[uint16]string

	// QoSMinusOneTopicNames accepts the long-topic-name form of QoS -1
	// PUBLISH (spec-interpretation #9). Off by default: it lets any host
	// publish to any topic without connecting.
	QoSMinusOneTopicNames bool

	// AdvertiseInterval is T_ADV: how often ADVERTISE goes to every link
	// that has a broadcast address (default 15 minutes; negative disables).
	AdvertiseInterval time.Duration

	// Shards is the number of goroutines that own sessions (default
	// GOMAXPROCS).
	Shards int

	// AdmitConnect and AdmitUnknown, when set, screen senders before the
	// gateway keeps any state for them: a ClientId allowlist, per-address
	// rate limits (default: everyone is admitted). MQTT-SN 1.2 carries no
	// credentials, so the sender's link address is all there is to judge
	// a ClientId by. They are called from the read loops and the shards at
	// once: they must be safe for concurrent use, and cheap, since a flood
	// passes through them.
	//
	// AdmitConnect decides a CONNECT, or a sleeping client's PINGREQ from
	// a new address, that claims clientID. mqttsn.Accepted lets it go on;
	// any other code refuses it and is sent back in CONNACK:
	// RejectedNotSupported for a client not allowed there, or
	// RejectedCongestion to have it come back later.
	AdmitConnect func(clientID string, from Sender) mqttsn.ReturnCode
	// AdmitUnknown decides whether a datagram from a sender that has no
	// session may be looked at; when it may not, the datagram is dropped
	// unanswered. Left nil, no sender's address is built for it: QoS -1
	// publishers are unknown senders on every datagram.
	AdmitUnknown func(from Sender) bool

	// Store keeps every MQTT-SN session's state across restarts (see
	// SessionStore and Gateway.Restore); nil keeps nothing, and a restart
	// loses every session. With a Store every broker session of an MQTT-SN
	// client is a stored one (SessionExpiry) while the MQTT-SN session
	// lives, whatever its CleanSession flag.
	Store SessionStore

	// Logger receives connect, disconnect, sleep and lost lines at info
	// level and rate-limited protocol errors at warn (default: discard).
	Logger *slog.Logger
}

// Sender is where a datagram came from.
type Sender struct {
	// Link is the name of the link it arrived on (Link.Name).
	Link string
	// Addr is the link-level address: *net.UDPAddr for UDP, and whatever
	// the link's ReadFrom returns for others (transport.XBeeAddr,
	// transport.DTLSAddr, which carries the DTLS identity).
	Addr net.Addr
	// Node is the Wireless Node Id of a client behind a forwarder
	// (MQTT-SN 1.2 §5.5), nil for a client on the link itself; Addr is
	// then the forwarder's.
	Node []byte
}

// ErrInvalidOptions wraps every problem Validate reports.
var ErrInvalidOptions = errors.New("gateway: invalid options")

func (o *Options) ensureDefaults() {
	if o.RetryInterval == 0 {
		o.RetryInterval = 10 * time.Second
	}
	if o.RetryCount == 0 {
		o.RetryCount = 3
	}
	if o.KeepAliveTolerance == 0 {
		o.KeepAliveTolerance = 1.5
	}
	if o.MaxSleepDuration == 0 {
		o.MaxSleepDuration = math.MaxUint16 * time.Second
	}
	if o.SessionExpiry == 0 {
		o.SessionExpiry = 24 * time.Hour
	}
	if o.MaxClientIDLength == 0 {
		o.MaxClientIDLength = 64
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = 100_000
	}
	if o.MaxSessionsPerIP == 0 {
		o.MaxSessionsPerIP = 1000
	}
	if o.MaxTopicsPerClient == 0 {
		o.MaxTopicsPerClient = 10_000
	}
	if o.MaxTopicBytesPerClient == 0 {
		o.MaxTopicBytesPerClient = 64 << 10
	}
	if o.MaxTopicBytes == 0 {
		o.MaxTopicBytes = 64 << 20
	}
	if o.SleepBuffer == 0 {
		o.SleepBuffer = 100
	}
	if o.SleepBufferPolicy == "" {
		o.SleepBufferPolicy = DropOldest
	}
	if o.AdvertiseInterval == 0 {
		o.AdvertiseInterval = 15 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first option that cannot work, after defaults are
// applied.
func (o *Options) Validate() error {
	c := *o
	c.ensureDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	switch {
	case c.RetryInterval < 0:
		return bad("retry interval %v is negative", c.RetryInterval)
	case c.RetryCount < 0:
		return bad("retry count %d is negative", c.RetryCount)
	case c.KeepAliveTolerance < 1:
		return bad("keep-alive tolerance %v is below 1", c.KeepAliveTolerance)
	case c.MaxSleepDuration < time.Second:
		return bad("max sleep duration %v is below one second", c.MaxSleepDuration)
	case c.SessionExpiry < 0:
		return bad("session expiry %v is negative", c.SessionExpiry)
	case c.MaxClientIDLength < 1 || c.MaxClientIDLength > 65535:
		return bad("max client id length %d is outside 1..65535", c.MaxClientIDLength)
	case c.MaxSessions < 1:
		return bad("max sessions %d is below 1", c.MaxSessions)
	case c.MaxTopicsPerClient < 1 || c.MaxTopicsPerClient > maxTopicID:
		return bad("max topics per client %d is outside 1..%d", c.MaxTopicsPerClient, maxTopicID)
	case c.MaxTopicBytesPerClient < 1:
		return bad("max topic bytes per client %d is below 1", c.MaxTopicBytesPerClient)
	case c.MaxTopicBytes < 1:
		return bad("max topic bytes %d is below 1", c.MaxTopicBytes)
	case c.SleepBuffer < 1:
		return bad("sleep buffer %d is below 1", c.SleepBuffer)
	case c.SleepBufferPolicy != DropOldest && c.SleepBufferPolicy != RejectNew:
		return bad("sleep buffer policy %q is neither %q nor %q", c.SleepBufferPolicy, DropOldest, RejectNew)
	case c.Shards < 0:
		return bad("shards %d is negative", c.Shards)
	}
	if err := validatePredefined("", c.Predefined); err != nil {
		return bad("%v", err)
	}
	for id, m := range c.PredefinedPerClient {
		if err := validatePredefined(id, m); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

func validatePredefined(client string, m map[uint16]string) error {
	where := "predefined topic"
	if client != "" {
		where = fmt.Sprintf("predefined topic of client %q", client)
	}
	names := make(map[string]uint16, len(m))
	for id, name := range m {
		if id == 0 || id == 0xFFFF {
			return fmt.Errorf("%s id %d is reserved (spec-interpretation #26)", where, id)
		}
		if err := validTopicName(name); err != nil {
			return fmt.Errorf("%s %d: %w", where, id, err)
		}
		if other, dup := names[name]; dup {
			return fmt.Errorf("%s %q has two ids, %d and %d", where, name, other, id)
		}
		names[name] = id
	}
	return nil
}

// validTopicName checks a name a client may publish to (MQTT 5 §4.7.3):
// non-empty, UTF-8 without U+0000, no wildcards.
func validTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case len(name) > 65535:
		return errors.New("topic name longer than 65535 bytes")
	case !utf8.ValidString(name):
		return errors.New("topic name is not valid UTF-8")
	case strings.ContainsAny(name, "+#\x00"):
		return errors.New("topic name contains a wildcard or U+0000")
	}
	return nil
}

// WithDefaults returns a copy of o with every zero field set to its
// default, as New applies them; Shards stays 0 for "GOMAXPROCS".
func (o Options) WithDefaults() Options {
	o.ensureDefaults()
	return o
}
