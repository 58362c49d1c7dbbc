package dialers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/attempt"
)

// A Unix dials Unix domain stream sockets for a Tether; the address is the
// socket's path (on Linux, a name that starts with "@" is in the abstract
// namespace). The zero value is usable, and a Unix is safe for concurrent
// use by many Tethers, as long as its fields are not changed after its
// first Dial.
//
// Its errors are net.Dialer's, "dial unix PATH: ..." (see the package
// documentation). A socket file with no server behind it (connection
// refused) and a missing file (no such file or directory) are both
// transient for tether.IsPermanent: a server that restarts removes its
// socket and makes it again.
type Unix struct {
	// Timeout bounds each dial. 0 means NetDialer's Timeout, or
	// tcp.DefaultTimeout (the default of every dialer of this module) when
	// that is 0 too; a negative Timeout is an error.
	Timeout time.Duration

	// NetDialer, if non-nil, is the base for each dial (its LocalAddr,
	// Control, ...). It is copied, never changed; Timeout takes precedence
	// over its own.
	NetDialer *net.Dialer
}

var (
	errNegativeTimeout = errors.New("tether/dialers: negative Timeout")
	errNilFunc         = errors.New("tether/dialers: FromFunc with a nil dial function")
	errNoNetwork       = errors.New("tether/dialers: FromFunc with an empty network")
	errNilDialer       = errors.New("tether/dialers: Timeout of a nil Dialer")
)

// Dial connects to the Unix socket at path.
func (d *Unix) Dial(ctx context.Context, path string) (net.Conn, error) {
	if d == nil {
		d = new(Unix) // a nil *Unix acts as the zero value
	}
	if d.Timeout < 0 {
		return nil, attempt.Error("unix", path, tether.Permanent(errNegativeTimeout))
	}
	c, err := attempt.NetDialer(d.NetDialer, d.Timeout).DialContext(ctx, "unix", path)
	if oe, ok := err.(*net.OpError); ok && errors.Is(err, syscall.EINVAL) {
		// A path that no socket address can hold (too long): no retry
		// mends it.
		bad := *oe
		bad.Err = tether.Permanent(oe.Err)
		err = &bad
	}
	if err != nil {
		return nil, attempt.Error("unix", path, err) // never a typed nil in the interface
	}
	return c, nil
}

// FromFunc returns a tether.Dialer whose Dial calls dial(ctx, network, addr):
// the adapter from the ecosystem's dial functions, such as
// (&net.Dialer{}).DialContext, http.Transport.DialContext, or the
// DialContext of a proxy dialer. Its errors are "dial NETWORK ADDR: ...":
// dial's own when it returns a *net.OpError of that form (as net.Dialer
// does), else a *net.OpError that wraps dial's error. A nil dial or an
// empty network makes every Dial fail with a permanent error. FromFunc
// bounds no attempt in time itself, unlike the module's other dialers:
// dial does, or wrap the result in Timeout.
func FromFunc(network string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) tether.DialerFunc {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		switch {
		case dial == nil:
			return nil, attempt.Error(network, addr, tether.Permanent(errNilFunc))
		case network == "":
			return nil, attempt.Error(network, addr, tether.Permanent(errNoNetwork))
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, attempt.Error(network, addr, err)
		}
		return c, nil
	}
}

// Timeout returns a tether.Dialer that gives each Dial of d at most timeout:
// d's ctx ends then, and Timeout's Dial returns then even if d ignores its
// ctx (a connection that d makes too late is closed). A dial that runs out
// of time fails with "dial ADDR: tether/dialers: no connection within
// TIMEOUT", a *net.OpError (without the transport, which Timeout does not
// know) whose Timeout is true and which wraps context.DeadlineExceeded:
// transient for tether.IsPermanent. d's own errors are passed through.
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
			return nil, attempt.Error("", addr, tether.Permanent(errNilDialer))
		case timeout <= 0:
			return nil, attempt.Error("", addr, tether.Permanent(fmt.Errorf("tether/dialers: Timeout of %v, want a positive duration", timeout)))
		}
		ctx, cancel := attempt.WithTimeout(ctx, "tether/dialers", timeout)
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
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			select {
			case r = <-done: // came as the time ran out: in time
			default:
				go func() { // d ignores ctx: close what it makes too late
					if r := <-done; r.c != nil {
						r.c.Close()
					}
				}()
				return nil, attempt.Error("", addr, context.Cause(ctx))
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		return r.c, nil
	}
}
