package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exampleACL is the example of the package documentation.
const exampleACL = `# Everybody may read the gateway's status.
topic read $SYS/broker/#
# Every client may publish under its own client id and read commands for it.
pattern write sensors/%c/#
pattern read commands/%c/#

user dashboard
topic read sensors/#
topic write commands/#

# An MQTT-SN sensor that may also read the time.
client kitchen-temp
topic read time/now

# Whoever holds the PSK "site-a" speaks for site A.
identity site-a
topic readwrite site-a/#

# Nothing from the plain UDP link may touch actuators.
link udp
topic deny actuators/#
`

func mustACL(t testing.TB, text string) *ACL {
	t.Helper()
	acl, err := ParseACL(strings.NewReader(text))
	require.NoError(t, err)
	return acl
}

func TestACLExample(t *testing.T) {
	acl := mustACL(t, exampleACL)
	dashboard := Client{ClientID: "dash-1", Username: "dashboard", Link: "tcp"}
	kitchen := Client{ClientID: "kitchen-temp", Link: "udp"}
	siteA := Client{ClientID: "meter-3", Identity: "site-a", Link: "dtls"}
	anon := Client{ClientID: "anon-9", Link: "tcp"}

	for _, tc := range []struct {
		c     Client
		topic string
		want  bool
	}{
		{kitchen, "sensors/kitchen-temp/t", true},
		{kitchen, "sensors/kitchen-temp", true}, // "#" matches the parent level
		{kitchen, "sensors/other/t", false},
		{kitchen, "time/now", false}, // read only
		{dashboard, "commands/kitchen-temp/set", true},
		{dashboard, "sensors/x", false},
		{dashboard, "sensors/dash-1/x", true}, // the global pattern
		{siteA, "site-a/meter-3/kwh", true},
		{siteA, "site-b/x", false},
		{anon, "sensors/anon-9/x", true},
		{anon, "$SYS/broker/uptime", false},
		{Client{ClientID: "kitchen-temp", Link: "udp"}, "actuators/valve", false},
	} {
		assert.Equal(t, tc.want, acl.AllowPublish(tc.c, tc.topic), "%+v publish %s", tc.c, tc.topic)
	}
	for _, tc := range []struct {
		c      Client
		filter string
		want   bool
	}{
		{dashboard, "sensors/#", true},
		{dashboard, "sensors/+/temp", true},
		{dashboard, "#", true},          // reads sensors/..., judged per message
		{dashboard, "commands/#", true}, // reads commands/dash-1/...
		{dashboard, "commands/x", false},
		{dashboard, "other/#", false},
		{dashboard, "$share/g/sensors/#", true},
		{dashboard, "$share/g/other/#", false},
		{anon, "$SYS/broker/#", true},
		{anon, "$SYS/#", true},
		{anon, "$SYS/other", false},
		{anon, "commands/anon-9/#", true},
		{anon, "commands/+/#", true},
		{anon, "sensors/#", false}, // write only
		{kitchen, "time/now", true},
		{kitchen, "time/+", true},
		{kitchen, "time/later", false},
		{siteA, "site-a/#", true},
		{siteA, "+/meter-3", true},
		{siteA, "site-b/#", false},
	} {
		assert.Equal(t, tc.want, acl.AllowSubscribe(tc.c, tc.filter), "%+v subscribe %s", tc.c, tc.filter)
	}
	for _, tc := range []struct {
		c     Client
		topic string
		want  bool
	}{
		{dashboard, "sensors/kitchen/t", true},
		{dashboard, "commands/kitchen/set", false},
		{dashboard, "commands/dash-1/set", true},
		{anon, "$SYS/broker/uptime", true},
		{anon, "$SYS/other", false},
		{kitchen, "time/now", true},
		{kitchen, "time/later", false},
		{Client{ClientID: "k", Link: "udp"}, "actuators/valve", false},
	} {
		assert.Equal(t, tc.want, acl.AllowRead(tc.c, tc.topic), "%+v read %s", tc.c, tc.topic)
	}
}

