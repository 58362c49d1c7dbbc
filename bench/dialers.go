package main

import (
	"crypto/tls"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	tethertls "github.com/io-tether/tether/tls"
)

// unixDialer dials Unix sockets.
func unixDialer() tether.Dialer { return &dialers.Unix{} }

// tlsDialer dials TLS with config; it keeps a session cache, so that
// re-dials resume the session.
func tlsDialer(config *tls.Config) tether.Dialer {
	return &tethertls.Dialer{Config: config}
}
