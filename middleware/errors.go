package middleware

import (
	"context"
	"errors"
	"fmt"

	"github.com/io-tether/tether"
)

var (
	// ErrBadConfig is wrapped by the error that a middleware built from a bad
	// configuration reports. Such a middleware never panics: it gives up on
	// its first event with that error in Event.Err, so Dial fails with it.
	ErrBadConfig = errors.New("tether/middleware: bad configuration")
	// ErrMaxAttempts is wrapped, with the dial error, by the cause that
	// Backoff reports when it gives up after BackoffConfig.MaxAttempts failed
	// dials in a row.
	ErrMaxAttempts = errors.New("tether/middleware: too many failed dials")
	// ErrMaxDowntime is wrapped, with the last cause, by the cause that
	// MaxDowntime reports when an outage lasted too long.
	ErrMaxDowntime = errors.New("tether/middleware: outage lasted too long")
)

// configError is the error of a bad configuration: its message names the
// middleware and the problem, and it matches ErrBadConfig.
type configError struct{ msg string }

func badConfig(msg string) error { return &configError{msg} }

func (e *configError) Error() string        { return "tether/middleware: " + e.msg }
func (e *configError) Is(target error) bool { return target == ErrBadConfig }

// failing returns the Middleware of a bad configuration: its handler gives
// up on every event, the first included, with err.
func failing(err error) tether.Middleware {
	return func(tether.DisconnectHandler) tether.DisconnectHandler { return failed{err} }
}

// failed is the handler of a bad configuration (failing): a type of its own,
// so that When can tell it.
type failed struct{ err error }

func (f failed) HandleDisconnect(_ context.Context, ev *tether.Event) tether.Action {
	ev.Err = f.err
	return tether.GiveUp
}

// outage reports whether ev is about a lost connection or a failed dial: the
// events on which a handler decides whether, where and when to dial again.
func outage(ev *tether.Event) bool {
	return ev.Kind == tether.Disconnected || ev.Kind == tether.Unreachable
}

// wrapCause returns the cause a middleware reports when it gives up: sentinel
// and detail, then the event's own error, both wrapped.
func wrapCause(sentinel error, detail string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w (%s)", sentinel, detail)
	}
	return fmt.Errorf("%w (%s): %w", sentinel, detail, cause)
}
