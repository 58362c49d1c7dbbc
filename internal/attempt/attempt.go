// Package attempt holds what every dialer of the module applies to one dial
// attempt: the default timeout, how a Dialer's own timeout and its base
// net.Dialer's combine, and the form of the error of an attempt that
// failed. It sits below the public packages and imports none of them.
package attempt

import (
	"context"
	"net"
	"time"
)

// DefaultTimeout bounds each attempt of a Dialer whose timeout is 0; package
// tcp exports it as tcp.DefaultTimeout, where it is documented.
const DefaultTimeout = 10 * time.Second

// Timeout returns the timeout of one attempt of a Dialer whose own timeout
// is timeout and whose base net.Dialer is base (nil: none): timeout when
// positive, else base's own when positive, else DefaultTimeout. A negative
// timeout returns 0: the Dialer reports it as an error instead of dialing.
func Timeout(timeout time.Duration, base *net.Dialer) time.Duration {
	switch {
	case timeout > 0:
		return timeout
	case timeout < 0:
		return 0
	case base != nil && base.Timeout > 0:
		return base.Timeout
	}
	return DefaultTimeout
}

// NetDialer returns a copy of base (a zero net.Dialer when nil) whose
// Timeout is Timeout(timeout, base). base itself is never changed.
func NetDialer(base *net.Dialer, timeout time.Duration) *net.Dialer {
	var nd net.Dialer
	if base != nil {
		nd = *base
	}
	nd.Timeout = Timeout(timeout, base)
	return &nd
}

// Error returns err, the failure of a dial of addr over network, in the
// form every dialer of the module gives its errors: a *net.OpError with Op
// "dial", Net network and Addr addr, whose Err is err, so that it reads
// "dial NETWORK ADDR: cause" and errors.Is and errors.As reach the cause.
//
// An err that is already the *net.OpError of a dial over network (net.Dialer
// makes them) is returned as it is, or, when it leaves the address out (a
// name that did not resolve, an address that does not parse), as a copy with
// Addr set to addr. Error(network, addr, nil) is nil.
func Error(network, addr string, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := err.(*net.OpError); ok && oe.Op == "dial" && oe.Net == network {
		if oe.Addr == nil {
			withAddr := *oe // not oe itself: a dial function may return a shared value
			withAddr.Addr = Addr{network, addr}
			return &withAddr
		}
		return oe
	}
	return &net.OpError{Op: "dial", Net: network, Addr: Addr{network, addr}, Err: err}
}

// Addr is an address as a Dialer was given it ("host:port", a socket's
// path), not resolved, as the Addr of a *net.OpError.
type Addr struct {
	Net  string // the network, such as "tls" or "quic"
	Addr string // the address
}

// Network returns the network.
func (a Addr) Network() string { return a.Net }

// String returns the address.
func (a Addr) String() string { return a.Addr }

// TimeoutError is the cause of a dial attempt that ran out of its time: a
// net.Error whose Timeout is true, which wraps context.DeadlineExceeded.
// Its message starts with the package that gives up, "tether/quic" say.
type TimeoutError struct {
	Pkg   string
	After time.Duration
}

// Error returns "PKG: no connection within AFTER".
func (e *TimeoutError) Error() string {
	return e.Pkg + ": no connection within " + e.After.String()
}

// Timeout is true.
func (e *TimeoutError) Timeout() bool { return true }

// Temporary is false: net.Error still asks for it.
func (e *TimeoutError) Temporary() bool { return false }

// Unwrap returns context.DeadlineExceeded.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// WithTimeout returns ctx bounded by timeout when it is positive: once it
// passes, ctx's cause is a *TimeoutError of pkg.
func WithTimeout(ctx context.Context, pkg string, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, &TimeoutError{Pkg: pkg, After: timeout})
}
