package auth

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttcore"
	"github.com/snwgw/snwgw/transport"
)

const exampleAllowlist = `# ClientId     places
kitchen-temp   0013a20040a1b2c3
boiler         10.1.2.0/24 fd00:1::/64   # two networks
hall-motion    identity:hall-motion
lamp           192.0.2.7 0013a20040a1b2c4/1234
test-rig
`

func udp(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestAllowlist(t *testing.T) {
	l, err := ParseAllowlist(strings.NewReader(exampleAllowlist))
	require.NoError(t, err)
	assert.Equal(t, 5, l.Len())
	kitchen := transport.XBeeAddr{Addr64: 0x0013a20040a1b2c3, Addr16: 0x1234}
	for _, tc := range []struct {
		id   string
		addr net.Addr
		want bool
	}{
		{"kitchen-temp", kitchen, true},
		{"kitchen-temp", transport.XBeeAddr{Addr64: 0x0013a20040a1b2c3, Addr16: 0xfffe}, true},
		{"kitchen-temp", transport.XBeeAddr{Addr64: 0x0013a20040a1b2c9}, false}, // another module
		{"kitchen-temp", udp("10.1.2.3:1883"), false},
		{"boiler", udp("10.1.2.200:5000"), true},
		{"boiler", udp("[::ffff:10.1.2.200]:5000"), true},
		{"boiler", udp("10.1.3.1:5000"), false},
		{"boiler", udp("[fd00:1::42]:5000"), true},
		{"boiler", udp("[fd00:2::42]:5000"), false},
		{"boiler", transport.DTLSAddr{AddrPort: netip.MustParseAddrPort("10.1.2.9:1")}, true},
		{"hall-motion", transport.DTLSAddr{Identity: "hall-motion", Kind: transport.IdentityPSK}, true},
		{"hall-motion", transport.DTLSAddr{Identity: "hall-motion-2", Kind: transport.IdentityPSK}, false},
		{"hall-motion", udp("10.1.2.3:1"), false},
		{"lamp", udp("192.0.2.7:9"), true},
		{"lamp", udp("192.0.2.8:9"), false},
		{"lamp", transport.XBeeAddr{Addr64: 0x0013a20040a1b2c4}, true},
		{"test-rig", udp("203.0.113.1:1"), true},
		{"test-rig", transport.SerialAddr{Device: "/dev/ttyUSB0"}, true},
		{"intruder", udp("10.1.2.3:1"), false},
		{"", udp("10.1.2.3:1"), false},
	} {
		assert.Equal(t, tc.want, l.Allow(tc.id, tc.addr), "%s from %v", tc.id, tc.addr)
	}
}

func tcp(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// An MQTT client may use a ClientId the allowlist binds only from one of
// its IP networks; XBee and DTLS identity places never hold a TCP client,
// and ClientIds the list leaves free stay free.
func TestAllowlistMQTT(t *testing.T) {
	l, err := ParseAllowlist(strings.NewReader(exampleAllowlist))
	require.NoError(t, err)
	for _, tc := range []struct {
		id   string
		addr string
		want bool
	}{
		{"boiler", "10.1.2.9:40000", true},
		{"boiler", "[::ffff:10.1.2.9]:40000", true},
		{"boiler", "127.0.0.1:40000", false},
		{"kitchen-temp", "127.0.0.1:40000", false},
		{"hall-motion", "127.0.0.1:40000", false},
		{"lamp", "192.0.2.7:1", true},
		{"test-rig", "203.0.113.1:1", true},
		{"dashboard", "203.0.113.1:1", true},
	} {
		assert.Equal(t, tc.want, l.AllowMQTT(tc.id, tcp(tc.addr)), "%s from %s", tc.id, tc.addr)
	}

	a := WithAllowlist(nil, l)
	assert.False(t, a.AllowConnect(mqttcore.ClientInfo{ClientID: "boiler", Remote: tcp("127.0.0.1:1")}, nil))
	assert.True(t, a.AllowConnect(mqttcore.ClientInfo{ClientID: "boiler", Remote: tcp("10.1.2.3:1")}, nil))
	assert.True(t, a.AllowConnect(mqttcore.ClientInfo{ClientID: "boiler", Link: "udp"}, nil),
		"in-process sessions are the gateway's to judge")
	assert.True(t, a.AllowRead(mqttcore.ClientInfo{ClientID: "boiler"}, "x"))
	// Credentials still count once the binding holds.
	pw := NewPasswords()
	require.NoError(t, pw.Set("u", []byte("pw")))
	a = WithAllowlist(NewAuthorizer(Options{Passwords: pw}), l)
	assert.False(t, a.AllowConnect(mqttcore.ClientInfo{ClientID: "boiler", Username: "u", Remote: tcp("10.1.2.3:1")}, []byte("px")))
	assert.True(t, a.AllowConnect(mqttcore.ClientInfo{ClientID: "boiler", Username: "u", Remote: tcp("10.1.2.3:1")}, []byte("pw")))
}

func TestAllowlistParseErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		line int
		msg  string
	}{
		"duplicate":      {"a\nb\na 10.0.0.1\n", 3, "appears twice"},
		"bad network":    {"a 10.0.0.0/33\n", 1, "IP network"},
		"bad place":      {"# x\na somewhere\n", 2, "is not an IP address"},
		"short xbee":     {"a 13a2\n", 1, "is not an IP address"},
		"empty identity": {"a identity:\n", 1, "needs a name"},
		"control":        {"a\x01b\n", 1, "control character"},
		"bad utf8":       {"a\xffb\n", 1, "UTF-8"},
	} {
		_, err := ParseAllowlist(strings.NewReader(tc.in))
		require.ErrorIs(t, err, ErrAllowlistFile, name)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, name)
		assert.Equal(t, tc.line, pe.Line, name)
		assert.Contains(t, pe.Msg, tc.msg, name)
	}
	path := filepath.Join(t.TempDir(), "allow")
	require.NoError(t, os.WriteFile(path, []byte(exampleAllowlist), 0o600))
	l, err := LoadAllowlistFile(path)
	require.NoError(t, err)
	assert.Equal(t, 5, l.Len())
	require.NoError(t, os.WriteFile(path, []byte("a b c\n"), 0o600))
	_, err = LoadAllowlistFile(path)
	assert.ErrorContains(t, err, path+":1:")
	_, err = LoadAllowlistFile(filepath.Join(t.TempDir(), "none"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
