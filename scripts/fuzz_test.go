package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGo stands in for the go command in fuzz.sh: one package with one fuzz
// target, FuzzFake, whose fuzzing run prints $dir/fuzz.out and exits with
// $dir/fuzz.rc, writing $dir/pkg/testdata/fuzz/FuzzFake/abc if $dir/writes
// exists; running that input alone exits with $dir/rerun.rc.
const fakeGo = `#!/usr/bin/env bash
dir=$(dirname "$0")
case "$*" in
"list ./...") echo example.com/fake ;;
"test -list ^Fuzz example.com/fake") echo FuzzFake; echo ok ;;
"list -f {{.Dir}} example.com/fake") echo "$dir/pkg" ;;
"test -run ^\$ -fuzz ^FuzzFake\$ "*)
	if [ -e "$dir/writes" ]; then
		mkdir -p "$dir/pkg/testdata/fuzz/FuzzFake" && echo input > "$dir/pkg/testdata/fuzz/FuzzFake/abc"
	fi
	cat "$dir/fuzz.out"
	exit "$(cat "$dir/fuzz.rc")" ;;
"test -timeout 5m -run ^FuzzFake\$/^abc\$ example.com/fake") exit "$(cat "$dir/rerun.rc")" ;;
*) echo "fake go: unexpected: $*" >&2; exit 3 ;;
esac
`

const (
	written = "    Failing input written to testdata/fuzz/FuzzFake/abc\n    To re-run:\n    go test -run=FuzzFake/abc\n"
	tail    = "FAIL\nexit status 1\nFAIL\texample.com/fake\t10.1s\n"
)

// TestFuzzScriptVerdicts runs fuzz.sh on the endings go test gives a
// fuzzing run: those of a run that found nothing pass, every finding fails.
func TestFuzzScriptVerdicts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a bash script")
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "fuzz.sh")
	for _, tc := range []struct {
		name    string
		out     string
		rc      int
		writes  bool
		rerunRC int
		pass    bool
	}{
		{name: "nothing found", out: "fuzz: elapsed: 10s, execs: 100\nPASS\nok\texample.com/fake\t10.1s\n", pass: true},
		{name: "deadline reported", rc: 1, pass: true,
			out: "--- FAIL: FuzzFake (10.01s)\n    context deadline exceeded\n" + tail},
		{name: "deadline reported within another message", rc: 1, pass: true,
			out: "--- FAIL: FuzzFake (10.01s)\n    communicating with fuzzing process: context deadline exceeded\n" + tail},
		{name: "starved worker, input passes alone", rc: 1, writes: true, pass: true,
			out: "--- FAIL: FuzzFake (12.3s)\n    fuzzing process hung or terminated unexpectedly: exit status 2\n" + written + tail},
		{name: "hung worker, input fails alone", rc: 1, writes: true, rerunRC: 1,
			out: "--- FAIL: FuzzFake (12.3s)\n    fuzzing process hung or terminated unexpectedly: exit status 2\n" + written + tail},
		{name: "target failed on an input", rc: 1, writes: true,
			out: "--- FAIL: FuzzFake (0.12s)\n    --- FAIL: FuzzFake (0.00s)\n        fake_test.go:12: boom\n    \n" + written + tail},
		{name: "target failed on an input with a deadline of its own", rc: 1, writes: true,
			out: "--- FAIL: FuzzFake (0.12s)\n    --- FAIL: FuzzFake (0.00s)\n        fake_test.go:12: context deadline exceeded\n    \n" + written + tail},
		{name: "seed failed with a deadline of its own", rc: 1,
			out: "failure while testing seed corpus entry: FuzzFake/seed#0\n--- FAIL: FuzzFake (0.02s)\n    context deadline exceeded\n" + tail},
		{name: "setup failure", rc: 1,
			out: "--- FAIL: FuzzFake (0.02s)\n    fuzzing process terminated without fuzzing: EOF\n" + tail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, content string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755))
			}
			write("go", fakeGo)
			write("fuzz.out", tc.out)
			write("fuzz.rc", itoa(tc.rc))
			write("rerun.rc", itoa(tc.rerunRC))
			if tc.writes {
				write("writes", "")
			}
			cmd := exec.Command("bash", script)
			cmd.Env = append(os.Environ(), "GO="+filepath.Join(dir, "go"), "FUZZTIME=1s")
			out, err := cmd.CombinedOutput()
			if tc.pass {
				require.NoError(t, err, "%s", out)
				assert.Contains(t, string(out), "fuzz: 1 targets")
				assert.NoFileExists(t, filepath.Join(dir, "pkg/testdata/fuzz/FuzzFake/abc"), "a passing input is not kept")
			} else {
				require.Error(t, err, "%s", out)
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, 1, exit.ExitCode(), "%s", out)
			}
		})
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
