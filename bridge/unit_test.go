package bridge

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/archtest"
	"github.com/snwgw/snwgw/mqttcore"
)

func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/bridge",
		"github.com/snwgw/snwgw/mqttcore",
		"github.com/eclipse/paho.golang",
		// What autopaho itself pulls in: WebSockets and proxy dialling.
		"github.com/gorilla/websocket",
		"golang.org/x/net",
	)
}

func validOptions() Options {
	return Options{URL: "mqtt://broker.example", Rules: []Rule{{LocalFilter: "a/#", Direction: DirectionOut}}}
}

func TestOptionsDefaults(t *testing.T) {
	o := validOptions()
	require.NoError(t, o.Validate())
	d := o.withDefaults()
	assert.Equal(t, "broker.example", d.Name)
	assert.True(t, strings.HasPrefix(d.ClientID, "snwgw-"))
	assert.Equal(t, "snwgw/"+d.ClientID+"/state", d.StateTopic)
	assert.Equal(t, DefaultKeepAlive, d.KeepAlive)
	assert.Equal(t, DefaultQueueLimit, d.Queue.Limit)
	assert.Equal(t, PolicyDropOldest, d.Queue.Policy)

	u, err := parseURL("MQTTS://[::1]")
	require.NoError(t, err)
	assert.Equal(t, "[::1]:8883", u.Host)
	u, err = parseURL("wss://h/mqtt")
	require.NoError(t, err)
	assert.Equal(t, "h:443", u.Host)
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"bad scheme", func(o *Options) { o.URL = "http://h" }, "scheme"},
		{"no host", func(o *Options) { o.URL = "mqtt://" }, "no host"},
		{"no url", func(o *Options) { o.URL = "" }, "url"},
		{"both passwords", func(o *Options) { o.Password, o.PasswordFile = "a", "b" }, "password"},
		{"tls on plain", func(o *Options) { o.TLS.CAFile = "ca.pem" }, "mqtts"},
		{"cert without key", func(o *Options) { o.URL = "mqtts://h"; o.TLS.CertFile = "c.pem" }, "key file"},
		{"keep alive fraction", func(o *Options) { o.KeepAlive = 1500 * time.Millisecond }, "keep alive"},
		{"keep alive too long", func(o *Options) { o.KeepAlive = 70000 * time.Second }, "keep alive"},
		{"retry max below min", func(o *Options) { o.ConnectRetryMin, o.ConnectRetryMax = 2*time.Second, time.Second }, "retry"},
		{"no rules", func(o *Options) { o.Rules = nil }, "no rules"},
		{"bad direction", func(o *Options) { o.Rules[0].Direction = "sideways" }, "direction"},
		{"bad qos", func(o *Options) { o.Rules[0].QoS = 3 }, "qos"},
		{"bad filter", func(o *Options) { o.Rules[0].LocalFilter = "a/#/b" }, "local filter"},
		{"shared filter", func(o *Options) { o.Rules[0].LocalFilter = "$share/g/a" }, "shared"},
		{"prefix wildcard", func(o *Options) { o.Rules[0].RemotePrefix = "x/+/" }, "wildcards"},
		{"prefix mismatch", func(o *Options) { o.Rules[0].LocalPrefix = "b/" }, "local prefix"},
		{"bad state topic", func(o *Options) { o.StateTopic = "a/#" }, "state topic"},
		{"bad policy", func(o *Options) { o.Queue.Policy = "lifo" }, "policy"},
		{"memory queue too big", func(o *Options) { o.Queue.Limit = MaxMemoryQueue + 1 }, "queue limit"},
		{"disk queue too big", func(o *Options) { o.Queue.Dir, o.Queue.Limit = "q", MaxDiskQueue+1 }, "queue limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.change(&o)
			err := o.Validate()
			require.ErrorIs(t, err, ErrInvalidOptions)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	o := validOptions()
	o.Queue.Dir, o.Queue.Limit = "q", MaxDiskQueue
	assert.NoError(t, o.Validate())
}

func TestNewErrors(t *testing.T) {
	b := newBroker(t)
	_, err := New(nil, validOptions())
	assert.ErrorIs(t, err, ErrInvalidOptions)

	o := validOptions()
	o.PasswordFile = filepath.Join(t.TempDir(), "missing")
	_, err = New(b, o)
	assert.ErrorIs(t, err, os.ErrNotExist)

	o = validOptions()
	o.URL = "mqtts://h"
	o.TLS.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(o.TLS.CAFile, []byte("not a certificate"), 0o600))
	_, err = New(b, o)
	assert.ErrorContains(t, err, "no PEM certificate")
}

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "b", false},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"+", "", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, match(tt.filter, tt.topic), "%q ~ %q", tt.filter, tt.topic)
	}
}

func TestRewrite(t *testing.T) {
	r := Rule{LocalFilter: "cmd/#", LocalPrefix: "cmd/", RemotePrefix: "site-a/commands/"}
	assert.Equal(t, "site-a/commands/#", r.remoteFilter())
	assert.Equal(t, "site-a/commands/valve", r.toRemote("cmd/valve"))
	assert.Equal(t, "cmd/valve", r.toLocal("site-a/commands/valve"))
	r = Rule{LocalFilter: "sensors/#", RemotePrefix: "site-a/"}
	assert.Equal(t, "site-a/sensors/#", r.remoteFilter())
	assert.Equal(t, "site-a/sensors/t", r.toRemote("sensors/t"))
	assert.Equal(t, "sensors/t", r.toLocal("site-a/sensors/t"))
}

