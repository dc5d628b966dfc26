package transport

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const examplePSK = `# identity:key
sensor-17:00112233445566778899aabbccddeeff
sensor-18:base64:ABEiM0RVZneImaq7zN3u/w==
  sensor-19:base64:ABEiM0RVZneImaq7zN3u/w   
`

func TestParsePSK(t *testing.T) {
	keys, err := ParsePSK(strings.NewReader(examplePSK))
	require.NoError(t, err)
	want, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	assert.Equal(t, map[string][]byte{"sensor-17": want, "sensor-18": want, "sensor-19": want}, keys)

	path := filepath.Join(t.TempDir(), "psk")
	require.NoError(t, os.WriteFile(path, []byte(examplePSK), 0o600))
	keys, err = LoadPSKFile(path)
	require.NoError(t, err)
	assert.Len(t, keys, 3)
}

func TestParsePSKErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		line int
		msg  string
	}{
		"no colon":     {"# c\nsensor\n", 2, `want "identity:key"`},
		"bad hex":      {"a:0011zz\n", 1, "not hex"},
		"odd hex":      {"a:001\n", 1, "not hex"},
		"bad base64":   {"a:base64:!!!!\n", 1, "not valid base64"},
		"short key":    {"a:00112233\n", 1, "is 4 octets"},
		"long key":     {"a:" + strings.Repeat("11", 65) + "\n", 1, "is 65 octets"},
		"zero key":     {"a:" + strings.Repeat("00", 16) + "\n", 1, "all zero"},
		"empty id":     {":00112233445566778899aabbccddeeff\n", 1, "identity must be"},
		"space in id":  {"a b:00112233445566778899aabbccddeeff\n", 1, "space"},
		"duplicate":    {"a:00112233445566778899aabbccddeeff\na:00112233445566778899aabbccddeeff\n", 2, "twice"},
		"line too big": {strings.Repeat("a", maxPSKFileLine+1), 1, "longer than"},
	} {
		_, err := ParsePSK(strings.NewReader(tc.in))
		require.ErrorIs(t, err, ErrPSKFile, name)
		var fe *PSKFileError
		require.ErrorAs(t, err, &fe, name)
		assert.Equal(t, tc.line, fe.Line, name)
		assert.Contains(t, fe.Msg, tc.msg, name)
	}
	path := filepath.Join(t.TempDir(), "psk")
	require.NoError(t, os.WriteFile(path, []byte("x\n"), 0o600))
	_, err := LoadPSKFile(path)
	assert.ErrorContains(t, err, path+":1:")
	_, err = LoadPSKFile(filepath.Join(t.TempDir(), "none"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParsePSK checks that no input panics the PSK file parser and that
// every accepted file, written back in hex, reads the same.
func FuzzParsePSK(f *testing.F) {
	f.Add(examplePSK)
	f.Add("a:base64:AAAAAAAAAAAAAAAAAAAAAQ\n")
	f.Add("é:00112233445566778899aabbccddeeff")
	f.Add(":\n#\n")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParsePSK(strings.NewReader(text))
		if err != nil {
			var fe *PSKFileError
			require.ErrorAs(t, err, &fe)
			return
		}
		var b strings.Builder
		ids := make([]string, 0, len(keys))
		for id := range keys {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			b.WriteString(id + ":" + hex.EncodeToString(keys[id]) + "\n")
		}
		again, err := ParsePSK(strings.NewReader(b.String()))
		require.NoError(t, err, "re-reading %q", b.String())
		require.Equal(t, keys, again)
	})
}