func TestACLDenyWins(t *testing.T) {
	acl := mustACL(t, `
topic read #
topic deny sensors/secret/#
topic write sensors/#
user root
topic readwrite #
`)
	root := Client{Username: "root", ClientID: "r"}
	assert.False(t, acl.AllowPublish(root, "sensors/secret/x"), "global deny applies to every user")
	assert.True(t, acl.AllowPublish(root, "sensors/open"))
	// A subscription is refused only where the deny covers all of it;
	// the messages of the denied tree are held back one by one.
	assert.True(t, acl.AllowSubscribe(root, "#"), "overlaps the denied tree")
	assert.True(t, acl.AllowSubscribe(root, "sensors/+/x"), "sensors/secret/x matches both")
	assert.False(t, acl.AllowSubscribe(root, "sensors/secret/#"))
	assert.False(t, acl.AllowSubscribe(root, "sensors/secret/+"))
	assert.True(t, acl.AllowSubscribe(root, "sensors/open/#"))
	assert.True(t, acl.AllowSubscribe(root, "other/#"))
	assert.False(t, acl.AllowRead(root, "sensors/secret/x"))
	assert.True(t, acl.AllowRead(root, "sensors/open/x"))
}

func TestACLEmptyDeniesAll(t *testing.T) {
	acl := mustACL(t, "# nothing\n")
	assert.False(t, acl.AllowPublish(Client{ClientID: "a"}, "a"))
	assert.False(t, acl.AllowSubscribe(Client{ClientID: "a"}, "a"))
	assert.False(t, acl.AllowRead(Client{ClientID: "a"}, "a"))
}

func TestACLTopicWithSpaces(t *testing.T) {
	// Mosquitto allows spaces in a topic once the access is given.
	acl := mustACL(t, "topic read my topic/#\n")
	assert.True(t, acl.AllowSubscribe(Client{ClientID: "c"}, "my topic/x"))
	assert.False(t, acl.AllowPublish(Client{ClientID: "c"}, "my topic/x"))
}

func TestACLAccessDefaultsToReadWrite(t *testing.T) {
	acl := mustACL(t, "topic a/b\npattern c/%u\n")
	u := Client{ClientID: "x", Username: "u"}
	assert.True(t, acl.AllowPublish(u, "a/b"))
	assert.True(t, acl.AllowSubscribe(u, "a/b"))
	assert.True(t, acl.AllowPublish(u, "c/u"))
	assert.True(t, acl.AllowSubscribe(u, "c/u"))
}

func TestACLPatternSubstitution(t *testing.T) {
	acl := mustACL(t, "pattern readwrite devices/%u/%c/#\npattern deny private/%c\n")
	for _, tc := range []struct {
		name  string
		c     Client
		topic string
		want  bool
	}{
		{"both", Client{ClientID: "c1", Username: "u1"}, "devices/u1/c1/x", true},
		{"other client", Client{ClientID: "c1", Username: "u1"}, "devices/u1/c2/x", false},
		{"no user", Client{ClientID: "c1"}, "devices//c1/x", false},
		{"slash in id", Client{ClientID: "c1/x", Username: "u1"}, "devices/u1/c1/x/y", false},
		{"wildcard in user", Client{ClientID: "c1", Username: "+"}, "devices/a/c1/x", false},
		{"percent in id", Client{ClientID: "%u", Username: "u1"}, "devices/u1/u1/x", false},
		{"percent in id literal", Client{ClientID: "%u", Username: "u1"}, "devices/u1/%u/x", true},
	} {
		assert.Equal(t, tc.want, acl.AllowPublish(tc.c, tc.topic), tc.name)
	}
	// A deny pattern that cannot name the client fails closed.
	assert.False(t, acl.AllowPublish(Client{ClientID: "a#", Username: "u1"}, "devices/u1/x"))
}

func TestACLSectionsNeedTheirValue(t *testing.T) {
	// An anonymous client does not match "user ''" style sections by its
	// empty name, nor does a client without identity match an identity.
	acl := mustACL(t, "user a\ntopic t/#\nidentity b\ntopic t/#\nclient c\ntopic t/#\nlink d\ntopic t/#\n")
	assert.False(t, acl.AllowPublish(Client{}, "t/x"))
	for _, c := range []Client{{Username: "a"}, {Identity: "b"}, {ClientID: "c"}, {Link: "d"}} {
		assert.True(t, acl.AllowPublish(c, "t/x"), "%+v", c)
	}
	// Section names may contain spaces, as user names may.
	acl = mustACL(t, "user Jane Doe\ntopic j\n")
	assert.True(t, acl.AllowPublish(Client{Username: "Jane Doe"}, "j"))
}

func TestACLParseErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		line int
		msg  string
	}{
		"unknown keyword":   {"topic a\nallow b\n", 2, `unknown keyword "allow"`},
		"user without name": {"user\n", 1, "user needs a name"},
		"no filter":         {"topic read\n", 1, "needs a topic filter"},
		"bad filter":        {"\n\ntopic read a/#/b\n", 3, "topic filter"},
		"bad plus":          {"topic a+/b\n", 1, "topic filter"},
		"shared":            {"topic $share/g/a\n", 1, "$share"},
		"bad pattern":       {"pattern x/%c#\n", 1, "topic filter"},
		"long line":         {strings.Repeat("x", maxACLLine+1), 1, "too long"},
		"misspelt access":   {"user u\ntopic wirte sensors/#\n", 2, `unknown access "wirte"`},
		"misspelt pattern":  {"pattern raed sensors/%c/#\n", 1, `unknown access "raed"`},
		"spaces, no access": {"topic my topic\n", 1, `unknown access "my"`},
	} {
		_, err := ParseACL(strings.NewReader(tc.in))
		require.ErrorIs(t, err, ErrACLFile, name)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, name)
		assert.Equal(t, tc.line, pe.Line, name)
		assert.Contains(t, pe.Msg, tc.msg, name)
	}
	path := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(path, []byte("topic read\n"), 0o600))
	_, err := LoadACLFile(path)
	assert.ErrorContains(t, err, path+":1: topic read needs a topic filter")
	require.NoError(t, os.WriteFile(path, []byte("topic read a\ntopic wirte sensors/#\n"), 0o600))
	_, err = LoadACLFile(path)
	assert.ErrorContains(t, err, path+`:2: topic "wirte sensors/#": unknown access "wirte"`)
	_, err = LoadACLFile(filepath.Join(t.TempDir(), "none"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func split(s string) []string { return strings.Split(s, "/") }

func TestFilterRelations(t *testing.T) {
	for _, tc := range []struct {
		f, topic string
		want     bool
	}{
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/#", "a", true},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"+", "", true},
		{"a/b", "a/b/c", false},
		{"/a", "/a", true},
	} {
		assert.Equal(t, tc.want, matches(split(tc.f), split(tc.topic)), "%s matches %s", tc.f, tc.topic)
	}
	for _, tc := range []struct {
		r, s string
		want bool
	}{
		{"#", "a/+/b", true},
		{"#", "#", true},
		{"#", "$SYS/#", false},
		{"$SYS/#", "#", false},
		{"a/#", "a", true},
		{"a/#", "a/#", true},
		{"a", "a/#", false},
		{"a/+", "a/#", false},
		{"a/+", "a/+", true},
		{"a/b", "a/+", false},
		{"+/b", "x/b", true},
		{"+/+", "+/+/+", false},
	} {
		assert.Equal(t, tc.want, covers(split(tc.r), split(tc.s)), "%s covers %s", tc.r, tc.s)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"#", "x", true},
		{"a/#", "a", true},
		{"a", "a/b", false},
		{"a/+", "+/b", true},
		{"a/b", "a/c", false},
		{"+", "$SYS", false},
		{"$SYS/#", "#", false},
		{"+/+", "a", false},
	} {
		assert.Equal(t, tc.want, overlaps(split(tc.a), split(tc.b)), "%s overlaps %s", tc.a, tc.b)
		assert.Equal(t, tc.want, overlaps(split(tc.b), split(tc.a)), "%s overlaps %s", tc.b, tc.a)
	}
}

func BenchmarkACLAllowPublish(b *testing.B) {
	b.ReportAllocs()
	acl := mustACL(b, exampleACL)
	c := Client{ClientID: "kitchen-temp", Link: "udp"}
	for b.Loop() {
		acl.AllowPublish(c, "sensors/kitchen-temp/temperature")
	}
}

func BenchmarkACLAllowRead(b *testing.B) {
	b.ReportAllocs()
	acl := mustACL(b, exampleACL)
	c := Client{ClientID: "dash-1", Username: "dashboard", Link: "tcp"}
	for b.Loop() {
		acl.AllowRead(c, "sensors/kitchen-temp/temperature")
	}
}

func BenchmarkACLAllowSubscribe(b *testing.B) {
	b.ReportAllocs()
	acl := mustACL(b, exampleACL)
	c := Client{ClientID: "dash-1", Username: "dashboard", Link: "tcp"}
	for b.Loop() {
		acl.AllowSubscribe(c, "sensors/+/temperature")
	}
}
