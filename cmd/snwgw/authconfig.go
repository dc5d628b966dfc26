package main

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/snwgw/snwgw/auth"
	"github.com/snwgw/snwgw/gateway"
	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/transport"
)

// Defaults of the MQTT-SN admission keys of [auth].
const (
	// A device connects once per boot or per lost connection; one CONNECT a
	// second with bursts of ten holds a device in a reconnect loop without
	// getting in the way of any client that works.
	defaultConnectRate  = 1.0
	defaultConnectBurst = 10
	defaultUnknownBurst = 20
	// An MQTT application connects once and stays; twenty at once from
	// one address leaves room for a host that starts many.
	defaultMQTTConnectBurst = 20
	// Each tracked address costs about 200 bytes: 10,000 bound the
	// limiters at about 2 MB each under a flood of spoofed addresses.
	defaultRateLimitAddresses = 10_000
)

// AuthConfig is [auth]: who may connect to the broker and what every client,
// MQTT or MQTT-SN, may publish and subscribe to; and which MQTT-SN senders
// the gateway listens to.
type AuthConfig struct {
	PasswordFile   string `toml:"password_file"`
	AllowAnonymous *bool  `toml:"allow_anonymous"`
	ACLFile        string `toml:"acl_file"`

	AllowlistFile      string   `toml:"allowlist_file"`
	ConnectRate        *float64 `toml:"connect_rate"`
	ConnectBurst       int      `toml:"connect_burst"`
	UnknownRate        float64  `toml:"unknown_rate"`
	UnknownBurst       int      `toml:"unknown_burst"`
	RateLimitAddresses int      `toml:"rate_limit_addresses"`

	MQTTConnectRate  float64 `toml:"mqtt_connect_rate"`
	MQTTConnectBurst int     `toml:"mqtt_connect_burst"`
}

// authorizer loads the files [auth] names and returns the broker's
// authorizer: nil (everything allowed) when [auth] is empty. The
// allowlist, which the gateway applies to MQTT-SN clients, binds the
// ClientIds it places for MQTT clients as well, so that no MQTT client
// borrows a sensor's ClientId, and with it its rights, from elsewhere.
func (a AuthConfig) authorizer() (mqttcore.Authorizer, error) {
	az, err := a.passwordsAndACL()
	if err != nil || a.AllowlistFile == "" {
		return az, err
	}
	l, err := auth.LoadAllowlistFile(a.AllowlistFile)
	if err != nil {
		return nil, err
	}
	return auth.WithAllowlist(az, l), nil
}

