package middleware

import (
	"context"

	"github.com/io-tether/tether"
)

// When returns a Middleware that applies mw only to the events for which
// pred reports true; the others go straight to next, as if mw were not in
// the chain. pred runs before anything else, for every event, and must not
// change the event. For example, a Backoff for refused dials only:
//
//	middleware.When(func(ev *tether.Event) bool {
//		return errors.Is(ev.Err, syscall.ECONNREFUSED)
//	}, middleware.Backoff(middleware.BackoffConfig{BaseDelay: 5 * time.Second}))
//
// When goes where mw would go. It keeps no state of its own; it keeps
// whatever mw keeps. A nil pred or mw, an mw that returns a nil handler, or
// a middleware of this package with a bad configuration as mw: the
// Middleware gives up on its first event, whatever pred says, with an
// error that wraps ErrBadConfig.
func When(pred func(ev *tether.Event) bool, mw tether.Middleware) tether.Middleware {
	switch {
	case pred == nil:
		return failing(badConfig("When: nil predicate"))
	case mw == nil:
		return failing(badConfig("When: nil Middleware"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		h := mw(next)
		switch f, bad := h.(failed); {
		case h == nil:
			return failing(badConfig("When: the Middleware returned a nil handler"))(next)
		case bad:
			return f // the first event tells the bad configuration, not the first that pred picks
		}
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if pred(ev) {
				return h.HandleDisconnect(ctx, ev)
			}
			return next.HandleDisconnect(ctx, ev)
		})
	}
}

// RetryIf returns a Middleware that gives up on the Disconnected and
// Unreachable events for which pred reports false, without asking next, and
// passes every other event to next. The cause reported is the event's own
// error. pred must not change the event. For example, give up at once on
// what tether.IsPermanent calls permanent, and on nothing else:
//
//	middleware.RetryIf(func(ev *tether.Event) bool { return !tether.IsPermanent(ev.Err) })
//
// Put RetryIf inside the observers, so that they see its give-ups. It keeps
// no state; one value serves any number of Tethers. A nil
// pred: the Middleware gives up on its first event with an error that wraps
// ErrBadConfig.
func RetryIf(pred func(ev *tether.Event) bool) tether.Middleware {
	if pred == nil {
		return failing(badConfig("RetryIf: nil predicate"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if outage(ev) && !pred(ev) {
				return tether.GiveUp
			}
			return next.HandleDisconnect(ctx, ev)
		})
	}
}
