package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// forceRecvBuffer tries SO_RCVBUFFORCE, which ignores net.core.rmem_max but
// needs CAP_NET_ADMIN; without it the caller falls back to SO_RCVBUF.
func forceRecvBuffer(rc syscall.RawConn, n int) bool {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	})
	return err == nil && serr == nil
}
