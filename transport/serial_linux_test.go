package transport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSerialFlowControlSetsCRTSCTS(t *testing.T) {
	for _, flow := range []bool{false, true} {
		p := newPty(t)
		l := openLink(t, SerialOptions{Device: p.path, FlowControl: flow})
		tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
		require.NoError(t, err)
		assert.Equal(t, flow, tio.Cflag&unix.CRTSCTS != 0, "flow control %v", flow)
		require.NoError(t, l.Close())
	}
}
