package client

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the simulator's side of docs/ARCHITECTURE.md: the
// client sees only the wire format and the links, never the gateway or
// the broker core.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/simulator/client",
		"github.com/snwgw/snwgw/mqttsn",
		"github.com/snwgw/snwgw/transport",
		// transport's own dependencies, for serial links
		"go.bug.st/serial",
		"golang.org/x/sys",
		"golang.org/x/net",
	)
}
