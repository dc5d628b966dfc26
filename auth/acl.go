package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/snwgw/snwgw/mqttcore"
)

// Access is what a rule grants on its topic filter.
type Access uint8

// Accesses. Deny is not a right but a veto: a matching deny rule wins over
// every grant.
const (
	Read      Access = 1 << iota // receive messages: subscribe
	Write                        // send messages: publish (and wills)
	Deny                         // neither, whatever other rules grant
	ReadWrite = Read | Write
)

// String returns the ACL file keyword.
func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

// Client describes a client for an authorization decision: what the
// broker knows of an MQTT client, and what a link proved of an MQTT-SN
// client.
type Client struct {
	// ClientID is the MQTT client identifier or the MQTT-SN ClientId.
	ClientID string
	// Username is the MQTT user name; empty for anonymous clients and
	// MQTT-SN clients.
	Username string
	// Identity is the DTLS PSK identity or the subject CN of a verified
	// client certificate; empty when the link proved none.
	Identity string
	// Link names the link or listener the client came through, as the
	// configuration names it ("udp", "dtls", "serial0", "tcp", "tls", ...).
	Link string
	// Preauthenticated reports that the link has already authenticated
	// the client (a verified certificate standing for the user name, a
	// DTLS identity, or the ClientId allowlist), so no password is asked.
	Preauthenticated bool
}

// sectionKind tells which clients a section of the ACL file applies to.
type sectionKind uint8

const (
	sectionAll      sectionKind = iota // rules before the first section line
	sectionUser                        // user <name>
	sectionClient                      // client <clientid>
	sectionIdentity                    // identity <psk identity or certificate CN>
	sectionLink                        // link <name>
)

var sectionKeywords = map[string]sectionKind{
	"user":     sectionUser,
	"client":   sectionClient,
	"identity": sectionIdentity,
	"link":     sectionLink,
}

// rule is one topic or pattern line.
type rule struct {
	access Access
	filter []string // levels; for patterns, before substitution
	subst  bool     // a pattern holding %c or %u
	usesC  bool     // its substitution needs the client id
	usesU  bool     // its substitution needs the user name
	line   int
}

type section struct {
	kind  sectionKind
	name  string
	rules []rule
}

// ACL is a parsed ACL file. It is immutable and safe for concurrent use.
type ACL struct {
	sections []section
}

// maxACLLine bounds one line of an ACL file.
const maxACLLine = 1 << 16

// LoadACLFile reads an ACL file (see the package documentation for the
// format).
func LoadACLFile(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: ACL file: %w", err)
	}
	defer f.Close()
	acl, err := ParseACL(f)
	return acl, withPath(err, path)
}

// ParseACL reads an ACL in Mosquitto's acl_file syntax with this package's
// extensions (see the package documentation).
func ParseACL(r io.Reader) (*ACL, error) {
	acl := &ACL{sections: []section{{kind: sectionAll}}}
	cur := &acl.sections[0]
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxACLLine)
	line := 0
	perr := func(format string, args ...any) error {
		return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...), Kind: ErrACLFile}
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		keyword, rest, _ := strings.Cut(text, " ")
		rest = strings.TrimSpace(rest)
		if kind, ok := sectionKeywords[keyword]; ok {
			if rest == "" {
				return nil, perr("%s needs a name", keyword)
			}
			acl.sections = append(acl.sections, section{kind: kind, name: rest})
			cur = &acl.sections[len(acl.sections)-1]
			continue
		}
		if keyword != "topic" && keyword != "pattern" {
			return nil, perr("unknown keyword %q (want topic, pattern, user, client, identity or link)", keyword)
		}
		// As in Mosquitto, a line of two words or more starts with the
		// access, and only a lone filter may leave it out; so a misspelt
		// access ("topic wirte sensors/#") is an error, not a rule on the
		// topic "wirte sensors/#", and a topic with spaces needs its access
		// first.
		access, filter := ReadWrite, rest
		if word, after, ok := strings.Cut(rest, " "); ok {
			a, known := parseAccess(word)
			if !known {
				return nil, perr("%s %q: unknown access %q (want read, write, readwrite or deny before the filter)", keyword, rest, word)
			}
			access, filter = a, strings.TrimSpace(after)
		} else if _, known := parseAccess(rest); known {
			return nil, perr("%s %s needs a topic filter", keyword, rest)
		}
		if filter == "" {
			return nil, perr("%s needs a topic filter", keyword)
		}
		if strings.HasPrefix(filter, "$share/") {
			return nil, perr("%q: rules name the filter without $share/group/", filter)
		}
		check := filter
		if keyword == "pattern" {
			// Substitutions stand for one whole value; validate with a
			// placeholder of the same shape.
			check = strings.NewReplacer("%c", "c", "%u", "u").Replace(filter)
		}
		if err := mqttcore.ValidateFilter(check); err != nil {
			return nil, perr("topic filter %q: %v", filter, err)
		}
		r := rule{
			access: access,
			filter: strings.Split(filter, "/"),
			subst:  keyword == "pattern" && (strings.Contains(filter, "%c") || strings.Contains(filter, "%u")),
			line:   line,
		}
		if r.subst {
			r.usesC, r.usesU = placeholders(r.filter)
		}
		cur.rules = append(cur.rules, r)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: line + 1, Msg: "line too long", Kind: ErrACLFile}
		}
		return nil, fmt.Errorf("auth: ACL file: %w", err)
	}
	return acl, nil
}

