package client

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/snwgw/snwgw/mqttsn"
)

// Defaults for Options fields left at their zero value.
const (
	// DefaultRetryInterval is T_retry; the specification recommends
	// 10 to 15 s (§7.2).
	DefaultRetryInterval = 10 * time.Second
	// DefaultRetryCount is N_retry; the specification recommends 3 to 5.
	DefaultRetryCount = 3
	// DefaultQueueSize bounds the messages waiting for Options.Handler.
	DefaultQueueSize = 256
	// DefaultMaxTopics bounds the topic ids the client remembers.
	DefaultMaxTopics = 4096
	// DefaultMaxPendingQoS2 bounds the incoming QoS 2 messages whose
	// PUBREL has not arrived yet.
	DefaultMaxPendingQoS2 = 64
)

// maxClientID is the longest ClientId that fits one datagram next to the
// other CONNECT fields. MQTT-SN 1.2 says 1 to 23 characters "as with
// MQTT", but gateways commonly accept more, so only the wire limit is
// enforced.
const maxClientID = math.MaxUint16 - 9

// Options configure a Client. The zero value works for QoS -1 publishing;
// a session needs at least ClientID.
type Options struct {
	// ClientID identifies the client to the gateway in CONNECT and in
	// the PINGREQ that wakes a sleeping client.
	ClientID string
	// KeepAlive is the keep-alive period sent in CONNECT, in whole
	// seconds up to 65535 s; 0 switches keep-alive off.
	KeepAlive time.Duration
	// CleanSession asks the gateway to drop the subscriptions and Will
	// of an earlier session (§6.3).
	CleanSession bool
	// Will, when set, is sent in the Will exchange of Connect. A Will with
	// an empty Topic is sent as the empty WILLTOPIC, which deletes the
	// Will stored at the gateway.
	Will *Will
	// RetryInterval is T_retry; 0 means DefaultRetryInterval.
	RetryInterval time.Duration
	// RetryCount is N_retry, the number of retransmissions before a call
	// fails with ErrTimeout; 0 means DefaultRetryCount and a negative
	// value means no retransmission.
	RetryCount int
	// Handler receives the PUBLISHes from the gateway, one at a time on
	// the Client's dispatcher goroutine. It may call the Client's methods
	// except Wake and Close. Nil discards messages (they are still
	// acknowledged). Payload is the handler's to keep.
	Handler func(Message)
	// OnConnectionLost is called on the dispatcher goroutine when the
	// gateway ends the session with an unsolicited DISCONNECT, a message
	// (such as the keep-alive PINGREQ) goes unanswered, or the link fails.
	// The error wraps ErrDisconnected, ErrTimeout or the link's error.
	OnConnectionLost func(error)
	// Logger receives debug records about ignored and malformed datagrams
	// and warnings about lost sessions; nil discards them.
	Logger *slog.Logger
	// Forwarder, when set, wraps every message in a forwarder
	// encapsulation (§5.5) and accepts only encapsulated messages for the
	// same node, as a node behind an MQTT-SN forwarder would appear.
	Forwarder *Forwarder
	// QueueSize bounds the messages waiting for Handler; 0 means
	// DefaultQueueSize.
	QueueSize int
	// MaxTopics bounds the topic ids remembered (registered by the
	// client, announced by the gateway or returned in SUBACK); 0 means
	// DefaultMaxTopics.
	MaxTopics int
	// MaxPacketSize is the size of the read buffer: the largest datagram
	// the client can receive, encapsulation included; a longer one is
	// truncated by the link and counted as malformed. 0 means the largest
	// message MQTT-SN can carry plus an encapsulation header (65790
	// octets); a fleet of many clients can save memory with the path MTU
	// (for example 1500) instead.
	MaxPacketSize int
	// MaxPendingQoS2 bounds the incoming QoS 2 message ids remembered
	// between PUBREC and PUBREL; 0 means DefaultMaxPendingQoS2. When full,
	// the oldest id is forgotten (and counted in Stats).
	MaxPendingQoS2 int
}

// Will is the Will topic and message registered in Connect (§6.2).
type Will struct {
	Topic   string // empty deletes the stored Will
	Payload []byte
	QoS     mqttsn.QoS // 0, 1 or 2
	Retain  bool
}

// Forwarder describes the encapsulation of §5.5.
type Forwarder struct {
	// NodeID is the Wireless Node Id, 1 to 252 octets.
	NodeID []byte
	// Radius is the broadcast radius of the Ctrl octet, 0 to 3.
	Radius uint8
}

// withDefaults returns a copy of o with defaults filled in, or an error
// naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	switch {
	case o.RetryCount == 0:
		o.RetryCount = DefaultRetryCount
	case o.RetryCount < 0:
		o.RetryCount = 0
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxTopics == 0 {
		o.MaxTopics = DefaultMaxTopics
	}
	if o.MaxPendingQoS2 == 0 {
		o.MaxPendingQoS2 = DefaultMaxPendingQoS2
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = maxDatagram
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case len(o.ClientID) > maxClientID:
		return o, fmt.Errorf("%w: client id of %d octets", ErrInvalidOptions, len(o.ClientID))
	case o.KeepAlive < 0 || o.KeepAlive > math.MaxUint16*time.Second:
		return o, fmt.Errorf("%w: keep-alive %v outside 0..65535s", ErrInvalidOptions, o.KeepAlive)
	case o.KeepAlive%time.Second != 0:
		return o, fmt.Errorf("%w: keep-alive %v is not whole seconds", ErrInvalidOptions, o.KeepAlive)
	case o.RetryInterval < 0:
		return o, fmt.Errorf("%w: negative retry interval", ErrInvalidOptions)
	case o.QueueSize < 0 || o.MaxTopics < 0 || o.MaxPendingQoS2 < 0:
		return o, fmt.Errorf("%w: negative queue or table size", ErrInvalidOptions)
	case o.MaxPacketSize < 2 || o.MaxPacketSize > maxDatagram:
		return o, fmt.Errorf("%w: packet size %d outside 2..%d", ErrInvalidOptions, o.MaxPacketSize, maxDatagram)
	}
	if w := o.Will; w != nil && (w.QoS < mqttsn.QoS0 || w.QoS > mqttsn.QoS2) {
		return o, fmt.Errorf("%w: will %v", ErrInvalidOptions, w.QoS)
	}
	if f := o.Forwarder; f != nil {
		switch {
		case len(f.NodeID) == 0 || len(f.NodeID) > 252:
			return o, fmt.Errorf("%w: forwarder node id of %d octets, want 1..252", ErrInvalidOptions, len(f.NodeID))
		case f.Radius > 3:
			return o, fmt.Errorf("%w: forwarder radius %d, want 0..3", ErrInvalidOptions, f.Radius)
		}
		o.Forwarder = &Forwarder{NodeID: append([]byte(nil), f.NodeID...), Radius: f.Radius}
	}
	return o, nil
}
