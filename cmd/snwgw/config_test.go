package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGatewayTomlDocumentsTheDefaults keeps the repository's gateway.toml
// true: loading it must give exactly the configuration serve runs with no
// file at all.
func TestGatewayTomlDocumentsTheDefaults(t *testing.T) {
	fromFile, err := loadConfig(filepath.Join("..", "..", "gateway.toml"))
	require.NoError(t, err)
	defaults, err := loadConfig("")
	require.NoError(t, err)
	a, err := fromFile.effective()
	require.NoError(t, err)
	b, err := defaults.effective()
	require.NoError(t, err)
	// The default data directory depends on where the file is
	// (TestDefaultDataDir); everything else must match.
	a.Persistence.DataDir, b.Persistence.DataDir = "", ""
	assert.Equal(t, encode(t, b), encode(t, a))
}

// The data directory follows systemd's StateDirectory, else the
// configuration file, else the working directory; a relative data_dir is
// relative to the file; the flags override the file.
func TestDefaultDataDir(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	c, err := loadConfig("")
	require.NoError(t, err)
	assert.Equal(t, "snwgw-data", c.Persistence.DataDir)
	p := writeConfig(t, "version = 1\n")
	c, err = loadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(filepath.Dir(p), "snwgw-data"), c.Persistence.DataDir)
	p = writeConfig(t, "[persistence]\ndata_dir = \"state\"\n")
	c, err = loadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(filepath.Dir(p), "state"), c.Persistence.DataDir)
	t.Setenv("STATE_DIRECTORY", "/var/lib/snwgw:/var/lib/other")
	c, err = loadConfig(writeConfig(t, "version = 1\n"))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/snwgw", c.Persistence.DataDir)

	_, err = loadConfig(writeConfig(t, "[persistence]\nsync = \"sometimes\"\n"))
	require.ErrorContains(t, err, "persistence")
	require.ErrorContains(t, err, "sometimes")
}

func encode(t *testing.T, c *Config) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, toml.NewEncoder(&buf).Encode(c))
	return buf.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		key        string
		is         error
	}{
		{"unknown key", "version = 1\n[gateway]\nretry_intervl = \"5s\"\n", 3, "gateway.retry_intervl", errUnknownKey},
		{"unknown table", "[gatway]\nid = 1\n", 1, "gatway", errUnknownKey},
		{"wrong type", "[gateway]\n\nretry_count = \"three\"\n", 3, "gateway.retry_count", nil},
		{"bad duration", "[gateway]\nretry_interval = \"10 sec\"\n", 2, "", nil},
		{"syntax", "[gateway\n", 2, "", nil}, // where the decoder finds the table name unterminated
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.text)
			_, err := loadConfig(p)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			assert.Equal(t, p, ce.Path)
			assert.Equal(t, tc.line, ce.Line, "error: %v", err)
			if tc.key != "" {
				assert.Equal(t, tc.key, ce.Key)
			}
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}

func TestConfigRejectsInvalidValues(t *testing.T) {
	for name, text := range map[string]string{
		"version":          "version = 2\n",
		"log level":        "[log]\nlevel = \"loud\"\n",
		"log format":       "[log]\nformat = \"xml\"\n",
		"gateway id":       "[gateway]\nid = 300\n",
		"tolerance":        "[gateway]\nkeepalive_tolerance = 0.5\n",
		"sleep policy":     "[gateway]\nsleep_buffer_policy = \"drop-newest\"\n",
		"predefined key":   "[gateway.predefined]\nabc = \"a/b\"\n",
		"predefined id 0":  "[gateway.predefined]\n0 = \"a/b\"\n",
		"predefined topic": "[gateway.predefined]\n1 = \"a/+\"\n",
		"udp address":      "[[udp]]\naddress = \"localhost\"\n",
		"parity":           "[[serial]]\ndevice = \"/dev/null\"\nparity = \"sometimes\"\n",
		"stop bits":        "[[serial]]\ndevice = \"/dev/null\"\nstop_bits = \"3\"\n",
		"api mode":         "[[serial]]\ndevice = \"/dev/null\"\nframing = \"xbee\"\nxbee_api_mode = 3\n",
		"size":             "[[udp]]\nreceive_buffer = \"lots\"\n",
		"connect rate":     "[auth]\nconnect_rate = -1.0\n",
		"connect burst":    "[auth]\nconnect_burst = -2\n",
		"unknown burst":    "[auth]\nunknown_rate = 5.0\nunknown_burst = -1\n",
		"tracked":          "[auth]\nrate_limit_addresses = -1\n",
		"mqtt rate":        "[auth]\nmqtt_connect_rate = -0.5\n",
		"mqtt burst":       "[auth]\nmqtt_connect_rate = 1.0\nmqtt_connect_burst = -1\n",
		"allowlist file":   "[auth]\nallowlist_file = \"/nonexistent/clients.allow\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, text))
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
		})
	}
}

