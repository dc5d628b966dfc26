//go:build !unix

package transport

import (
	"errors"
	"net"
	"syscall"
)

var errSockoptUnsupported = errors.New("socket option not supported on this platform")

// setRecvBuffer requests n bytes; this platform cannot report what was
// granted, so the request is returned.
func setRecvBuffer(uc *net.UDPConn, _ syscall.RawConn, n int) (int, error) {
	return n, uc.SetReadBuffer(n)
}

func recvBufferSize(syscall.RawConn) (int, error) { return 0, errSockoptUnsupported }

func setBroadcast(syscall.RawConn) error { return errSockoptUnsupported }