func parseAccess(word string) (Access, bool) {
	switch word {
	case "read":
		return Read, true
	case "write":
		return Write, true
	case "readwrite":
		return ReadWrite, true
	case "deny":
		return Deny, true
	}
	return 0, false
}

// applies reports whether the section's rules apply to c.
func (s *section) applies(c Client) bool {
	switch s.kind {
	case sectionAll:
		return true
	case sectionUser:
		return c.Username != "" && c.Username == s.name
	case sectionClient:
		return c.ClientID != "" && c.ClientID == s.name
	case sectionIdentity:
		return c.Identity != "" && c.Identity == s.name
	case sectionLink:
		return c.Link != "" && c.Link == s.name
	}
	return false
}

// substitute returns a pattern's levels for c. ok is false when the rule
// cannot name c: a value it needs is empty, or holds '/', '+' or '#',
// which would let a client choose its own topic tree by its name.
func (r *rule) substitute(c Client) (levels []string, ok bool) {
	if !r.subst {
		return r.filter, true
	}
	levels = make([]string, len(r.filter))
	for i, l := range r.filter {
		if !strings.Contains(l, "%") {
			levels[i] = l
			continue
		}
		if levels[i], ok = expand(l, c); !ok {
			return nil, false
		}
	}
	return levels, true
}

// expand replaces %c and %u in one level in a single pass, so that a
// client id holding "%u" is not substituted again.
func expand(level string, c Client) (string, bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(level, '%')
		if i < 0 || i == len(level)-1 {
			b.WriteString(level)
			return b.String(), true
		}
		var v string
		switch level[i+1] {
		case 'c':
			v = c.ClientID
		case 'u':
			v = c.Username
		default:
			b.WriteString(level[:i+1])
			level = level[i+1:]
			continue
		}
		if v == "" || strings.ContainsAny(v, "/+#") {
			return "", false
		}
		b.WriteString(level[:i])
		b.WriteString(v)
		level = level[i+2:]
	}
}

// placeholders reports which values the levels of a pattern take, reading
// them as expand does.
func placeholders(filter []string) (usesC, usesU bool) {
	for _, level := range filter {
		for {
			i := strings.IndexByte(level, '%')
			if i < 0 || i == len(level)-1 {
				break
			}
			switch level[i+1] {
			case 'c':
				usesC = true
				level = level[i+2:]
			case 'u':
				usesU = true
				level = level[i+2:]
			default:
				level = level[i+1:]
			}
		}
	}
	return usesC, usesU
}

// substitutable reports whether a client id or user name can stand in a
// pattern (see substitute).
func substitutable(v string) bool { return v != "" && !strings.ContainsAny(v, "/+#") }

// AllowPublish reports whether c may publish to topic: some rule grants
// write on a filter matching it, and no deny rule matches it.
func (a *ACL) AllowPublish(c Client, topic string) bool {
	return a.decideTopic(c, Write, topic)
}

// AllowRead reports whether c may receive a message on topic: some rule
// grants read on a filter matching it, and no deny rule matches it. The
// broker asks for every message it delivers, whatever subscription
// matched.
func (a *ACL) AllowRead(c Client, topic string) bool {
	return a.decideTopic(c, Read, topic)
}

// decideTopic is decide for a topic name, the broker's per-message
// question: it walks the topic in place and compares pattern levels with
// %c and %u as they stand, so that it allocates nothing.
func (a *ACL) decideTopic(c Client, need Access, topic string) bool {
	cOK, uOK := substitutable(c.ClientID), substitutable(c.Username)
	ok := false
	for i := range a.sections {
		s := &a.sections[i]
		if !s.applies(c) {
			continue
		}
		for j := range s.rules {
			r := &s.rules[j]
			substituted := (!r.usesC || cOK) && (!r.usesU || uOK)
			switch {
			case !substituted && r.access == Deny:
				return false
			case !substituted:
			case r.access == Deny:
				if r.matchTopic(c, topic) {
					return false
				}
			case !ok && r.access&need != 0 && r.matchTopic(c, topic):
				ok = true
			}
		}
	}
	return ok
}

// matchTopic is matches for r's filter, substituted for c, and topic.
func (r *rule) matchTopic(c Client, topic string) bool {
	f := r.filter
	if topic != "" && topic[0] == '$' && wildcardFirst(f) {
		return false
	}
	rest, more := topic, true
	for _, l := range f {
		if l == "#" {
			return true // matches the parent level too: "a/#" matches "a"
		}
		if !more {
			return false
		}
		level := rest
		if k := strings.IndexByte(rest, '/'); k >= 0 {
			level, rest = rest[:k], rest[k+1:]
		} else {
			more = false
		}
		switch {
		case l == "+":
		case r.subst && strings.IndexByte(l, '%') >= 0:
			if !levelEquals(l, c, level) {
				return false
			}
		case l != level:
			return false
		}
	}
	return !more
}

