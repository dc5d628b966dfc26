package simulator

import (
	"testing"

	"github.com/snwgw/snwgw/internal/archtest"
)

// TestImports holds the simulator to the wire: it sees MQTT-SN, links and
// its client, never the gateway or the broker core (tests aside).
func TestImports(t *testing.T) {
	archtest.Imports(t, archtest.Module+"/simulator",
		archtest.Module+"/mqttsn",
		archtest.Module+"/transport",
		archtest.Module+"/simulator/client",
		"github.com/BurntSushi/toml",
		"github.com/eclipse/paho.golang",
	)
}
