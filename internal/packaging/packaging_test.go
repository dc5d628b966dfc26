package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
)

// root is the repository's top directory, seen from this package.
var root = filepath.Join("..", "..")

func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	require.NoError(t, err)
	return b
}

// TestServiceUnit runs systemd-analyze verify on deploy/snwgw.service, which
// wants ExecStart's program to exist: a copy of the unit names this test's
// own executable instead of /usr/bin/snwgw. Any warning fails the test, as
// does hardening that falls below its present exposure level.
func TestServiceUnit(t *testing.T) {
	unit := string(repoFile(t, "deploy/snwgw.service"))
	const exec_ = "ExecStart=/usr/bin/snwgw serve --config /etc/snwgw/gateway.toml\n"
	require.Contains(t, unit, exec_, "the package installs the binary and the configuration there")
	// serve finds its data directory in $STATE_DIRECTORY.
	assert.Contains(t, unit, "\nStateDirectory=snwgw\n")
	assert.Contains(t, unit, "\nConfigurationDirectory=snwgw\n")
	assert.Contains(t, unit, "\nUser=snwgw\n", "deploy/snwgw.sysusers creates this user")
	// SIGHUP ends serve, so a reload would stop the gateway for good.
	assert.NotContains(t, unit, "ExecReload=")

	analyze := testpeer.Look(t, "systemd-analyze", "systemd")
	self, err := os.Executable()
	require.NoError(t, err)
	copyPath := filepath.Join(t.TempDir(), "snwgw.service")
	require.NoError(t, os.WriteFile(copyPath, []byte(strings.Replace(unit, "/usr/bin/snwgw", self, 1)), 0o644))

	out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	assert.Empty(t, string(out), "systemd-analyze verify warns")

	// Exposure is 1.7 on systemd's scale of 0 (locked down) to 10; keep it
	// below 2.5.
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=25", copyPath).CombinedOutput()
	require.NoError(t, err, "systemd-analyze security: the unit lost hardening:\n%s", out)
}
