//go:build unix

package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setRecvBuffer asks for n bytes of receive buffer and returns what the
// kernel granted. Where the process may exceed the system limit (Linux
// SO_RCVBUFFORCE with CAP_NET_ADMIN) it does; otherwise the limit applies.
func setRecvBuffer(uc *net.UDPConn, rc syscall.RawConn, n int) (int, error) {
	if !forceRecvBuffer(rc, n) {
		if err := uc.SetReadBuffer(n); err != nil {
			return 0, err
		}
	}
	return recvBufferSize(rc)
}

func recvBufferSize(rc syscall.RawConn) (int, error) {
	var size int
	var serr error
	err := rc.Control(func(fd uintptr) {
		size, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err != nil {
		return 0, err
	}
	return size, serr
}

func setBroadcast(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
