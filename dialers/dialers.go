package dialers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/netdial"
)

// DefaultTimeout bounds each dial of a Unix Dialer whose Timeout is 0.
const DefaultTimeout = 10 * time.Second

// A Unix dials Unix domain stream sockets for a Tether; the address is the
// socket's path (on Linux, a name that starts with "@" is in the abstract
// namespace). The zero value is usable, and a Unix is safe for concurrent
// use by many Tethers, as long as its fields are not changed after its
// first Dial.
//
// Its errors are net.Dialer's (a *net.OpError). A socket file with no
// server behind it (connection refused) and a missing file (no such file or
// directory) are both transient for tether.IsPermanent: a server that
// restarts removes its socket and makes it again.
type Unix struct {
	// Timeout bounds each dial. 0 means DefaultTimeout; a negative Timeout
	// is an error.
	Timeout time.Duration

	// NetDialer, if non-nil, is the base for each dial (its LocalAddr,
	// Control, ...). It is copied, never changed; Timeout takes precedence
	// over its own.
	NetDialer *net.Dialer
}

var errNegativeTimeout = errors.New("tether/dialers: negative Timeout")

// Dial connects to the Unix socket at path.
func (d *Unix) Dial(ctx context.Context, path string) (net.Conn, error) {
	if d == nil {
		d = new(Unix) // a nil *Unix acts as the zero value
	}
	nd, err := netdial.Dialer(d.NetDialer, d.Timeout, DefaultTimeout, errNegativeTimeout)
	if err != nil {
		return nil, err
	}
	c, err := nd.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return c, nil
}

// FromFunc returns a tether.Dialer whose Dial calls dial(ctx, network, addr):
// the adapter from the ecosystem's dial functions, such as
// (&net.Dialer{}).DialContext, http.Transport.DialContext, or the
// DialContext of a proxy dialer. A nil dial or an empty network makes every
// Dial fail with a permanent error.
func FromFunc(network string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) tether.DialerFunc {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		switch {
		case dial == nil:
			return nil, tether.Permanent(errors.New("tether/dialers: FromFunc with a nil dial function"))
		case network == "":
			return nil, tether.Permanent(errors.New("tether/dialers: FromFunc with an empty network"))
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// Timeout returns a tether.Dialer that gives each Dial of d at most timeout:
// d's ctx ends then, and Timeout's Dial returns then even if d ignores its
// ctx (a connection that d makes too late is closed). A dial that runs out
// of time fails with an error that wraps context.DeadlineExceeded, a
// net.Error whose Timeout is true, transient for tether.IsPermanent.
//
// Each attempt needs its own deadline where a dial to a dead peer does not
// fail fast: QUIC has no "connection refused", and a SYN that a firewall
// drops waits for the kernel's retries.
//
// A nil d or a timeout that is not positive makes every Dial fail with a
// permanent error.
func Timeout(d tether.Dialer, timeout time.Duration) tether.DialerFunc {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		switch {
		case d == nil:
			return nil, tether.Permanent(errors.New("tether/dialers: Timeout of a nil Dialer"))
		case timeout <= 0:
			return nil, tether.Permanent(fmt.Errorf("tether/dialers: Timeout of %v, want a positive duration", timeout))
		}
		cause := fmt.Errorf("tether/dialers: dial %s: no connection within %v: %w", addr, timeout, context.DeadlineExceeded)
		ctx, cancel := context.WithTimeoutCause(ctx, timeout, cause)
		defer cancel()

		type result struct {
			c   net.Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := d.Dial(ctx, addr)
			done <- result{c, err}
		}()
		select {
		case r := <-done:
			if r.err != nil {
				return nil, r.err
			}
			return r.c, nil
		case <-ctx.Done():
			go func() { // d ignores ctx: close what it makes too late
				if r := <-done; r.c != nil {
					r.c.Close()
				}
			}()
			return nil, context.Cause(ctx)
		}
	}
}
