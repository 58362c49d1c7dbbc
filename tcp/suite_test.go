package tcp_test

import (
	"testing"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
)

// TestSuite holds the tcp Dialer to the semantics every transport shares.
func TestSuite(t *testing.T) {
	transporttest.Run(t, transporttest.Transport{
		Name:   "tcp",
		Listen: transporttest.ListenTCP,
		Dialer: func() tether.Dialer { return &tcp.Dialer{} },
	})
}
