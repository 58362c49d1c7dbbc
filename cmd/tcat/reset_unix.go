//go:build unix

package main

import (
	"crypto/tls"
	"net"
	"syscall"
)

// wasReset reports whether c, a TCP connection or TLS over one, has a
// pending error: its peer reset it, so the bytes written last did not
// reach the peer. It reports false when it cannot tell.
func wasReset(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var soErr int
	if err := rc.Control(func(fd uintptr) {
		soErr, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
	}); err != nil {
		return false
	}
	return err == nil && soErr != 0
}
