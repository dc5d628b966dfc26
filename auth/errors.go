package auth

import (
	"errors"
	"fmt"
)

var (
	// ErrPasswordFile reports a password file that cannot be used; the
	// wrapping *ParseError names the line to fix.
	ErrPasswordFile = errors.New("auth: invalid password file")
	// ErrACLFile reports an ACL file that cannot be used; the wrapping
	// *ParseError names the line to fix.
	ErrACLFile = errors.New("auth: invalid ACL file")
	// ErrAllowlistFile reports a ClientId allowlist that cannot be used;
	// the wrapping *ParseError names the line to fix.
	ErrAllowlistFile = errors.New("auth: invalid allowlist file")
	// ErrInvalidUser reports a user name or password the password file
	// cannot hold; choose another.
	ErrInvalidUser = errors.New("auth: invalid user name or password")
	// ErrInvalidOptions reports options that cannot work.
	ErrInvalidOptions = errors.New("auth: invalid options")
)

// ParseError locates a problem in one of the files this package reads.
type ParseError struct {
	Path string // empty when parsed from a reader
	Line int    // 1-based
	Msg  string
	Kind error // ErrPasswordFile, ErrACLFile or ErrAllowlistFile
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%v: line %d: %s", e.Kind, e.Line, e.Msg)
	}
	return fmt.Sprintf("%v: %s:%d: %s", e.Kind, e.Path, e.Line, e.Msg)
}

// Unwrap lets errors.Is match the kind of file.
func (e *ParseError) Unwrap() error { return e.Kind }

// withPath sets the path of a *ParseError in err, if any.
func withPath(err error, path string) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.Path = path
	}
	return err
}
