package packaging

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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
	// serve reloads nothing on SIGHUP yet: a reload would only pretend.
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

// debArch is the Debian architecture of the machine the tests run on, or
// "" when scripts/deb.sh builds no package for it.
func debArch() string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return runtime.GOARCH
	case "arm":
		return "armhf"
	}
	return ""
}

// TestDeb builds the package for this machine with scripts/deb.sh and
// checks it, or with SNWGW_DEB_DIR checks every package in that directory:
// amd64, arm64 and armhf, each once.
func TestDeb(t *testing.T) {
	dpkgDeb := testpeer.Look(t, "dpkg-deb", "dpkg")
	if dir := os.Getenv("SNWGW_DEB_DIR"); dir != "" {
		debs, err := filepath.Glob(filepath.Join(dir, "snwgw_*.deb"))
		require.NoError(t, err)
		found := map[string]int{}
		for _, deb := range debs {
			arch := strings.TrimSuffix(deb[strings.LastIndexByte(deb, '_')+1:], ".deb")
			found[arch]++
			t.Run(arch, func(t *testing.T) { checkDeb(t, dpkgDeb, deb, arch) })
		}
		assert.Equal(t, map[string]int{"amd64": 1, "arm64": 1, "armhf": 1}, found, "packages in %s", dir)
		return
	}
	arch := debArch()
	if arch == "" {
		t.Skipf("scripts/deb.sh builds no package for GOARCH %s", runtime.GOARCH)
	}
	testpeer.Look(t, "make", "make")
	dist := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "scripts", "deb.sh"), arch)
	cmd.Env = append(os.Environ(), "DIST="+dist)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "scripts/deb.sh %s:\n%s", arch, out)
	debs, err := filepath.Glob(filepath.Join(dist, "snwgw_*_"+arch+".deb"))
	require.NoError(t, err)
	require.Len(t, debs, 1, "scripts/deb.sh printed:\n%s", out)
	checkDeb(t, dpkgDeb, debs[0], arch)
}

