package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/io-tether/tether"
)

// MaxDowntime returns a Middleware that gives up once an outage has lasted d,
// whatever the attempt count. The outage is measured from Event.Since (when
// the connection was lost, or when Dial began), so it bounds Dial too.
//
// It acts around next, on Disconnected and Unreachable events only:
//
//   - when the outage has already lasted d, it gives up without asking next,
//     with a cause that wraps ErrMaxDowntime and the event's error;
//   - otherwise it asks next with a ctx that ends when the outage reaches d,
//     so that a handler that waits (CircuitBreaker, a lookup) waits no
//     longer; if next then decides to Reconnect, MaxDowntime shortens
//     Event.Delay so the next dial happens no later than that moment, and it
//     gives up if the moment has passed.
//
// So the last dial happens when the outage reaches d at the latest, and if it
// fails the Tether gives up then: on time, not a backoff step later. A dial
// that began before that moment runs to its end, bounded by its Dialer's
// per-attempt timeout (10 s by default): give the Dialer a shorter one for
// a tighter bound. Put
// MaxDowntime outside Backoff and CircuitBreaker, whose delays it bounds.
// Other events pass through unchanged.
//
// MaxDowntime keeps no state; one value serves any number of Tethers. A d of
// 0 or less: the Middleware gives up on its first event with an error that
// wraps ErrBadConfig.
func MaxDowntime(d time.Duration) tether.Middleware {
	if d <= 0 {
		return failing(badConfig("MaxDowntime: duration must be positive"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if !outage(ev) || ev.Since.IsZero() {
				return next.HandleDisconnect(ctx, ev)
			}
			deadline := ev.Since.Add(d)
			if !time.Now().Before(deadline) {
				return giveUpDowntime(ev, d)
			}
			dctx, cancel := context.WithDeadline(ctx, deadline)
			a := next.HandleDisconnect(dctx, ev)
			cancel()
			if a != tether.Reconnect {
				return a
			}
			left := time.Until(deadline)
			if left <= 0 {
				return giveUpDowntime(ev, d)
			}
			ev.Delay = min(ev.Delay, left)
			return tether.Reconnect
		})
	}
}

func giveUpDowntime(ev *tether.Event, d time.Duration) tether.Action {
	ev.Err = wrapCause(ErrMaxDowntime, fmt.Sprintf("down for %v, limit %v", ev.Outage(time.Now()).Round(time.Millisecond), d), ev.Err)
	return tether.GiveUp
}
