package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/transport"
)

// maxAllowlistLine bounds one line of an allowlist file.
const maxAllowlistLine = 1 << 16

// maxClientID is the longest MQTT-SN ClientId (MQTT-SN 1.2 §5.3.1: 1 to
// 23 characters); longer ones are accepted in the file, as gateways
// commonly relax the limit, up to an MQTT string's bound.
const maxClientID = 65535

// Allowlist lists the MQTT-SN ClientIds that may connect over plain links,
// each optionally bound to where it may connect from. It is immutable and
// safe for concurrent use.
type Allowlist struct {
	entries map[string][]binding
}

// binding is one place a ClientId may connect from.
type binding struct {
	prefix   netip.Prefix // an IP network (a single address is a /32 or /128)
	xbee     uint64       // an XBee 64-bit address when isXBee
	isXBee   bool
	identity string // a DTLS PSK identity or certificate CN when not empty
}

func (b binding) allows(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UDPAddr:
		if b.prefix.IsValid() {
			ip, ok := netip.AddrFromSlice(a.IP)
			return ok && b.prefix.Contains(ip.Unmap())
		}
	case transport.XBeeAddr:
		// The 16-bit network address is assigned by the coordinator and
		// changes; the 64-bit address is the module's own.
		return b.isXBee && b.xbee == a.Addr64
	case transport.DTLSAddr:
		if b.identity != "" {
			return a.Identity == b.identity
		}
		if b.prefix.IsValid() {
			return b.prefix.Contains(a.AddrPort.Addr().Unmap())
		}
	case *net.TCPAddr:
		// An MQTT client: only an IP network can hold it. An XBee module
		// or a DTLS identity is a sensor's, which no TCP connection is, and
		// a TLS certificate of the same name is another trust domain.
		if b.prefix.IsValid() {
			ip, ok := netip.AddrFromSlice(a.IP)
			return ok && b.prefix.Contains(ip.Unmap())
		}
	}
	return false
}

// LoadAllowlistFile reads an allowlist file (see ParseAllowlist).
func LoadAllowlistFile(path string) (*Allowlist, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: allowlist file: %w", err)
	}
	defer f.Close()
	l, err := ParseAllowlist(f)
	return l, withPath(err, path)
}

// ParseAllowlist reads one ClientId per line, followed by the places it
// may connect from, separated by spaces; with none it may connect from
// anywhere. A place is an IP address or network ("192.0.2.7",
// "10.1.2.0/24", "fd00::/64"), an XBee 64-bit address in hexadecimal
// ("0013a20040a1b2c3", as XBeeAddr prints it, with or without "/16-bit"),
// or a DTLS identity ("identity:sensor-17", the PSK identity or
// certificate CN). Blank lines and text after '#' are ignored.
//
//	# ClientId     places
//	kitchen-temp   0013a20040a1b2c3
//	boiler         10.1.2.0/24 fd00:1::/64
//	hall-motion    identity:hall-motion
//	test-rig
func ParseAllowlist(r io.Reader) (*Allowlist, error) {
	l := &Allowlist{entries: make(map[string][]binding)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxAllowlistLine)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		id := fields[0]
		if err := checkClientID(id); err != nil {
			return nil, &ParseError{Line: line, Msg: err.Error(), Kind: ErrAllowlistFile}
		}
		if _, dup := l.entries[id]; dup {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("ClientId %q appears twice", id), Kind: ErrAllowlistFile}
		}
		bs := make([]binding, 0, len(fields)-1)
		for _, f := range fields[1:] {
			b, err := parseBinding(f)
			if err != nil {
				return nil, &ParseError{Line: line, Msg: fmt.Sprintf("ClientId %q: %v", id, err), Kind: ErrAllowlistFile}
			}
			bs = append(bs, b)
		}
		l.entries[id] = bs
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: line + 1, Msg: "line too long", Kind: ErrAllowlistFile}
		}
		return nil, fmt.Errorf("auth: allowlist file: %w", err)
	}
	return l, nil
}

func checkClientID(id string) error {
	if len(id) > maxClientID || !utf8.ValidString(id) {
		return fmt.Errorf("ClientId must be at most %d bytes of UTF-8", maxClientID)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("ClientId %q holds a control character", id)
		}
	}
	return nil
}

func parseBinding(s string) (binding, error) {
	if id, ok := strings.CutPrefix(s, "identity:"); ok {
		if id == "" {
			return binding{}, errors.New(`"identity:" needs a name`)
		}
		return binding{identity: id}, nil
	}
	if strings.Contains(s, "/") && strings.ContainsAny(s, ".:") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return binding{}, fmt.Errorf("IP network %q: %w", s, err)
		}
		return binding{prefix: p.Masked()}, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		ip = ip.Unmap()
		return binding{prefix: netip.PrefixFrom(ip, ip.BitLen())}, nil
	}
	if x, err := transport.ParseXBeeAddr(s); err == nil && len(s) >= 16 {
		return binding{xbee: x.Addr64, isXBee: true}, nil
	}
	return binding{}, fmt.Errorf("%q is not an IP address or network, an XBee 64-bit address or identity:<name>", s)
}

// Allow reports whether clientID may connect from addr: it is listed, and
// addr is one of its places (or it has none).
func (l *Allowlist) Allow(clientID string, addr net.Addr) bool {
	bs, ok := l.entries[clientID]
	if !ok {
		return false
	}
	if len(bs) == 0 {
		return true
	}
	for _, b := range bs {
		if b.allows(addr) {
			return true
		}
	}
	return false
}

// AllowMQTT reports whether an MQTT client connecting from addr (its TCP
// peer) may use clientID. The allowlist admits MQTT-SN clients; towards
// MQTT clients it only guards what it binds: a ClientId it does not list,
// or lists without places, is free, while one bound to places may be used
// only from one of its IP networks. Without that, an MQTT client could
// claim a sensor's ClientId and with it the sensor's rights (ACL patterns
// with %c, "client" sections) and session.
func (l *Allowlist) AllowMQTT(clientID string, addr net.Addr) bool {
	bs, ok := l.entries[clientID]
	if !ok || len(bs) == 0 {
		return true
	}
	for _, b := range bs {
		if b.allows(addr) {
			return true
		}
	}
	return false
}

// WithAllowlist returns an Authorizer that refuses an MQTT client (one
// whose ClientInfo has a Remote address) a ClientId l binds elsewhere, as
// Allowlist.AllowMQTT decides, and otherwise defers to next (nil: allow
// everything). In-process connections, the gateway's MQTT-SN sessions
// among them, are left to next: the gateway applies l itself, with the
// addresses of its links.
func WithAllowlist(next mqttcore.Authorizer, l *Allowlist) mqttcore.Authorizer {
	if next == nil {
		next = mqttcore.AllowAll{}
	}
	return &allowlisted{Authorizer: next, list: l}
}

type allowlisted struct {
	mqttcore.Authorizer
	list *Allowlist
}

func (a *allowlisted) AllowConnect(c mqttcore.ClientInfo, password []byte) bool {
	if c.Remote != nil && !a.list.AllowMQTT(c.ClientID, c.Remote) {
		return false
	}
	return a.Authorizer.AllowConnect(c, password)
}

// Len returns the number of ClientIds listed.
func (l *Allowlist) Len() int { return len(l.entries) }
