//go:build !linux

package tcp

import (
	"errors"
	"syscall"

	"github.com/io-tether/tether"
)

func setUserTimeout(syscall.RawConn, int) error {
	return tether.Permanent(errors.New("tether/tcp: UserTimeout is supported on Linux only"))
}
