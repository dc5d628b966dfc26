package store

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports: the store serves the broker core and knows nothing of
// MQTT-SN (the gateway's records are opaque bytes to it).
func TestImports(t *testing.T) {
	archtest.Imports(t, "github.com/snwgw/snwgw/store", "github.com/snwgw/snwgw/mqttcore", "go.etcd.io/bbolt")
}
