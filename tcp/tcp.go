package tcp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/attempt"
)

// DefaultTimeout bounds each dial attempt of a Dialer whose Timeout is 0
// (and of a NetDialer whose Timeout is 0). It is the default of every
// dialer of this module: the tls Dialer (for its TCP dial and handshake
// together), the quic Dialer and the Unix Dialer of package dialers use it
// too. Ten seconds leave room for a SYN lost three times (Linux sends it
// again after 1, 3 and 7 s) or a slow handshake, and spare a Tether the
// kernel's own give-up (about two minutes on Linux) when a firewall drops
// its packets.
const DefaultTimeout = attempt.DefaultTimeout

// A Dialer dials TCP connections for a Tether. The zero value is usable; a
// Dialer is safe for concurrent use by many Tethers, as long as its fields
// are not changed after its first Dial.
type Dialer struct {
	// Timeout bounds each dial attempt, name resolution included. 0 means
	// NetDialer's Timeout, or DefaultTimeout when that is 0 too; a negative
	// Timeout is an error.
	Timeout time.Duration

	// KeepAliveConfig configures TCP keep-alive probes on each connection,
	// as net.Dialer's field of that name does, but the probes are on unless
	// NoKeepAlive is set, whatever its Enable says. A field left zero takes
	// NetDialer's setting, if any, and else net.Dialer's default (15 s
	// idle, 15 s between probes, 9 probes). Keep-alive tells a dead peer
	// from a quiet one only while nothing is being sent: see UserTimeout.
	KeepAliveConfig net.KeepAliveConfig

	// NoKeepAlive turns keep-alive probes off.
	NoKeepAlive bool

	// UserTimeout, when positive, sets TCP_USER_TIMEOUT (Linux only; an
	// error elsewhere): how long sent data may stay unacknowledged before the
	// kernel drops the connection. It detects a dead peer while writing,
	// which keep-alive does not. 0 leaves the system default; the longest
	// is 2^31-1 ms (about 24.8 days). It is set by a hook that runs after
	// NetDialer's ControlContext, or its Control.
	UserTimeout time.Duration

	// NetDialer, if non-nil, is the base for each dial (its LocalAddr,
	// Resolver, Control, ...). It is copied, never changed. Timeout (when
	// not 0), the fields of KeepAliveConfig that are set, NoKeepAlive and
	// UserTimeout above take precedence over its own; a NetDialer that
	// turns keep-alive off (a negative KeepAlive) keeps it off unless
	// KeepAliveConfig sets a field.
	NetDialer *net.Dialer
}

// maxUserTimeout is the longest TCP_USER_TIMEOUT: the kernel takes a C int
// of milliseconds.
const maxUserTimeout = math.MaxInt32 * time.Millisecond

var (
	errNegativeTimeout     = errors.New("tether/tcp: negative Timeout")
	errNegativeUserTimeout = errors.New("tether/tcp: negative UserTimeout")
	errLongUserTimeout     = fmt.Errorf("tether/tcp: UserTimeout above %v", maxUserTimeout)
)

// Dial dials addr ("host:port") over TCP. The host is resolved again at each
// call. Its errors are *net.OpError "dial tcp ADDR: ...", net.Dialer's (see
// the package documentation).
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if d == nil {
		d = &Dialer{} // a nil *Dialer behaves as the zero value
	}
	nd, err := d.netDialer()
	if err == nil {
		err = badPort(ctx, nd.Resolver, addr)
	}
	if err != nil {
		return nil, attempt.Error("tcp", addr, err)
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, attempt.Error("tcp", addr, err) // never a typed nil in the interface
	}
	return c, nil
}

