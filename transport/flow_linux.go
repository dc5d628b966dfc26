package transport

import (
	"fmt"
	"os"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// openWithFlowControl opens device and enables RTS/CTS flow control.
// go.bug.st/serial has no flow-control setting and clears CRTSCTS when it
// opens a port, then claims the tty exclusively (TIOCEXCL). Termios
// settings belong to the tty, not to a descriptor, so a second descriptor
// opened before the port can set CRTSCTS after it.
func openWithFlowControl(device string, mode *serial.Mode) (Port, error) {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := serial.Open(device, mode)
	if err != nil {
		return nil, err
	}
	if err := setCRTSCTS(int(f.Fd())); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("enable rts/cts flow control: %w", err)
	}
	return p, nil
}

func setCRTSCTS(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Cflag |= unix.CRTSCTS
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
