package gateway

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the gateway to its place in the architecture: it
// speaks to the broker only through mqttcore's API and never opens sockets.
func TestImports(t *testing.T) {
	archtest.Imports(t, archtest.Module+"/gateway", archtest.Module+"/mqttsn", archtest.Module+"/mqttcore")
}
