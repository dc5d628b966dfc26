package mqttload_test

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports: the load generator speaks MQTT through the broker core's
// codec only, never through the broker it measures.
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/internal/mqttload", "github.com/snwgw/snwgw/mqttcore/packet")
}