func TestConfigCheckPrintsEffectiveConfiguration(t *testing.T) {
	p := writeConfig(t, "[gateway]\nid = 7\n[gateway.predefined]\n1 = \"sensors/t\"\n")
	var out bytes.Buffer
	require.NoError(t, runConfig([]string{"check", p}, &out))
	assert.Contains(t, out.String(), "id = 7")
	assert.Contains(t, out.String(), `retry_interval = "10s"`)
	assert.Contains(t, out.String(), `1 = "sensors/t"`)
}

func TestBridgeConfig(t *testing.T) {
	p := writeConfig(t, `
[[bridge]]
url = "mqtt://127.0.0.1:1883"
[[bridge.rule]]
local_filter = "sensors/#"
local_prefix = "sensors/"
remote_prefix = "site-a/sensors/"
[[bridge.rule]]
local_filter = "cmd/#"
direction = "in"
qos = 2
`)
	c, err := loadConfig(p)
	require.NoError(t, err)
	require.Len(t, c.Bridges, 1)
	o, err := c.Bridges[0].options(nil)
	require.NoError(t, err)
	require.Len(t, o.Rules, 2)
	assert.Equal(t, byte(1), o.Rules[0].QoS, "a rule without qos forwards up to QoS 1")
	assert.Equal(t, "site-a/sensors/", o.Rules[0].RemotePrefix)
	assert.Equal(t, byte(2), o.Rules[1].QoS)

	for name, text := range map[string]string{
		"no url":        "[[bridge]]\n[[bridge.rule]]\nlocal_filter = \"a\"\n",
		"no rule":       "[[bridge]]\nurl = \"mqtt://127.0.0.1\"\n",
		"bad direction": "[[bridge]]\nurl = \"mqtt://127.0.0.1\"\n[[bridge.rule]]\nlocal_filter = \"a\"\ndirection = \"sideways\"\n",
		"bad qos":       "[[bridge]]\nurl = \"mqtt://127.0.0.1\"\n[[bridge.rule]]\nlocal_filter = \"a\"\nqos = 3\n",
		"unknown key":   "[[bridge]]\nurl = \"mqtt://127.0.0.1\"\nurll = \"x\"\n",
	} {
		_, err := loadConfig(writeConfig(t, text))
		var ce *ConfigError
		assert.True(t, errors.As(err, &ce), "%s: got %v", name, err)
	}
}

// TestConfigPathsAreRelativeToTheFile: a configuration that names the
// files beside it works from any working directory.
func TestConfigPathsAreRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "acl"), []byte("topic read #\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "clients.allow"), []byte("boiler\n"), 0o600))
	p := filepath.Join(dir, "gateway.toml")
	require.NoError(t, os.WriteFile(p, []byte("[auth]\nacl_file = \"acl\"\nallowlist_file = \"clients.allow\"\n"+
		"[[bridge]]\nurl = \"mqtt://127.0.0.1\"\n[bridge.queue]\ndir = \"queue\"\n[[bridge.rule]]\nlocal_filter = \"a\"\n"+
		"[[serial]]\ndevice = \"ttyUSB0\"\n"), 0o600))
	t.Chdir(t.TempDir())
	c, err := loadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "acl"), c.Auth.ACLFile)
	assert.Equal(t, filepath.Join(dir, "clients.allow"), c.Auth.AllowlistFile)
	assert.Equal(t, filepath.Join(dir, "queue"), c.Bridges[0].Queue.Dir)
	assert.Equal(t, "ttyUSB0", c.Serial[0].Device)

	// And from a relative path to the file, as typed on a command line.
	t.Chdir(dir)
	c, err = loadConfig("gateway.toml")
	require.NoError(t, err)
	assert.Equal(t, "acl", c.Auth.ACLFile)
}
