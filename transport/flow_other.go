//go:build !linux

package transport

import (
	"errors"

	"go.bug.st/serial"
)

// errNoFlowControl explains why FlowControl fails off Linux.
var errNoFlowControl = errors.New("rts/cts flow control is supported on linux only")

func openWithFlowControl(string, *serial.Mode) (Port, error) {
	return nil, errNoFlowControl
}
