//go:build unix && !linux

package transport

import "syscall"

// forceRecvBuffer reports false: only Linux can exceed the system limit.
func forceRecvBuffer(syscall.RawConn, int) bool { return false }
