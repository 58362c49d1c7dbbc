//go:build !linux

package faultproxy

import "net"

// canHold reports whether this platform can make a dial hang (ModeHold).
const canHold = false

// listenBacklog listens on addr; the backlog is the system's.
func listenBacklog(addr *net.TCPAddr, _ int) (net.Listener, error) {
	return net.ListenTCP("tcp", addr)
}
