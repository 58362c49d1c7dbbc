package faultmatrix

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/testcert"
	"github.com/io-tether/tether/tcp"
	tethertls "github.com/io-tether/tether/tls"
)

// The matrix runs over TLS too: the server wraps its listener, and the
// client's tls.Dialer handshakes through the proxy (which sees only TCP).
func init() {
	certs := testcert.Get()
	transports = append(transports, transport{
		name: "tls",
		listen: func(l net.Listener) net.Listener {
			return tls.NewListener(l, certs.ServerConfig())
		},
		dialer: func(timeout time.Duration) tether.Dialer {
			return &tethertls.Dialer{Config: certs.ClientConfig(), NetDialer: &tcp.Dialer{Timeout: timeout}}
		},
	})
}
