package auth

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password hashing. New hashes are bcrypt: salted, deliberately slow, with
// cost and salt inside the hash, and a constant small memory footprint,
// which matters when many clients connect at once to a Raspberry Pi
// (argon2id is memory-hard by design, so every concurrent check would
// cost its full memory parameter). Hashes written by mosquitto_passwd
// ("$7$", PBKDF2-SHA512) are verified too, so an existing Mosquitto
// password file works unchanged.
const (
	// BcryptCost is the cost of new hashes: one check takes about 85 ms of
	// a server core (docs/benchmarks.md), slow enough against guessing and
	// fast enough for a connect.
	BcryptCost = bcrypt.DefaultCost
	// MaxPasswordLen is bcrypt's limit; longer passwords are refused
	// rather than silently truncated.
	MaxPasswordLen = 72
	// MaxUserLen bounds user names, as MQTT strings are bounded.
	MaxUserLen = 65535
	// maxPasswordLine bounds one line of a password file.
	maxPasswordLine = 1 << 16
	// mosquittoMaxIter bounds the PBKDF2 iterations accepted from a file, so
	// that a doctored file cannot make every check take minutes.
	mosquittoMaxIter = 1_000_000
)

// Passwords holds user names with salted password hashes, as a
// mosquitto_passwd style file holds them: one "user:hash" per line. It is
// safe for concurrent use.
type Passwords struct {
	mu    sync.RWMutex
	users map[string]string // user -> hash; guarded by mu
}

// NewPasswords returns an empty set of users.
func NewPasswords() *Passwords { return &Passwords{users: make(map[string]string)} }

// LoadPasswordFile reads a password file (see ParsePasswords).
func LoadPasswordFile(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: password file: %w", err)
	}
	defer f.Close()
	p, err := ParsePasswords(f)
	return p, withPath(err, path)
}

// ParsePasswords reads "user:hash" lines; blank lines and lines starting
// with '#' are ignored. A hash is bcrypt ("$2a$", "$2b$", "$2y$") or
// mosquitto_passwd's PBKDF2-SHA512 ("$7$iterations$salt$hash"). The older,
// unsalted-iteration "$6$" form of mosquitto_passwd is refused: set those
// passwords again.
func ParsePasswords(r io.Reader) (*Passwords, error) {
	p := NewPasswords()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxPasswordLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		// The hash never holds a colon, the user name may not either.
		user, hash, ok := strings.Cut(text, ":")
		if !ok {
			return nil, &ParseError{Line: line, Msg: `want "user:hash"`, Kind: ErrPasswordFile}
		}
		if err := checkUser(user); err != nil {
			return nil, &ParseError{Line: line, Msg: err.Error(), Kind: ErrPasswordFile}
		}
		if err := checkHash(hash); err != nil {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("user %q: %v", user, err), Kind: ErrPasswordFile}
		}
		if _, dup := p.users[user]; dup {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("user %q appears twice", user), Kind: ErrPasswordFile}
		}
		p.users[user] = hash
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: line + 1, Msg: "line too long", Kind: ErrPasswordFile}
		}
		return nil, fmt.Errorf("auth: password file: %w", err)
	}
	return p, nil
}

// checkUser reports a user name the file format cannot hold.
func checkUser(user string) error {
	switch {
	case user == "":
		return fmt.Errorf("%w: empty user name", ErrInvalidUser)
	case len(user) > MaxUserLen:
		return fmt.Errorf("%w: user name longer than %d bytes", ErrInvalidUser, MaxUserLen)
	case !utf8.ValidString(user):
		return fmt.Errorf("%w: user name is not UTF-8", ErrInvalidUser)
	case strings.ContainsRune(user, ':'):
		return fmt.Errorf("%w: user name %q holds ':'", ErrInvalidUser, user)
	case strings.TrimSpace(user) != user || strings.HasPrefix(user, "#"):
		return fmt.Errorf("%w: user name %q starts or ends with a space, or starts with '#'", ErrInvalidUser, user)
	}
	for _, r := range user {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: user name %q holds a control character", ErrInvalidUser, user)
		}
	}
	return nil
}