// badPort returns a *net.AddrError, permanent for tether.IsPermanent, for
// an address whose port no dial reaches: an empty address (net reports
// it as transient), port 0 or none ("host:"), which a dial is refused on,
// or a service name that the system does not know (net reports it as a
// name that does not resolve, transient). Other malformed addresses are
// net's to report; their errors are permanent already (a missing port).
func badPort(ctx context.Context, r *net.Resolver, addr string) error {
	if addr == "" {
		return &net.AddrError{Err: "missing address"}
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if port == "" {
		return &net.AddrError{Err: "no port to dial", Addr: addr}
	}
	if r == nil {
		r = net.DefaultResolver
	}
	// As the dial reads the port: a number, in any spelling net takes
	// ("00", "+80"), or a service name.
	p, err := r.LookupPort(ctx, "tcp", port)
	var dnsErr *net.DNSError
	switch {
	case err == nil && p == 0:
		return &net.AddrError{Err: "no port to dial", Addr: addr}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return &net.AddrError{Err: "unknown port", Addr: addr}
	}
	return nil // net reports the rest (a port out of range)
}

// keepAlive returns the keep-alive probes of a dial, and whether they are
// on: the fields of KeepAliveConfig, each of which, when zero, comes from
// NetDialer's configuration as net.Dialer would read it (its
// KeepAliveConfig, or else its KeepAlive for Idle and Interval). Probes are
// off under NoKeepAlive, or when NetDialer turns them off (a negative
// KeepAlive, KeepAliveConfig not enabled) and KeepAliveConfig is zero.
func (d *Dialer) keepAlive() (net.KeepAliveConfig, bool) {
	ka := d.KeepAliveConfig
	ka.Enable = true
	b := d.NetDialer
	switch {
	case d.NoKeepAlive:
		return net.KeepAliveConfig{}, false
	case b == nil:
		return ka, true
	case b.KeepAlive < 0 && !b.KeepAliveConfig.Enable && d.KeepAliveConfig == (net.KeepAliveConfig{}):
		return net.KeepAliveConfig{}, false
	}
	base := b.KeepAliveConfig
	if !base.Enable && b.KeepAlive > 0 {
		base = net.KeepAliveConfig{Idle: b.KeepAlive, Interval: b.KeepAlive}
	}
	if ka.Idle == 0 {
		ka.Idle = base.Idle
	}
	if ka.Interval == 0 {
		ka.Interval = base.Interval
	}
	if ka.Count == 0 {
		ka.Count = base.Count
	}
	return ka, true
}

// netDialer returns the net.Dialer for one dial.
func (d *Dialer) netDialer() (*net.Dialer, error) {
	switch {
	case d.Timeout < 0:
		return nil, tether.Permanent(errNegativeTimeout)
	case d.UserTimeout < 0:
		return nil, tether.Permanent(errNegativeUserTimeout)
	case d.UserTimeout > maxUserTimeout:
		return nil, tether.Permanent(errLongUserTimeout)
	}
	nd := attempt.NetDialer(d.NetDialer, d.Timeout)
	if ka, on := d.keepAlive(); on {
		nd.KeepAliveConfig = ka
	} else {
		nd.KeepAlive = -1
		nd.KeepAliveConfig = net.KeepAliveConfig{}
	}
	if d.UserTimeout > 0 {
		ms := int(d.UserTimeout / time.Millisecond)
		if ms == 0 {
			ms = 1
		}
		// net.Dialer runs ControlContext, when set, instead of Control:
		// the option goes in the hook that runs.
		if inner := nd.ControlContext; inner != nil {
			nd.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
				if err := inner(ctx, network, address, c); err != nil {
					return err
				}
				return setUserTimeout(c, ms)
			}
		} else {
			inner := nd.Control
			nd.Control = func(network, address string, c syscall.RawConn) error {
				if inner != nil {
					if err := inner(network, address, c); err != nil {
						return err
					}
				}
				return setUserTimeout(c, ms)
			}
		}
	}
	return nd, nil
}

// Dial returns a Tether over TCP to addr with a zero Dialer: the one-line
// convenience for tether.Dial(ctx, &tcp.Dialer{}, addr, h, opts...).
func Dial(ctx context.Context, addr string, h tether.DisconnectHandler, opts ...tether.Option) (*tether.Tether, error) {
	return tether.Dial(ctx, &Dialer{}, addr, h, opts...)
}
