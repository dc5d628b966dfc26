package mqttcore

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the dependency direction of docs/ARCHITECTURE.md: the
// standard library and mqttcore's own subpackages (the packet codec) only.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/mqttcore")
}
