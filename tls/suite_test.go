package tls_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// transport is TLS over loopback TCP with the test certificates; the
// client's Config has no ServerName, so each dial verifies the server's
// certificate for the IP address it dials.
func transport(server *tls.Config) transporttest.Transport {
	ca := tethertest.TLSClientConfig().RootCAs
	return transporttest.Transport{
		Name: "tls",
		Listen: func(_ testing.TB, addr string) (transporttest.Listener, error) {
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, err
			}
			return transporttest.NetListener(tls.NewListener(ln, server)), nil
		},
		Dialer: func() tether.Dialer {
			return &tethertls.Dialer{Config: &tls.Config{RootCAs: ca}}
		},
		WriteTimeoutBreaks: true, // crypto/tls: a write timeout is fatal
	}
}

// TestSuite holds the tls Dialer to the semantics every transport shares.
func TestSuite(t *testing.T) {
	transporttest.Run(t, transport(tethertest.TLSServerConfig()))
}
