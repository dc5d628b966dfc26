package transport

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PSK limits. A key shorter than 128 bits is refused: PSK handshakes
// without ECDHE are only as strong as the key, and an attacker who records
// one handshake can test guesses offline.
const (
	MinPSKLen      = 16
	MaxPSKLen      = 64
	MaxPSKIdentity = 128
	// maxPSKFileLine bounds one line of a PSK file.
	maxPSKFileLine = 4096
)

// ErrPSKFile reports a PSK file that cannot be used; the wrapping
// *PSKFileError names the line to fix.
var ErrPSKFile = errors.New("transport: invalid PSK file")

// PSKFileError locates a problem in a PSK file.
type PSKFileError struct {
	Path string // empty when parsed from a reader
	Line int    // 1-based
	Msg  string
}

func (e *PSKFileError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("transport: PSK file line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("transport: %s:%d: %s", e.Path, e.Line, e.Msg)
}

// Unwrap makes every PSKFileError match ErrPSKFile.
func (e *PSKFileError) Unwrap() error { return ErrPSKFile }

// LoadPSKFile reads pre-shared keys for DTLSOptions.PSK from a file (see
// ParsePSK for the format).
func LoadPSKFile(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("transport: PSK file: %w", err)
	}
	defer f.Close()
	keys, err := ParsePSK(f)
	var fe *PSKFileError
	if errors.As(err, &fe) {
		fe.Path = path
	}
	return keys, err
}

// ParsePSK reads pre-shared keys, one per line:
//
//	# comment; blank lines are ignored
//	sensor-17:00112233445566778899aabbccddeeff
//	sensor-18:base64:ABEiM0RVZneImaq7zN3u/w==
//
// The identity runs up to the first colon; it is 1 to 128 printable
// characters without spaces. The key is hex (as mosquitto's psk_file and
// openssl s_client -psk write it) or, after "base64:", standard base64;
// it is 16 to 64 octets. An identity may appear once.
func ParsePSK(r io.Reader) (map[string][]byte, error) {
	keys := make(map[string][]byte)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxPSKFileLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		id, spec, ok := strings.Cut(text, ":")
		if !ok {
			return nil, &PSKFileError{Line: line, Msg: `want "identity:key"`}
		}
		var key []byte
		var err error
		if b64, ok := strings.CutPrefix(spec, "base64:"); ok {
			key, err = base64.StdEncoding.DecodeString(b64)
			if err != nil {
				key, err = base64.RawStdEncoding.DecodeString(b64)
			}
			if err != nil {
				return nil, &PSKFileError{Line: line, Msg: "key is not valid base64"}
			}
		} else if key, err = hex.DecodeString(spec); err != nil {
			return nil, &PSKFileError{Line: line, Msg: `key is not hex (use "base64:" before a base64 key)`}
		}
		if err := checkPSK(id, key); err != nil {
			return nil, &PSKFileError{Line: line, Msg: err.Error()}
		}
		if _, dup := keys[id]; dup {
			return nil, &PSKFileError{Line: line, Msg: fmt.Sprintf("identity %q appears twice", id)}
		}
		keys[id] = key
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &PSKFileError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxPSKFileLine)}
		}
		return nil, fmt.Errorf("transport: PSK file: %w", err)
	}
	return keys, nil
}

// checkPSK reports an identity or key that the listener refuses.
func checkPSK(id string, key []byte) error {
	if id == "" || len(id) > MaxPSKIdentity || !utf8.ValidString(id) {
		return fmt.Errorf("PSK identity must be 1 to %d bytes of UTF-8", MaxPSKIdentity)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("PSK identity %q holds a space or control character", id)
		}
	}
	if len(key) < MinPSKLen || len(key) > MaxPSKLen {
		return fmt.Errorf("PSK of identity %q is %d octets, want %d to %d", id, len(key), MinPSKLen, MaxPSKLen)
	}
	if len(bytes.Trim(key, "\x00")) == 0 {
		return fmt.Errorf("PSK of identity %q is all zero", id)
	}
	return nil
}
