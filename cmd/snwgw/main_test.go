package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionPrintsGoVersionAndRevision(t *testing.T) {
	old := revision
	revision = "0123abcd"
	t.Cleanup(func() { revision = old })

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, &out, &out))
	assert.Contains(t, out.String(), "snwgw ")
	assert.Contains(t, out.String(), "go: "+runtime.Version())
	assert.Contains(t, out.String(), "revision: 0123abcd")
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"no-such-command"}, {"version", "extra"}} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, &out)
		var u usageError
		assert.True(t, errors.As(err, &u), "args %q: got %v, want a usage error", args, err)
	}
}

// TestBuiltBinaryReportsRevision builds the binary the way `make build`
// does, inside a throwaway git repository, and checks that the VCS stamp
// reaches `snwgw version`.
func TestBuiltBinaryReportsRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	bin := filepath.Join(t.TempDir(), "snwgw")
	cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		// Outside a git work tree (e.g. an exported source tarball) there is
		// no revision to stamp; that is not what this test is about.
		if strings.Contains(string(out), "error obtaining VCS status") {
			t.Skipf("not in a VCS work tree: %s", out)
		}
		require.NoError(t, err, "%s", out)
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("no git HEAD to compare with")
	}
	// In a linked work tree (git worktree) .git is a file, and the go
	// command stamps no revision there: nothing to compare with either.
	dir, _ := exec.Command(git, "rev-parse", "--absolute-git-dir").Output()
	common, _ := exec.Command(git, "rev-parse", "--path-format=absolute", "--git-common-dir").Output()
	if len(dir) > 0 && !bytes.Equal(dir, common) {
		t.Skip("a linked git work tree: the go command stamps no revision here")
	}
	out, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "revision: "+strings.TrimSpace(string(head)))
}

// TestHelpOnEveryCommand asks every command for help, both ways: the usage
// goes to stdout and the command succeeds, so `snwgw sub --help | less`
// works and scripts can tell help from a mistake.
func TestHelpOnEveryCommand(t *testing.T) {
	for _, cmd := range [][]string{
		{"serve"}, {"pub"}, {"sub"}, {"sim"}, {"bench"}, {"passwd"},
		{"config"}, {"config", "check"}, {"version"}, {"help"}, {},
	} {
		for _, flag := range []string{"-h", "--help"} {
			args := append(append([]string{}, cmd...), flag)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				require.NoError(t, run(context.Background(), args, &stdout, &stderr))
				assert.Contains(t, strings.ToLower(stdout.String()), "usage", "the usage text on stdout")
				assert.Empty(t, stderr.String())
			})
		}
	}
}
