// Package netdial holds the per-attempt timeout rule that the tcp Dialer and
// the Unix Dialer of package dialers share.
package netdial

import (
	"net"
	"time"

	"github.com/io-tether/tether"
)

// Timeout is the timeout of one attempt: timeout when positive, else base's
// own when positive, else def. A negative timeout returns 0.
func Timeout(base *net.Dialer, timeout, def time.Duration) time.Duration {
	switch {
	case timeout > 0:
		return timeout
	case timeout < 0:
		return 0
	case base != nil && base.Timeout > 0:
		return base.Timeout
	}
	return def
}

// Dialer returns a copy of base (a zero net.Dialer when nil) whose Timeout
// follows the rule of Timeout, or errNegative, marked permanent, when
// timeout is negative.
func Dialer(base *net.Dialer, timeout, def time.Duration, errNegative error) (*net.Dialer, error) {
	if timeout < 0 {
		return nil, tether.Permanent(errNegative)
	}
	var nd net.Dialer
	if base != nil {
		nd = *base
	}
	nd.Timeout = Timeout(base, timeout, def)
	return &nd, nil
}
