package dialers_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	"github.com/io-tether/tether/internal/transporttest"
)

// listenUnix is a Transport.Listen for Unix sockets in the test's temp dir.
func listenUnix(t testing.TB, path string) (transporttest.Listener, error) {
	if path == "" {
		path = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return transporttest.NetListener(ln), nil
}

// TestSuite holds the Unix Dialer, and TCP through the combinators, to the
// semantics every transport shares.
func TestSuite(t *testing.T) {
	t.Run("unix", func(t *testing.T) {
		transporttest.Run(t, transporttest.Transport{
			Name:   "unix",
			Listen: listenUnix,
			Dialer: func() tether.Dialer { return &dialers.Unix{} },
		})
	})
	t.Run("tcp-via-combinators", func(t *testing.T) {
		transporttest.Run(t, transporttest.Transport{
			Name:   "tcp via FromFunc and Timeout",
			Listen: transporttest.ListenTCP,
			Dialer: func() tether.Dialer {
				return dialers.Timeout(dialers.FromFunc("tcp", (&net.Dialer{}).DialContext), 5*time.Second)
			},
		})
	})
}
