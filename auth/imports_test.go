package auth

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the dependency rule: auth builds on the broker core's
// Authorizer and topic validation and on transport's address types, with
// golang.org/x/crypto for password hashing; the rest comes with transport
// (its serial, DTLS and x/net dependencies).
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/auth",
		"github.com/snwgw/snwgw/mqttcore", "github.com/snwgw/snwgw/transport", "golang.org/x/crypto",
		"go.bug.st/serial", "golang.org/x/net", "golang.org/x/sys",
		"github.com/pion/dtls", "github.com/pion/transport", "github.com/pion/logging")
}
