package middleware

import (
	"context"
	"log/slog"
	"reflect"
	"time"

	"github.com/io-tether/tether"
)

// Logging returns a Middleware that writes one record to l for each event
// and the decision taken on it. It acts after next, so the record shows what
// the handlers inside it decided: the action, and the address and delay of
// the next dial. Put it outermost.
//
// The record's message is "tether " and the event's kind ("tether
// disconnected"); its attributes are the decision (the action's name,
// "reconnect", "give-up" or "ignore", except on Connected and Reconnected,
// where it is "accept" or "reject"), the event as a group (its kind, cause, address, attempts,
// generation, delay, uptime and dial time; see tether.Event.LogValue), the
// outage so far for every event but Connected, and the original cause when
// the handlers replaced it on giving up. Its level is
//
//   - Info for a connection accepted, a reconnect decided, or a failed dial
//     that will be retried,
//   - Warn for an Ignore (the error goes to the operation that met it),
//   - Error for a give-up, a rejected connection included.
//
// Logging keeps no state; one value serves any number of Tethers. A nil l:
// the Middleware gives up on its first event with an error that wraps
// ErrBadConfig.
func Logging(l *slog.Logger) tether.Middleware {
	if l == nil {
		return failing(badConfig("Logging: nil *slog.Logger"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			cause := ev.Err
			a := next.HandleDisconnect(ctx, ev)
			level := logLevel(ev.Kind, a)
			if !l.Enabled(ctx, level) {
				return a
			}
			attrs := make([]slog.Attr, 0, 4)
			attrs = append(attrs, slog.String("action", Decision(ev.Kind, a)),
				slog.String("state", stateAfter(ctx, ev, a).String()), slog.Any("event", *ev))
			if ev.Kind != tether.Connected {
				attrs = append(attrs, slog.Duration("outage", ev.Outage(time.Now())))
			}
			if a == tether.GiveUp && cause != nil && !sameError(cause, ev.Err) {
				attrs = append(attrs, slog.String("cause", cause.Error()))
			}
			l.LogAttrs(ctx, level, "tether "+ev.Kind.String(), attrs...)
			return a
		})
	}
}

func logLevel(k tether.EventKind, a tether.Action) slog.Level {
	switch {
	case a == tether.GiveUp:
		return slog.LevelError
	case a == tether.Ignore && !newConn(k):
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Decision names what action a does on an event of kind k, as Logging and
// ExpvarMetrics report it: on Connected and Reconnected, "accept" (every
// action but GiveUp accepts the new connection) or "reject"; on the other
// events, the action's name ("reconnect", "give-up", "ignore").
func Decision(k tether.EventKind, a tether.Action) string {
	if !newConn(k) {
		return a.String()
	}
	if a == tether.GiveUp {
		return "reject"
	}
	return "accept"
}

func newConn(k tether.EventKind) bool { return k == tether.Connected || k == tether.Reconnected }

// sameError reports whether a and b are the same error value, without the
// panic that == causes on two errors of one uncomparable type (those are
// compared deeply).
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() {
		return false
	}
	if va.Comparable() && vb.Comparable() {
		return a == b
	}
	return reflect.DeepEqual(a, b)
}