func TestMarkers(t *testing.T) {
	props := []mqttcore.UserProperty{{Key: "a", Value: "1"}, {Key: MarkerProperty, Value: "x"}, {Key: "b", Value: "2"}}
	assert.True(t, hasMarker(props, "x"))
	assert.False(t, hasMarker(props, "y"))
	assert.Equal(t, []mqttcore.UserProperty{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}, withoutMarkers(props))
	assert.Len(t, props, 3, "the engine's slice is left alone")
}

func testEntry() *entry {
	pf := byte(1)
	return &entry{
		topic: "site-a/sensors/t", payload: []byte("21.5"), qos: 2, retain: true,
		props: mqttcore.MessageProperties{
			PayloadFormat: &pf, ContentType: "text/plain", ResponseTopic: "r/t", CorrelationData: []byte{1, 2},
			User: []mqttcore.UserProperty{{Key: "k", Value: "v"}},
		},
		expires: time.Unix(1700000000, 5),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := testEntry()
	b, err := appendEntry(nil, e)
	require.NoError(t, err)
	got, err := decodeEntry(b)
	require.NoError(t, err)
	assert.Equal(t, e.topic, got.topic)
	assert.Equal(t, e.payload, got.payload)
	assert.Equal(t, e.qos, got.qos)
	assert.Equal(t, e.retain, got.retain)
	assert.Equal(t, e.props, got.props)
	assert.True(t, e.expires.Equal(got.expires))

	for i := range b { // every truncation and every flipped byte is caught
		_, err := decodeEntry(b[:i])
		assert.ErrorIs(t, err, ErrCorruptEntry, "truncated at %d", i)
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		_, err = decodeEntry(c)
		assert.ErrorIs(t, err, ErrCorruptEntry, "byte %d flipped", i)
	}
}

func TestDiskQueue(t *testing.T) {
	dir := t.TempDir()
	q, corrupt, err := openDiskQueue(dir)
	require.NoError(t, err)
	assert.Zero(t, corrupt)
	var pushed []*entry
	for i := range 5 {
		e := testEntry()
		e.payload = []byte{byte(i)}
		require.NoError(t, q.push(e, true))
		pushed = append(pushed, e)
	}
	require.NoError(t, q.syncDir())
	head, ok := q.next()
	require.True(t, ok)
	assert.Same(t, pushed[0], head)
	// drop-oldest passes over the entry in flight.
	dropped, err := q.dropOldest()
	require.NoError(t, err)
	assert.Same(t, pushed[1], dropped)
	removed, err := q.remove(head)
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = q.remove(head)
	require.NoError(t, err)
	assert.False(t, removed)

	// A damaged file is set aside; the rest comes back in order.
	require.NoError(t, os.WriteFile(q.fileName(pushed[3].seq), []byte("SNQ1garbage"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stray.txt"), nil, 0o600))
	q2, corrupt, err := openDiskQueue(dir)
	require.NoError(t, err)
	assert.Equal(t, 1, corrupt)
	require.Equal(t, 2, q2.len())
	e, _ := q2.next()
	assert.Equal(t, []byte{2}, e.payload)
	_, _ = q2.remove(e)
	e, _ = q2.next()
	assert.Equal(t, []byte{4}, e.payload)
	assert.FileExists(t, q.fileName(pushed[3].seq)+corruptSuffix)

	// New entries continue after the highest sequence number on disk.
	require.NoError(t, q2.push(testEntry(), true))
	assert.Greater(t, q2.entries[len(q2.entries)-1].seq, pushed[4].seq)
}

func TestDiskQueueUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, _, err := openDiskQueue(filepath.Join(file, "q"))
	assert.Error(t, err)
	var pe *os.PathError
	assert.True(t, errors.As(err, &pe))
}

func TestBackoff(t *testing.T) {
	br := &Bridge{opts: Options{ConnectRetryMin: time.Second, ConnectRetryMax: 8 * time.Second}}
	assert.Zero(t, br.backoff(0))
	for attempt, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 100: 8 * time.Second} {
		d := br.backoff(attempt)
		assert.GreaterOrEqual(t, d, ceiling/2, "attempt %d", attempt)
		assert.LessOrEqual(t, d, ceiling, "attempt %d", attempt)
	}
}

func TestIsMQTT311Connack(t *testing.T) {
	assert.True(t, isMQTT311Connack([]byte{0x20, 0x02, 0x00, 0x01}))
	assert.False(t, isMQTT311Connack([]byte{0x20, 0x03, 0x00, 0x00}), "an MQTT 5 CONNACK")
	assert.False(t, isMQTT311Connack([]byte{0x20, 0x02, 0x00, 0x05}), "3.1.1, refused for another reason")
	assert.False(t, isMQTT311Connack([]byte{0x20, 0x02}))
}
