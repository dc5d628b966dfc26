package simulator

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/mqttsn"
	"github.com/snwgw/snwgw/transport"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestLoadExampleFleet(t *testing.T) {
	f, err := LoadFleet("../examples/fleet.toml")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1883", f.Link.UDP)
	assert.Equal(t, time.Minute, f.Duration)
	assert.Equal(t, Impairment{Loss: 2, Duplicate: 1, Reorder: 1, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond}, f.Up)
	assert.Equal(t, f.Up, f.Down)
	require.Len(t, f.Groups, 4)
	assert.Equal(t, Group{Profile: Environment, Count: 20, Name: "climate-{n}", Topic: "{base}/{name}", QoS: mqttsn.QoS1,
		Interval: 5 * time.Second, Jitter: time.Second, CleanSession: true}, f.Groups[0])
	assert.False(t, f.Groups[2].CleanSession)
	assert.True(t, f.Check.MQTTSN)
	_, err = New(f)
	require.NoError(t, err)
}

func TestLoadFleetDirectionsAndSerial(t *testing.T) {
	f, err := LoadFleet(writeFile(t, `
messages = 5
[link]
serial = "/dev/ttyUSB0"
baud = 115200
[impairment]
loss = 5.0
[impairment.down]
duplicate = 3.0
[[group]]
profile = "sleepy"
count = 1
`))
	require.NoError(t, err)
	assert.Equal(t, Impairment{Loss: 5}, f.Up)
	assert.Equal(t, Impairment{Duplicate: 3}, f.Down)
	assert.Equal(t, "/dev/ttyUSB0", f.Link.Serial.Device)
	assert.Equal(t, 115200, f.Link.Serial.BaudRate)
	assert.Equal(t, transport.FramingRaw, f.Link.Serial.Framing)
	assert.False(t, f.Groups[0].CleanSession, "sleepy default")
}

func TestLoadFleetErrors(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":  {"[[group]]\nprofile = \"env\"\nqos_level = 1\n", `unknown key "group.qos_level"`},
		"syntax":       {"seed = \n", "fleet.toml:1:"},
		"bad duration": {"duration = \"soon\"\n", "invalid duration"},
		"bad qos":      {"[[group]]\nqos = 7\n", "QoS 7"},
		"xbee no gw":   {"[link]\nserial = \"/dev/x\"\nframing = \"xbee\"\n", "XBee address"},
		"raw with gw":  {"[link]\nserial = \"/dev/x\"\ngateway = \"0013A20040A1B2C3\"\n", "one peer"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadFleet(writeFile(t, tc.text))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.ErrorIs(t, err, ErrInvalidFleet)
		})
	}
	_, err := LoadFleet(filepath.Join(t.TempDir(), "missing.toml"))
	assert.Error(t, err)
}

func TestFleetValidate(t *testing.T) {
	ok := Fleet{Link: Link{UDP: "127.0.0.1:1883"}, Messages: 1, Groups: []Group{{Profile: Environment, Count: 1}}}
	_, err := New(ok)
	require.NoError(t, err)
	for name, mutate := range map[string]func(*Fleet){
		"no link":          func(f *Fleet) { f.Link = Link{} },
		"two links":        func(f *Fleet) { f.Link.Serial.Device = "/dev/x" },
		"no groups":        func(f *Fleet) { f.Groups = nil },
		"unbounded":        func(f *Fleet) { f.Messages = 0 },
		"unknown profile":  func(f *Fleet) { f.Groups[0].Profile = "toaster" },
		"qos 3":            func(f *Fleet) { f.Groups[0].QoS = 3 },
		"sleepy qos -1":    func(f *Fleet) { f.Groups[0].Profile, f.Groups[0].QoS = Sleepy, mqttsn.QoSMinus1 },
		"sleepy clean":     func(f *Fleet) { f.Groups[0].Profile, f.Groups[0].CleanSession = Sleepy, true },
		"jitter too big":   func(f *Fleet) { f.Groups[0].Interval, f.Groups[0].Jitter = time.Second, 2*time.Second },
		"shared topic":     func(f *Fleet) { f.Groups[0].Topic = "all/same" },
		"wildcard":         func(f *Fleet) { f.Groups[0].Topic = "a/+/{name}" },
		"duplicate names":  func(f *Fleet) { f.Groups = append(f.Groups, f.Groups[0]) },
		"bad impairment":   func(f *Fleet) { f.Up.Loss = 101 },
		"negative payload": func(f *Fleet) { f.Groups[0].PayloadSize = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			f := ok
			f.Groups = append([]Group(nil), ok.Groups...)
			mutate(&f)
			_, err := New(f)
			assert.Error(t, err)
		})
	}
}

func TestNamesTopicsAndFilters(t *testing.T) {
	g := Group{Profile: Bulb, Name: "lamp-{n}", Topic: "{base}/{name}"}
	assert.Equal(t, "lamp-3", g.deviceName("z2m", 3))
	assert.Equal(t, "z2m/lamp-3", g.deviceTopic("z2m", "lamp-3", 3))
	assert.Equal(t, "z2m/#", g.checkFilter("z2m"))
	g = Group{Profile: Environment, Name: "{profile}", Topic: "site/{n}/{name}/reading"}
	assert.Equal(t, "env-7", g.deviceName("b", 7), "the number is appended when the pattern has none")
	assert.Equal(t, "site/7/env-7/reading", g.deviceTopic("b", "env-7", 7))
	assert.Equal(t, "site/#", g.checkFilter("b"))
	assert.Equal(t, "#", Group{Topic: "{name}"}.checkFilter("b"))
}
