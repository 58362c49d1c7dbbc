package middleware

import (
	"context"
	"sync/atomic"

	"github.com/io-tether/tether"
)

// Notify returns a Middleware that passes every event to next, then sends
// to ch a copy of the event as next left it, with the decision: the next
// dial's Addr and Delay as the handlers inside set them, and in State the
// state the Tether enters (Event.NextState), so that a consumer can print
// "retrying in 1.2s on backup:7000" or "gave up" from the copies alone.
//
// Notify never blocks a reconnect: it does not wait to send on ch, and drops
// the copy when ch is not ready. The caller must ensure that ch has room for
// the events it expects, as with os/signal.Notify: for a consumer that keeps
// up, a buffer of a few events is enough; NotifyDropped counts what was
// dropped. The copy is sent once next has decided (a handler inside that
// blocks delays it); it shares Event.Conn with the Tether, and the consumer
// must not read from or write to it. Put it outside the policies, so that it
// gets every event, those they decide on without asking next included.
//
// Once the Tether's Done is closed, no handler runs, and Notify sends
// nothing more for it: the consumer may then close ch (once every Tether
// that shares ch is done). A copy sent after Close (of a decision made
// meanwhile) has State Shutdown.
//
// Notify keeps no state; one value may serve many Tethers, which then share
// ch. A nil ch: the Middleware gives up on its first event with an error that
// wraps ErrBadConfig.
func Notify(ch chan<- tether.Event) tether.Middleware {
	return notify("Notify", ch, nil)
}

// NotifyDropped is Notify that also adds to dropped one for each event that
// ch had no room for, so that drops are not silent. dropped may be shared by
// many Notify middleware; it must not be nil.
func NotifyDropped(ch chan<- tether.Event, dropped *atomic.Uint64) tether.Middleware {
	if dropped == nil {
		return failing(badConfig("NotifyDropped: nil counter"))
	}
	return notify("NotifyDropped", ch, dropped)
}

func notify(name string, ch chan<- tether.Event, dropped *atomic.Uint64) tether.Middleware {
	if ch == nil {
		return failing(badConfig(name + ": nil channel"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			a := next.HandleDisconnect(ctx, ev)
			e := *ev
			e.State = stateAfter(ctx, ev, a)
			select {
			case ch <- e:
			default:
				if dropped != nil {
					dropped.Add(1)
				}
			}
			return a
		})
	}
}

// stateAfter is the state the Tether enters once its handler answered a to
// ev (Event.NextState), or Shutdown when ctx ended meanwhile and a is not
// Ignore: a Tether that was closed, or that an outer MaxDowntime gives up
// on, dials no more. (An outer MaxDowntime passes Ignore on, which keeps
// the connection.)
func stateAfter(ctx context.Context, ev *tether.Event, a tether.Action) tether.State {
	if ctx.Err() != nil && a != tether.Ignore {
		return tether.Shutdown
	}
	return ev.NextState(a)
}
