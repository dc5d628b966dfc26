package auth

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/transport"
)

// FuzzParseACL checks that no input panics the ACL parser, and that an
// accepted ACL can judge any client and topic without panicking.
func FuzzParseACL(f *testing.F) {
	f.Add(exampleACL, "kitchen-temp", "sensors/kitchen-temp/t")
	f.Add("topic read #\ntopic deny a/#\n", "c", "a/b")
	f.Add("pattern readwrite %u/%c/+/#\nuser u\ntopic x\n", "%u", "$SYS/x")
	f.Add("link\n", "", "")
	f.Add("pattern read a/x%c%u%%c%/#\npattern deny %c%x\n", "u", "a/xuu%u%/b")
	f.Fuzz(func(t *testing.T, text, id, topic string) {
		acl, err := ParseACL(strings.NewReader(text))
		if err != nil {
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			return
		}
		c := Client{ClientID: id, Username: id, Identity: id, Link: id}
		acl.AllowSubscribe(c, topic)
		// The per-message path walks the topic in place; it must decide
		// exactly as the rules' substituted filters would.
		levels := strings.Split(topic, "/")
		match := func(f []string) bool { return matches(f, levels) }
		for _, need := range []Access{Read, Write} {
			want := acl.decide(c, need, match, match)
			require.Equal(t, want, acl.decideTopic(c, need, topic), "%s %q by %q", need, topic, id)
		}
		anon := Client{ClientID: id}
		require.Equal(t, acl.decide(anon, Read, match, match), acl.AllowRead(anon, topic), "read %q by anonymous %q", topic, id)
	})
}

// FuzzParsePasswords checks the password file parser, and that every
// accepted file survives a write and a read unchanged.
func FuzzParsePasswords(f *testing.F) {
	f.Add("alice:" + dummyHash + "\n# c\n")
	f.Add("alice:$7$101$79Pbe3RZd3oexaTh$XG/4EkDmyWAh2HheBUqkRAzpirpvLnVyC0L9E1qtu5BspF24EGKzOmmfx4L570u1B33iCsAnIFLitzGWOYuUBQ==")
	f.Add("a:$6$x$y\n")
	f.Add(":\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePasswords(strings.NewReader(text))
		if err != nil {
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			return
		}
		var b bytes.Buffer
		_, err = p.WriteTo(&b)
		require.NoError(t, err)
		q, err := ParsePasswords(&b)
		require.NoError(t, err, "re-reading %q", b.String())
		require.Equal(t, p.Users(), q.Users())
		for _, u := range p.Users() {
			require.Equal(t, p.users[u], q.users[u])
		}
	})
}

// FuzzParseAllowlist checks the allowlist parser, and that an accepted
// list can judge any ClientId and address without panicking.
func FuzzParseAllowlist(f *testing.F) {
	f.Add(exampleAllowlist, "boiler", []byte{10, 1, 2, 3}, uint64(0x0013a20040a1b2c3))
	f.Add("a ::/0 identity:x 0/0\n", "a", []byte{}, uint64(0))
	f.Add("a 0013a20040a1b2c3/zz\n", "a", []byte{1, 2}, uint64(1))
	f.Fuzz(func(t *testing.T, text, id string, ip []byte, x64 uint64) {
		l, err := ParseAllowlist(strings.NewReader(text))
		if err != nil {
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			return
		}
		addr, _ := netip.AddrFromSlice(ip)
		for _, a := range []net.Addr{
			&net.UDPAddr{IP: ip},
			transport.XBeeAddr{Addr64: x64},
			transport.DTLSAddr{AddrPort: netip.AddrPortFrom(addr, 1), Identity: id},
			transport.SerialAddr{Device: id},
		} {
			l.Allow(id, a)
		}
		// An MQTT client is held to what the MQTT-SN path would allow
		// from the same IP address, and to nothing else.
		tcp := &net.TCPAddr{IP: ip}
		if l.AllowMQTT(id, tcp) && !l.Allow(id, &net.UDPAddr{IP: ip}) {
			_, listed := l.entries[id]
			require.False(t, listed, "%q from %v: allowed for MQTT, not for MQTT-SN", id, tcp)
		}
	})
}