// passwordsAndACL returns the authorizer of the password file, the ACL
// and allow_anonymous: nil when none is set.
func (a AuthConfig) passwordsAndACL() (mqttcore.Authorizer, error) {
	if a.PasswordFile == "" && a.ACLFile == "" && a.AllowAnonymous == nil {
		return nil, nil
	}
	var opts auth.Options
	if a.PasswordFile != "" {
		pw, err := auth.LoadPasswordFile(a.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts.Passwords = pw
	}
	if a.ACLFile != "" {
		acl, err := auth.LoadACLFile(a.ACLFile)
		if err != nil {
			return nil, err
		}
		opts.ACL = acl
	}
	if a.AllowAnonymous != nil {
		opts.Anonymous = auth.AnonymousDeny
		if *a.AllowAnonymous {
			opts.Anonymous = auth.AnonymousAllow
		}
	}
	return auth.NewAuthorizer(opts), nil
}

// withDefaults fills the admission keys left out.
func (a AuthConfig) withDefaults() AuthConfig {
	if a.ConnectRate == nil {
		r := defaultConnectRate
		a.ConnectRate = &r
	}
	if a.ConnectBurst == 0 {
		a.ConnectBurst = defaultConnectBurst
	}
	if a.UnknownBurst == 0 {
		a.UnknownBurst = defaultUnknownBurst
	}
	if a.RateLimitAddresses == 0 {
		a.RateLimitAddresses = defaultRateLimitAddresses
	}
	if a.MQTTConnectBurst == 0 {
		a.MQTTConnectBurst = defaultMQTTConnectBurst
	}
	return a
}

// limiter builds a per-address token bucket from one of [auth]'s rate
// keys: nil when the rate is 0 (no limit).
func (a AuthConfig) limiter(key string, r float64, burst int) (*auth.RateLimiter, error) {
	switch {
	case r < 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return nil, fmt.Errorf("%s = %v: want a rate per second, 0 for no limit", key, r)
	case r == 0:
		return nil, nil
	case burst < 1:
		return nil, fmt.Errorf("%s_burst = %d: want at least 1", strings.TrimSuffix(key, "_rate"), burst)
	case a.RateLimitAddresses < 1:
		return nil, fmt.Errorf("rate_limit_addresses = %d: want at least 1", a.RateLimitAddresses)
	}
	return auth.NewRateLimiter(r, burst, a.RateLimitAddresses)
}

// mqttAdmit builds the accept-time hook of the MQTT listeners from
// mqtt_connect_rate: nil when it is 0. Connections are counted per IP
// address, since a TCP client's port changes with every connection; one
// limit is shared by every listener.
func (a AuthConfig) mqttAdmit() (func(net.Addr) bool, error) {
	a = a.withDefaults()
	l, err := a.limiter("mqtt_connect_rate", a.MQTTConnectRate, a.MQTTConnectBurst)
	if l == nil || err != nil {
		return nil, err
	}
	return func(remote net.Addr) bool {
		key := remote.String()
		if t, ok := remote.(*net.TCPAddr); ok {
			key = t.IP.String()
		}
		return l.Allow(key, time.Now())
	}, nil
}

// admission builds the gateway's admission rules from [auth]; a part not
// configured is left nil.
func (a AuthConfig) admission() (*admission, error) {
	a = a.withDefaults()
	var (
		adm admission
		err error
	)
	if adm.connect, err = a.limiter("connect_rate", *a.ConnectRate, a.ConnectBurst); err != nil {
		return nil, err
	}
	if adm.unknown, err = a.limiter("unknown_rate", a.UnknownRate, a.UnknownBurst); err != nil {
		return nil, err
	}
	if a.AllowlistFile != "" {
		if adm.allow, err = auth.LoadAllowlistFile(a.AllowlistFile); err != nil {
			return nil, err
		}
	}
	return &adm, nil
}

// admission holds the gateway's admission hooks: a ClientId allowlist and
// per-address token buckets.
type admission struct {
	allow   *auth.Allowlist
	connect *auth.RateLimiter
	unknown *auth.RateLimiter
}

// setHooks sets the gateway's hooks for the rules configured, and only
// those: a hook left nil costs the gateway nothing.
func (a *admission) setHooks(o *gateway.Options) {
	if a.connect != nil || a.allow != nil {
		o.AdmitConnect = a.AdmitConnect
	}
	if a.unknown != nil {
		o.AdmitUnknown = a.AdmitUnknown
	}
}

// AdmitConnect applies the rate limit before the allowlist, so a device
// hammering with a ClientId it may not use is held to the limit as well.
func (a *admission) AdmitConnect(clientID string, from gateway.Sender) mqttsn.ReturnCode {
	if a.connect != nil && !a.connect.Allow(senderKey(from), time.Now()) {
		return mqttsn.RejectedCongestion
	}
	if a.allow != nil && !a.allow.Allow(clientID, from.Addr) {
		return mqttsn.RejectedNotSupported
	}
	return mqttsn.Accepted
}

// AdmitUnknown applies the limit on senders without a session.
func (a *admission) AdmitUnknown(from gateway.Sender) bool {
	return a.unknown.Allow(senderKey(from), time.Now())
}

// senderKey names the sender a token bucket belongs to: the link, the
// address a reply would go to, and a forwarded node's id, so that the
// nodes behind one forwarder are limited one by one. An XBee module is
// known by its 64-bit address alone: the 16-bit one is assigned by the
// coordinator and changes.
func senderKey(s gateway.Sender) string {
	var b strings.Builder
	b.WriteString(s.Link)
	b.WriteByte('|')
	switch a := s.Addr.(type) {
	case transport.XBeeAddr:
		b.WriteString(strconv.FormatUint(a.Addr64, 16))
	case transport.DTLSAddr:
		b.WriteString(a.AddrPort.String())
	case *net.UDPAddr:
		b.WriteString(a.AddrPort().String())
	case nil:
	default:
		b.WriteString(a.String())
	}
	if len(s.Node) > 0 {
		b.WriteByte('|')
		b.WriteString(hex.EncodeToString(s.Node))
	}
	return b.String()
}
