package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/auth"
	"github.com/snwgw/snwgw/internal/testpeer"
)

func passwd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runPasswd(args, strings.NewReader(stdin), &stdout, &stderr)
	assert.Empty(t, stdout.String(), "passwords are never printed")
	return stderr.String(), err
}

func load(t *testing.T, path string) *auth.Passwords {
	t.Helper()
	p, err := auth.LoadPasswordFile(path)
	require.NoError(t, err)
	return p
}

func TestPasswdLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")

	_, err := passwd(t, "", "-b", path, "alice", "a-pw")
	require.ErrorContains(t, err, "use -c to create it")

	_, err = passwd(t, "", "-c", "-b", path, "alice", "a-pw")
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	prompts, err := passwd(t, "b-pw\nb-pw\n", path, "bob")
	require.NoError(t, err)
	assert.Equal(t, "Password: \nReenter password: \n", prompts)
	p := load(t, path)
	assert.True(t, p.Check("alice", []byte("a-pw")))
	assert.True(t, p.Check("bob", []byte("b-pw")))

	// Changing a password keeps the others.
	_, err = passwd(t, "new\r\nnew", path, "alice")
	require.NoError(t, err)
	p = load(t, path)
	assert.True(t, p.Check("alice", []byte("new")), "CRLF and a missing last newline are accepted")
	assert.True(t, p.Check("bob", []byte("b-pw")))

	_, err = passwd(t, "", "-D", path, "bob")
	require.NoError(t, err)
	assert.Equal(t, []string{"alice"}, load(t, path).Users())
	_, err = passwd(t, "", "-D", path, "bob")
	require.ErrorContains(t, err, `user "bob" not found`)

	// -c starts afresh, as mosquitto_passwd -c does.
	_, err = passwd(t, "", "-c", "-b", path, "carol", "c-pw")
	require.NoError(t, err)
	assert.Equal(t, []string{"carol"}, load(t, path).Users())
}

func TestPasswdRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	_, err := passwd(t, "", "-c", "-b", path, "alice", "a-pw")
	require.NoError(t, err)
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		stdin string
		args  []string
		want  string
		usage bool
	}{
		"mismatch":      {"one\ntwo\n", []string{path, "bob"}, "do not match", false},
		"no input":      {"", []string{path, "bob"}, "no password given", false},
		"one line":      {"one\n", []string{path, "bob"}, "no password given", false},
		"empty":         {"\n\n", []string{path, "bob"}, "empty password", false},
		"colon in user": {"", []string{"-b", path, "a:b", "pw"}, "holds ':'", false},
		"too long":      {"", []string{"-b", path, "bob", strings.Repeat("x", 73)}, "longer than 72", false},
		"c and D":       {"", []string{"-c", "-D", path, "bob"}, "cannot be combined", true},
		"D and b":       {"", []string{"-D", "-b", path, "bob", "x"}, "takes no password", true},
		"missing user":  {"", []string{path}, "want 2 arguments", true},
		"extra arg":     {"", []string{"-b", path, "bob"}, "want 3 arguments", true},
		"bad flag":      {"", []string{"-x", path, "bob"}, "not defined", true},
	} {
		_, err := passwd(t, tc.stdin, tc.args...)
		require.ErrorContains(t, err, tc.want, name)
		var u usageError
		assert.Equal(t, tc.usage, errors.As(err, &u), name)
	}
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused change leaves the file alone")

	require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
	_, err = passwd(t, "", "-b", path, "bob", "x")
	require.ErrorContains(t, err, path+":1:")
}

// prompts is an io.Writer that reports each write, so that the test
// types only once the prompt is out, as a person would.
type prompts chan string

func (p prompts) Write(b []byte) (int, error) {
	p <- string(b)
	return len(b), nil
}

// TestPasswdTerminal types the password on a terminal: it is not echoed,
// and echo is back afterwards.
func TestPasswdTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	defer tty.Close()
	path := filepath.Join(t.TempDir(), "passwd")

	stderr := make(prompts, 8)
	done := make(chan error, 1)
	go func() { done <- runPasswd([]string{"-c", path, "dave"}, tty, &bytes.Buffer{}, stderr) }()
	for _, want := range []string{"Password: ", "\n", "Reenter password: ", "\n"} {
		got := <-stderr
		assert.Equal(t, want, got)
		if strings.HasSuffix(got, ": ") {
			_, err = ptmx.WriteString("secret-1\n")
			require.NoError(t, err)
		}
	}
	require.NoError(t, <-done)
	assert.True(t, load(t, path).Check("dave", []byte("secret-1")))

	// Echo is on again: what is typed now comes back first; the password
	// typed before never did.
	_, err = ptmx.WriteString("after\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(ptmx).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "after\r\n", line)
}

// TestPasswdWithMosquittoPasswd adds a user to a file that
// mosquitto_passwd started, keeping its PBKDF2 hashes working.
func TestPasswdWithMosquittoPasswd(t *testing.T) {
	mp := testpeer.Look(t, "mosquitto_passwd", "mosquitto")
	path := filepath.Join(t.TempDir(), "passwd")
	out, err := exec.CommandContext(context.Background(), mp, "-c", "-b", path, "erin", "e-pw").CombinedOutput()
	require.NoError(t, err, "%s", out)
	_, err = passwd(t, "", "-b", path, "frank", "f-pw")
	require.NoError(t, err)
	p := load(t, path)
	assert.True(t, p.Check("erin", []byte("e-pw")))
	assert.True(t, p.Check("frank", []byte("f-pw")))
}