// checkDeb checks one package without installing it; on a machine of its
// architecture it also runs the packaged binary.
func checkDeb(t *testing.T, dpkgDeb, deb, arch string) {
	t.Helper()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(dpkgDeb, args...).CombinedOutput()
		require.NoError(t, err, "dpkg-deb %v:\n%s", args, out)
		return string(out)
	}

	// The control file.
	info := run("--info", deb)
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^ ` + name + `: (.*)$`).FindStringSubmatch(info)
		if m == nil {
			return ""
		}
		return m[1]
	}
	assert.Equal(t, "snwgw", field("Package"))
	assert.Equal(t, arch, field("Architecture"))
	assert.Equal(t, "net", field("Section"))
	assert.Equal(t, "optional", field("Priority"))
	assert.NotEmpty(t, field("Maintainer"))
	assert.NotEmpty(t, field("Description"))
	assert.Empty(t, field("Depends"), "the binary is static")
	version := field("Version")
	assert.Equal(t, "snwgw_"+version+"_"+arch+".deb", filepath.Base(deb))
	assert.Regexp(t, `^[0-9][A-Za-z0-9.+~]*$`, version, "a Debian version without revision")
	assert.Equal(t, "/etc/snwgw/gateway.toml\n", run("--info", deb, "conffiles"))

	// The files, their modes and owners.
	want := map[string]string{
		"./usr/bin/snwgw":                    "-rwxr-xr-x",
		"./lib/systemd/system/snwgw.service": "-rw-r--r--",
		"./usr/lib/sysusers.d/snwgw.conf":    "-rw-r--r--",
		"./etc/snwgw/gateway.toml":           "-rw-r--r--",
		"./usr/share/doc/snwgw/copyright":    "-rw-r--r--",
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run("--contents", deb)), "\n") {
		f := strings.Fields(line) // mode owner/group size date time path
		require.Len(t, f, 6, "dpkg-deb --contents line %q", line)
		assert.Equal(t, "root/root", f[1], "owner of %s", f[5])
		if strings.HasPrefix(f[0], "d") {
			assert.Equal(t, "drwxr-xr-x", f[0], "mode of %s", f[5])
			continue
		}
		got[f[5]] = f[0]
	}
	assert.Equal(t, want, got)

	// The maintainer scripts, as the repository has them.
	ctrl := t.TempDir()
	run("--control", deb, ctrl)
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctrl, s))
		if assert.NoError(t, err) {
			assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), s)
		}
		b, err := os.ReadFile(filepath.Join(ctrl, s))
		require.NoError(t, err)
		assert.Equal(t, string(repoFile(t, "deploy/debian/"+s)), string(b), s)
	}

	// The files themselves.
	x := t.TempDir()
	run("--extract", deb, x)
	for pkgPath, repoPath := range map[string]string{
		"lib/systemd/system/snwgw.service": "deploy/snwgw.service",
		"usr/lib/sysusers.d/snwgw.conf":    "deploy/snwgw.sysusers",
		"etc/snwgw/gateway.toml":           "gateway.toml",
	} {
		b, err := os.ReadFile(filepath.Join(x, pkgPath))
		require.NoError(t, err)
		assert.Equal(t, string(repoFile(t, repoPath)), string(b), pkgPath)
	}
	cr, err := os.ReadFile(filepath.Join(x, "usr/share/doc/snwgw/copyright"))
	require.NoError(t, err)
	assert.True(t, bytes.Contains(cr, repoFile(t, "LICENSE")), "copyright holds LICENSE")
	for _, dep := range []string{"Go go1", "go.etcd.io/bbolt", "github.com/eclipse/paho.golang", "golang.org/x/sys"} {
		assert.Contains(t, string(cr), dep, "copyright names what the binary links")
	}

	// The binary: static, for the package's architecture.
	bin := filepath.Join(x, "usr/bin/snwgw")
	ef, err := elf.Open(bin)
	require.NoError(t, err)
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}[arch]
	assert.Equal(t, machine, ef.Machine, "ELF machine")
	for _, p := range ef.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no dynamic loader")
	}
	require.NoError(t, ef.Close())
	bi, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	if arch == "armhf" {
		assert.Equal(t, "6", settings["GOARM"], "armhf must run on the ARMv6 Pis")
	}

	if arch != debArch() {
		return
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, "snwgw version:\n%s", out)
	assert.Regexp(t, `^snwgw \S+\n`, string(out))
	// Under the unit, systemd sets STATE_DIRECTORY and the data file goes
	// to /var/lib/snwgw.
	check := exec.Command(bin, "config", "check", filepath.Join(x, "etc/snwgw/gateway.toml"))
	check.Env = append(os.Environ(), "STATE_DIRECTORY=/var/lib/snwgw")
	out, err = check.CombinedOutput()
	require.NoError(t, err, "snwgw config check:\n%s", out)
	assert.Contains(t, string(out), "is valid")
	assert.Contains(t, string(out), `data_dir = "/var/lib/snwgw"`)
}

// TestDebVersion checks that scripts/deb.sh turns git describe into Debian
// versions, and that dpkg orders the versions of successive commits as the
// commits are ordered.
func TestDebVersion(t *testing.T) {
	bash := testpeer.Look(t, "bash", "bash")
	dpkg := testpeer.Look(t, "dpkg", "dpkg")
	debversion := func(describe, time string) string {
		t.Helper()
		out, err := exec.Command(bash, filepath.Join(root, "scripts", "deb.sh"), "debversion", describe, time).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	// Successive commits: before the first tag, release candidates, a
	// release and the commits after it.
	ordered := []struct{ describe, time, want string }{
		{"ae03f14", "20261204153000", "0.0~git20261204153000.ae03f14"},
		{"0f1a6b9", "20261204160000", "0.0~git20261204160000.0f1a6b9"},
		{"v0.1.0-rc1", "20261205090000", "0.1.0~rc1"},
		{"v0.1.0-rc1-2-g1234567", "20261205100000", "0.1.0~rc1+2.g1234567"},
		{"v0.1.0", "20261206090000", "0.1.0"},
		{"v0.1.0-3-gabc1234", "20261207090000", "0.1.0+3.gabc1234"},
		{"v0.1.0-12-g0bc1234", "20261208090000", "0.1.0+12.g0bc1234"},
		{"v0.2.0", "20261209090000", "0.2.0"},
	}
	prev := ""
	for _, c := range ordered {
		got := debversion(c.describe, c.time)
		assert.Equal(t, c.want, got, c.describe)
		if prev != "" {
			assert.NoError(t, exec.Command(dpkg, "--compare-versions", prev, "lt", got).Run(), "%s < %s", prev, got)
		}
		prev = got
	}
	// Builds from a modified tree, and strings that are no version at all.
	for describe, want := range map[string]string{
		"7f1a6b9-dirty":           "0.0~git20261204153000.7f1a6b9.dirty",
		"v0.1.0-dirty":            "0.1.0+dirty",
		"v0.1.0-3-gabc1234-dirty": "0.1.0+3.gabc1234.dirty",
		"dev":                     "0.0~dev",
		"v1.2_beta":               "1.2.beta",
	} {
		assert.Equal(t, want, debversion(describe, "20261204153000"), describe)
	}
}

// TestDockerfile checks what can be checked without a Docker engine: the
// image builds the binary with the Makefile's static build, and publishes
// the ports and data directory the documentation promises.
func TestDockerfile(t *testing.T) {
	df := string(repoFile(t, "Dockerfile"))
	assert.Contains(t, df, "FROM golang:1.26-bookworm AS build")
	assert.Regexp(t, `(?m)^RUN make static `, df, "the image must use the Makefile's build")
	for _, p := range []string{"1883/udp", "1883/tcp", "8883/udp", "8883/tcp"} {
		assert.Regexp(t, `(?m)^EXPOSE .*\b`+regexp.QuoteMeta(p), df)
	}
	assert.Contains(t, df, `VOLUME ["/var/lib/snwgw"]`)
	assert.Contains(t, df, `"--data-dir", "/var/lib/snwgw"`)
	assert.Regexp(t, `(?m)^USER \S+`, df, "the gateway runs as a non-root user")
	assert.Contains(t, string(repoFile(t, "Makefile")), "CGO_ENABLED=0 $(GO) build")
	assert.Contains(t, string(repoFile(t, ".dockerignore")), "/dist")
}
