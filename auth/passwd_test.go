package auth

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snwgw/snwgw/internal/testpeer"
)

func TestPasswordsSetCheckDelete(t *testing.T) {
	p := NewPasswords()
	require.NoError(t, p.Set("alice", []byte("correct horse")))
	require.NoError(t, p.Set("bob", []byte("battery staple")))
	assert.True(t, p.Check("alice", []byte("correct horse")))
	assert.False(t, p.Check("alice", []byte("battery staple")))
	assert.False(t, p.Check("alice", nil))
	assert.False(t, p.Check("carol", []byte("correct horse")), "unknown user")
	assert.False(t, p.Check("alice", bytes.Repeat([]byte("x"), MaxPasswordLen+1)))

	require.NoError(t, p.Set("alice", []byte("new secret")))
	assert.False(t, p.Check("alice", []byte("correct horse")), "old password after change")
	assert.True(t, p.Check("alice", []byte("new secret")))

	assert.True(t, p.Delete("bob"))
	assert.False(t, p.Delete("bob"))
	assert.False(t, p.Check("bob", []byte("battery staple")))
	assert.Equal(t, []string{"alice"}, p.Users())
	assert.True(t, p.Has("alice"))
}

func TestPasswordsSetRefuses(t *testing.T) {
	p := NewPasswords()
	for name, tc := range map[string]struct{ user, pass string }{
		"empty user":     {"", "x"},
		"colon":          {"a:b", "x"},
		"control":        {"a\nb", "x"},
		"leading space":  {" a", "x"},
		"comment":        {"#a", "x"},
		"bad utf8":       {"a\xff", "x"},
		"empty password": {"a", ""},
		"long password":  {"a", strings.Repeat("p", MaxPasswordLen+1)},
	} {
		assert.ErrorIs(t, p.Set(tc.user, []byte(tc.pass)), ErrInvalidUser, name)
	}
	assert.Empty(t, p.Users())
}

func TestPasswordsSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	p := NewPasswords()
	require.NoError(t, p.Set("zoe", []byte("pw-z")))
	require.NoError(t, p.Set("adam", []byte("pw-a")))
	require.NoError(t, p.Save(path))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 2)
	assert.True(t, strings.HasPrefix(lines[0], "adam:$2a$10$"), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "zoe:$2a$10$"), lines[1])

	q, err := LoadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, q.Check("zoe", []byte("pw-z")))
	assert.True(t, q.Check("adam", []byte("pw-a")))
	assert.False(t, q.Check("adam", []byte("pw-z")))

	// Saving again replaces the file and leaves no temporary behind.
	require.True(t, q.Delete("zoe"))
	require.NoError(t, q.Save(path))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
	r, err := LoadPasswordFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"adam"}, r.Users())

	assert.Error(t, q.Save(filepath.Join(dir, "missing", "passwd")))
}

func TestParsePasswordsErrors(t *testing.T) {
	good := "$2a$10$syox9xK6/gqjq637YngWB.hBUcMgZN4Tg/TIeCSgHfddZrIwZnhwy"
	for name, tc := range map[string]struct {
		in   string
		line int
		msg  string
	}{
		"no colon":     {"# users\nalice\n", 2, `want "user:hash"`},
		"empty user":   {":" + good, 1, "empty user name"},
		"unknown hash": {"alice:plain", 1, "unknown hash format"},
		"bad bcrypt":   {"alice:$2a$10$short", 1, "bad bcrypt hash"},
		"weak sha512":  {"alice:$6$abc$def", 1, "too weak"},
		"bad pbkdf2":   {"alice:$7$101$!!$AA==", 1, "salt"},
		"huge iter":    {"alice:$7$99999999$AAAA$AA==", 1, "iterations"},
		"duplicate":    {"alice:" + good + "\n\nalice:" + good, 3, "appears twice"},
		"long line":    {strings.Repeat("a", maxPasswordLine+10), 1, "too long"},
	} {
		_, err := ParsePasswords(strings.NewReader(tc.in))
		require.ErrorIs(t, err, ErrPasswordFile, name)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, name)
		assert.Equal(t, tc.line, pe.Line, name)
		assert.Contains(t, pe.Msg, tc.msg, name)
	}
	path := filepath.Join(t.TempDir(), "p")
	require.NoError(t, os.WriteFile(path, []byte("x\n"), 0o600))
	_, err := LoadPasswordFile(path)
	assert.ErrorContains(t, err, path+":1:")
	_, err = LoadPasswordFile(filepath.Join(t.TempDir(), "none"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestMosquittoPasswdCompatible reads a file written by mosquitto_passwd
// itself.
func TestMosquittoPasswdCompatible(t *testing.T) {
	mp := testpeer.Look(t, "mosquitto_passwd", "mosquitto")
	path := filepath.Join(t.TempDir(), "passwd")
	out, err := exec.Command(mp, "-c", "-b", path, "alice", "s3cret pass").CombinedOutput()
	require.NoError(t, err, "%s", out)
	p, err := LoadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, p.Check("alice", []byte("s3cret pass")))
	assert.False(t, p.Check("alice", []byte("s3cret pas")))

	// A user added by snwgw sits beside it.
	require.NoError(t, p.Set("bob", []byte("pw")))
	require.NoError(t, p.Save(path))
	q, err := LoadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, q.Check("alice", []byte("s3cret pass")))
	assert.True(t, q.Check("bob", []byte("pw")))
}

func BenchmarkPasswordsCheck(b *testing.B) {
	b.ReportAllocs()
	p := NewPasswords()
	require.NoError(b, p.Set("alice", []byte("pw")))
	for b.Loop() {
		p.Check("alice", []byte("pw"))
	}
}
