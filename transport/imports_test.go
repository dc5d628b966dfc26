package transport

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the dependency rule of docs/ARCHITECTURE.md: transport
// uses the standard library, go.bug.st/serial (whose own dependencies are
// its subpackages and golang.org/x/sys), golang.org/x/net, and the DTLS
// library github.com/pion/dtls with its own dependencies (pion/transport,
// pion/logging, golang.org/x/crypto), and nothing of this module.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/transport", "go.bug.st/serial", "golang.org/x/net", "golang.org/x/sys",
		"github.com/pion/dtls", "github.com/pion/transport", "github.com/pion/logging", "golang.org/x/crypto")
}
