package tether

import (
	"context"
	"errors"
	"net"
)

// A Dialer makes the connections of a Tether. Dial is called for the first
// connection and for every reconnect, with the address the handler chose
// (Event.Addr). It should honour ctx: a Tether's Close cancels it.
//
// A Dialer used by several Tethers must be safe for concurrent use.
type Dialer interface {
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// The DialerFunc type is an adapter to allow the use of ordinary functions as
// Dialers. If f is a function with the appropriate signature, DialerFunc(f) is
// a Dialer that calls f.
type DialerFunc func(ctx context.Context, addr string) (net.Conn, error)

// errNilDialerFunc is returned by a nil DialerFunc.
var errNilDialerFunc = errors.New("tether: nil DialerFunc")

// Dial calls f(ctx, addr).
func (f DialerFunc) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if f == nil {
		return nil, Permanent(errNilDialerFunc)
	}
	return f(ctx, addr)
}
