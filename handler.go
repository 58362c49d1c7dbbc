package tether

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/io-tether/tether/internal/backoff"
)

// Action is a DisconnectHandler's decision about an Event.
type Action int

const (
	// Reconnect dials (again), after Event.Delay. On Connected and
	// Reconnected it accepts the new connection.
	Reconnect Action = iota
	// GiveUp stops for good: pending and later operations fail, Done is
	// closed and Err reports Event.Err. On Connected and Reconnected it
	// rejects the new connection. It is io-tether's "exhaust".
	GiveUp
	// Ignore neither reconnects nor gives up. On Disconnected the error goes
	// to the operation that met it (but for a Write with a write buffer,
	// which is buffered: see WithWriteBuffer) and the connection is kept; on
	// Unreachable the dial error goes to the operations waiting for a
	// connection, and the next operation dials again; on Connected and
	// Reconnected it accepts the connection. The Tether never loops on an
	// Ignore by itself.
	Ignore
)

// String returns the lowercase name of a ("reconnect", "give-up", "ignore").
func (a Action) String() string {
	switch a {
	case Reconnect:
		return "reconnect"
	case GiveUp:
		return "give-up"
	case Ignore:
		return "ignore"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// A DisconnectHandler decides what a Tether does about each Event: reconnect,
// give up or ignore.
//
// HandleDisconnect is called for every event of a Tether, one call at a time
// per Tether, from the goroutine that runs the Tether's reconnect (or from
// Dial's). It may run any blocking code: ask a service, send on a channel,
// sleep. It should return when ctx is done: during Dial, ctx is Dial's; after
// it, ctx belongs to the reconnect in progress and is done when the Tether is
// closed or gives up (and once that reconnect is over: do not keep it).
// One handler value may serve many Tethers at once, so it must be safe for
// concurrent use. It must not call Read, Write or CloseWrite on the Tether it
// is handling (they would wait for the handler); Close is fine.
//
// The handler may change ev.Addr (the address of the next dial), ev.Delay (how
// long the Tether waits before that dial) and, when it returns GiveUp, ev.Err
// (the error reported). ev is valid only during the call.
//
// A handler that returns Reconnect on Unreachable without a delay (ev.Delay,
// or a wait of its own) dials in a tight loop while the server is down:
// tens of thousands of dials a second. Set a delay, or wrap the handler in
// middleware.Backoff, as the default policy does.
type DisconnectHandler interface {
	HandleDisconnect(ctx context.Context, ev *Event) Action
}

// The DisconnectHandlerFunc type is an adapter to allow the use of ordinary
// functions as DisconnectHandlers. If f is a function with the appropriate
// signature, DisconnectHandlerFunc(f) is a DisconnectHandler that calls f.
type DisconnectHandlerFunc func(ctx context.Context, ev *Event) Action

// HandleDisconnect calls f(ctx, ev).
func (f DisconnectHandlerFunc) HandleDisconnect(ctx context.Context, ev *Event) Action {
	if f == nil {
		return badHandler(ctx, ev)
	}
	return f(ctx, ev)
}

// A Middleware wraps a DisconnectHandler in another, as net/http middleware
// wraps an http.Handler. The wrapper may act before calling next (change the
// event, or decide without asking next), after it (change the action or the
// event's Delay), or both.
type Middleware func(DisconnectHandler) DisconnectHandler

// Chain returns h wrapped by mw; mw[0] is the outermost (it sees each event
// first). A nil h is DefaultHandler(); nil entries of mw are skipped.
func Chain(h DisconnectHandler, mw ...Middleware) DisconnectHandler {
	if h == nil {
		h = DefaultHandler()
	}
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] == nil {
			continue
		}
		next := mw[i](h)
		if next == nil {
			next = DisconnectHandlerFunc(func(ctx context.Context, ev *Event) Action {
				ev.Err = errors.New("tether: a Middleware returned a nil DisconnectHandler")
				return GiveUp
			})
		}
		h = next
	}
	return h
}

// errNilHandlerFunc is reported by a nil DisconnectHandlerFunc.
var errNilHandlerFunc = errors.New("tether: nil DisconnectHandlerFunc")

func badHandler(_ context.Context, ev *Event) Action {
	ev.Err = errNilHandlerFunc
	return GiveUp
}

// DefaultHandler returns the policy a Tether uses when its handler is nil:
// reconnect after transient errors for ever, with exponential backoff and
// jitter (grpc-go's connection-backoff defaults: 1 s, ×1.6, ±20 %, capped at
// 120 s; the first redial after a stable connection is lost waits a random
// 0–200 ms so that many clients do not redial in the same instant), and give
// up at once on errors that IsPermanent reports. It accepts every new
// connection.
//
// It keeps no state (the delay is a function of Event.Attempt), so one value
// serves any number of Tethers.
func DefaultHandler() DisconnectHandler { return defaultHandler{} }

type defaultHandler struct{}

func (defaultHandler) HandleDisconnect(_ context.Context, ev *Event) Action {
	switch ev.Kind {
	case Disconnected, Unreachable:
		if IsPermanent(ev.Err) {
			return GiveUp
		}
		ev.Delay = backoff.Default.Delay(ev.Attempt, backoff.Rand())
	}
	return Reconnect
}

func (defaultHandler) String() string { return "tether.DefaultHandler" }

var _ fmt.Stringer = defaultHandler{}
