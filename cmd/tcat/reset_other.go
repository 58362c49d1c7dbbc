//go:build !unix

package main

import "net"

// wasReset reports false: on this system tcat does not ask the socket
// whether its peer reset it.
func wasReset(net.Conn) bool { return false }