// checkHash reports a hash that Check could not verify.
func checkHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$2"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return nil
	case strings.HasPrefix(hash, "$7$"):
		_, _, _, err := parsePBKDF2(hash)
		return err
	case strings.HasPrefix(hash, "$6$"):
		return errors.New(`"$6$" hashes are too weak; set the password again`)
	}
	return errors.New("unknown hash format (want bcrypt or mosquitto_passwd $7$)")
}

// parsePBKDF2 splits mosquitto_passwd's "$7$iterations$salt$hash" (salt
// and hash in standard base64; the hash is PBKDF2-HMAC-SHA512).
func parsePBKDF2(hash string) (iter int, salt, sum []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return 0, nil, nil, errors.New(`want "$7$iterations$salt$hash"`)
	}
	iter, err = strconv.Atoi(parts[2])
	if err != nil || iter < 1 || iter > mosquittoMaxIter {
		return 0, nil, nil, fmt.Errorf("PBKDF2 iterations %q not in 1..%d", parts[2], mosquittoMaxIter)
	}
	salt, err = base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) == 0 {
		return 0, nil, nil, errors.New("PBKDF2 salt is not base64")
	}
	sum, err = base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(sum) != sha512.Size {
		return 0, nil, nil, errors.New("PBKDF2 hash is not 64 octets of base64")
	}
	return iter, salt, sum, nil
}

// dummyHash, a bcrypt hash of cost BcryptCost, is compared against when a
// user is unknown, so that an unknown user costs as long as a wrong
// password and does not show in the time a refusal takes.
const dummyHash = "$2a$10$syox9xK6/gqjq637YngWB.hBUcMgZN4Tg/TIeCSgHfddZrIwZnhwy"

// Check reports whether password is user's password. An unknown user
// takes as long as a known one with a wrong password.
func (p *Passwords) Check(user string, password []byte) bool {
	p.mu.RLock()
	hash, ok := p.users[user]
	p.mu.RUnlock()
	if !ok || len(password) > MaxPasswordLen {
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), password)
		return false
	}
	if strings.HasPrefix(hash, "$7$") {
		iter, salt, sum, err := parsePBKDF2(hash)
		if err != nil {
			return false
		}
		got, err := pbkdf2.Key(sha512.New, string(password), salt, iter, len(sum))
		return err == nil && subtle.ConstantTimeCompare(got, sum) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), password) == nil
}

// Set adds user or changes its password, hashing it with bcrypt.
func (p *Passwords) Set(user string, password []byte) error {
	if err := checkUser(user); err != nil {
		return err
	}
	if len(password) == 0 {
		return fmt.Errorf("%w: empty password", ErrInvalidUser)
	}
	if len(password) > MaxPasswordLen {
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalidUser, MaxPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword(password, BcryptCost)
	if err != nil {
		return fmt.Errorf("auth: hash password: %w", err)
	}
	p.mu.Lock()
	p.users[user] = string(hash)
	p.mu.Unlock()
	return nil
}

// Delete removes user and reports whether it existed.
func (p *Passwords) Delete(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.users[user]
	delete(p.users, user)
	return ok
}

// Has reports whether user exists.
func (p *Passwords) Has(user string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.users[user]
	return ok
}

// Users returns the user names, sorted.
func (p *Passwords) Users() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.usersLocked()
}

// WriteTo writes the file form, users sorted.
func (p *Passwords) WriteTo(w io.Writer) (int64, error) {
	p.mu.RLock()
	var b bytes.Buffer
	for _, u := range p.usersLocked() {
		b.WriteString(u)
		b.WriteByte(':')
		b.WriteString(p.users[u])
		b.WriteByte('\n')
	}
	p.mu.RUnlock()
	return b.WriteTo(w)
}

func (p *Passwords) usersLocked() []string {
	users := make([]string, 0, len(p.users))
	for u := range p.users {
		users = append(users, u)
	}
	slices.Sort(users)
	return users
}

// Save writes the file atomically: to a temporary file in the same
// directory with mode 0600, synced, then renamed over path, so a reader
// sees the old file or the new one, never a part.
func (p *Passwords) Save(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("auth: save password file: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("auth: save password file %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := p.WriteTo(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("auth: save password file %s: %w", path, err)
	}
	return nil
}
