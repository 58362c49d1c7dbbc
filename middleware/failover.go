package middleware

import (
	"context"
	"errors"
	"slices"

	"github.com/io-tether/tether"
)

// Failover returns a Middleware that spreads reconnects over several
// addresses: on every Disconnected and Unreachable event it sets Event.Addr
// to the address after Event.Addr in addrs, wrapping around at the end, so
// each reconnect goes to the next address (an Event.Addr that is not in
// addrs moves to addrs[0]). It acts before next, so inner middleware see the
// address that will be dialed, and may change it again. Other events pass
// through unchanged. Put it inside CircuitBreaker, which holds back the dial
// to the address Failover chose; the innermost place is fine.
//
// Failover keeps no state (the position is Event.Addr, which the Tether
// remembers), so one value serves any number of Tethers. Pass the address
// given to tether.Dial among addrs, usually first.
//
// No addresses, an empty address or one that appears twice: the Middleware
// gives up on its first event with an error that wraps ErrBadConfig.
func Failover(addrs ...string) tether.Middleware {
	return failover("Failover", addrs, false)
}

// StickyFailover is Failover with a preferred address, addrs[0]: each outage
// starts with a dial to it, and only failed dials move on down the list. A
// Tether that failed over to a backup thus returns to the first address at
// the first reconnect after it answers again, instead of staying on the
// backup until that fails.
//
// Precisely: on a Disconnected event after a stable connection (Attempt 0),
// or after a forced Tether.Reconnect (the user's choice, not a failure:
// [tether.ErrForcedReconnect]), it sets Event.Addr to addrs[0]; on
// Unreachable, and on a Disconnected event for a connection that died
// within the stability period (which the Tether counts as a failed dial, so
// that a first address that accepts and closes at once does not trap the
// Tether), it moves to the next address as Failover does. Like Failover, it acts before next and keeps no state.
//
// A Tether connected to a backup does not leave it while it works: a
// handler only acts when a connection is lost.
func StickyFailover(addrs ...string) tether.Middleware {
	return failover("StickyFailover", addrs, true)
}

func failover(name string, addrs []string, sticky bool) tether.Middleware {
	if len(addrs) == 0 {
		return failing(badConfig(name + ": no addresses"))
	}
	addrs = slices.Clone(addrs)
	for i, a := range addrs {
		if a == "" {
			return failing(badConfig(name + ": empty address"))
		}
		if slices.Contains(addrs[:i], a) {
			return failing(badConfig(name + ": duplicate address " + a))
		}
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			switch {
			case sticky && ev.Kind == tether.Disconnected && (ev.Attempt == 0 || errors.Is(ev.Err, tether.ErrForcedReconnect)):
				// A forced reconnect leaves Attempt at the failures
				// before it: it is no failure of the connection.
				ev.Addr = addrs[0]
			case outage(ev):
				// Index returns -1 for an unknown address: +1 makes it 0.
				at := ev.Dialed // where the Tether was, whatever an ignored event left in Addr
				if at == "" {
					at = ev.Addr
				}
				ev.Addr = addrs[(slices.Index(addrs, at)+1)%len(addrs)]
			}
			return next.HandleDisconnect(ctx, ev)
		})
	}
}
