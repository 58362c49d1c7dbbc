//go:build linux

package faultproxy

import (
	"net"
	"os"
	"syscall"
)

// canHold reports whether this platform can make a dial hang (ModeHold).
const canHold = true

// listenBacklog listens on addr with the given accept backlog. A backlog of
// 0 lets Linux queue one connection; once it holds one, the kernel drops
// further SYNs, so a dial hangs (the client retransmits its SYN) until its
// timeout or until the port accepts again.
func listenBacklog(addr *net.TCPAddr, backlog int) (net.Listener, error) {
	family, sa := syscall.AF_INET, syscall.Sockaddr(nil)
	if ip4 := addr.IP.To4(); ip4 != nil {
		s := &syscall.SockaddrInet4{Port: addr.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		family = syscall.AF_INET6
		s := &syscall.SockaddrInet6{Port: addr.Port}
		copy(s.Addr[:], addr.IP.To16())
		sa = s
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: addr, Err: os.NewSyscallError("bind", err)}
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		syscall.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: addr, Err: os.NewSyscallError("listen", err)}
	}
	f := os.NewFile(uintptr(fd), "faultproxy-listener")
	defer f.Close() // FileListener holds a duplicate
	return net.FileListener(f)
}