// levelEquals reports whether expand(p, c) equals s, without building
// the expansion. The values it substitutes have been checked.
func levelEquals(p string, c Client, s string) bool {
	for {
		i := strings.IndexByte(p, '%')
		if i < 0 || i == len(p)-1 {
			return p == s
		}
		var v string
		switch p[i+1] {
		case 'c':
			v = c.ClientID
		case 'u':
			v = c.Username
		default:
			if !strings.HasPrefix(s, p[:i+1]) {
				return false
			}
			p, s = p[i+1:], s[i+1:]
			continue
		}
		if !strings.HasPrefix(s, p[:i]) || !strings.HasPrefix(s[i:], v) {
			return false
		}
		p, s = p[i+2:], s[i+len(v):]
	}
}

// AllowSubscribe reports whether c may subscribe to filter. Every message
// is judged again by AllowRead on its way to c, so a subscription is
// refused only when nothing could ever reach c through it: no read rule
// overlaps the filter, or a deny rule covers all of it. As in Mosquitto,
// with "topic read #" and "topic deny secret/#" a subscription to "#" is
// granted and messages under secret/ are not delivered, while one to
// "secret/x" is refused. A shared subscription "$share/group/filter" is
// judged by its filter.
func (a *ACL) AllowSubscribe(c Client, filter string) bool {
	_, inner, err := mqttcore.ParseShared(filter)
	if err != nil {
		return false
	}
	levels := strings.Split(inner, "/")
	return a.decide(c,
		Read,
		func(f []string) bool { return covers(f, levels) },
		func(f []string) bool { return overlaps(f, levels) })
}

// decide walks the rules of the sections that apply to c, each filter
// with %c and %u substituted: a deny rule whose filter denied holds for
// refuses at once, and a rule giving need whose filter granted holds for
// grants, unless a deny follows. A rule whose substitution fails (c has no
// user name, or one holding a wildcard) cannot match, and is skipped, but
// a deny rule that fails so refuses: the ACL fails closed.
func (a *ACL) decide(c Client, need Access, denied, granted func(f []string) bool) bool {
	ok := false
	for i := range a.sections {
		s := &a.sections[i]
		if !s.applies(c) {
			continue
		}
		for j := range s.rules {
			r := &s.rules[j]
			f, substituted := r.substitute(c)
			switch {
			case !substituted && r.access == Deny:
				return false
			case !substituted:
			case r.access == Deny:
				if denied(f) {
					return false
				}
			case r.access&need != 0 && granted(f):
				ok = true
			}
		}
	}
	return ok
}

// wildcardFirst reports whether the first level is a wildcard, which does
// not match topics starting with '$' (MQTT 5 §4.7.2).
func wildcardFirst(f []string) bool { return f[0] == "+" || f[0] == "#" }

func dollar(levels []string) bool { return strings.HasPrefix(levels[0], "$") }

// matches reports whether filter f matches topic t (MQTT 5 §4.7).
func matches(f, t []string) bool {
	if dollar(t) && wildcardFirst(f) {
		return false
	}
	for i, l := range f {
		if l == "#" {
			return true // matches the parent level too: "a/#" matches "a"
		}
		if i >= len(t) {
			return false
		}
		if l != "+" && l != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}

// covers reports whether every topic matched by filter s is matched by
// filter r.
func covers(r, s []string) bool {
	if dollar(s) && !wildcardFirst(s) && wildcardFirst(r) {
		return false
	}
	if wildcardFirst(s) && !wildcardFirst(r) && strings.HasPrefix(r[0], "$") {
		return false
	}
	for i, l := range r {
		if l == "#" {
			return true
		}
		if i >= len(s) {
			return false
		}
		switch {
		case s[i] == "#":
			return false // s reaches deeper than r's fixed levels
		case l == "+":
		case l != s[i] || s[i] == "+":
			return false
		}
	}
	// When r ends first, s still has levels: more than r can match.
	return len(s) == len(r)
}

// overlaps reports whether some topic matches both filters.
func overlaps(a, b []string) bool {
	if (dollar(a) && !wildcardFirst(a) && wildcardFirst(b)) || (dollar(b) && !wildcardFirst(b) && wildcardFirst(a)) {
		return false
	}
	for i := 0; ; i++ {
		switch {
		case i < len(a) && a[i] == "#", i < len(b) && b[i] == "#":
			return true
		case i == len(a) && i == len(b):
			return true
		case i == len(a) || i == len(b):
			return false // one ended, the other has a level more that is not "#"
		case a[i] == "+" || b[i] == "+" || a[i] == b[i]:
		default:
			return false
		}
	}
}
