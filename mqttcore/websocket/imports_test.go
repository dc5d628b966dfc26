package websocket_test

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the dependency direction of docs/ARCHITECTURE.md: the
// standard library and gorilla/websocket only; the broker core is reached
// through net.Listener and net.Conn, never imported.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/mqttcore/websocket", "github.com/gorilla/websocket")
}
