package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/backoff"
)

// BackoffConfig configures Backoff: an exponential backoff with jitter, as
// grpc-go's. The zero value of each field means its default, so the zero
// BackoffConfig is tether.DefaultHandler's policy.
//
// After n failed dials in a row (Event.Attempt) the next dial waits
// BaseDelay×Multiplier^(n-1), capped at MaxDelay, then spread by ±Jitter: a
// delay d becomes a uniform draw in [d×(1-Jitter), d×(1+Jitter)]. The first
// redial after a stable connection was lost (Attempt 0) waits a uniform draw
// in [0, Jitter×BaseDelay], so that clients that lost the same server do not
// all redial it in the same instant.
type BackoffConfig struct {
	// BaseDelay is the delay after the first failed dial (default 1 s).
	BaseDelay time.Duration
	// MaxDelay caps the delay before jitter (default 120 s, or BaseDelay
	// if that is more). It must not be less than BaseDelay.
	MaxDelay time.Duration
	// Multiplier is the factor by which the delay grows after each failed
	// dial (default 1.6); at least 1.
	Multiplier float64
	// Jitter is the fraction by which each delay is randomised (default
	// 0.2); within 0..1. A zero Jitter is the default, not none.
	Jitter float64
	// MaxAttempts is how many failed dials in a row Backoff tolerates: when
	// Event.Attempt reaches it, Backoff gives up instead of reconnecting.
	// 0, the default, means no limit. MaxAttempts 3 means at most three
	// failed dials in a row.
	MaxAttempts int
}

// Backoff returns a Middleware that spaces out reconnects.
//
// It acts after next, and only on Disconnected and Unreachable events: when
// next decides to Reconnect, Backoff sets Event.Delay from Event.Attempt as
// BackoffConfig describes (replacing any delay set by next, such as the
// default policy's), so the Tether waits before the next dial and outer
// middleware can see and log the delay. A GiveUp or an Ignore from next is
// passed on, never delayed. When Event.Attempt has reached c.MaxAttempts,
// Backoff gives up instead, with a cause that wraps ErrMaxAttempts and the
// event's error. Other events pass through unchanged. Put it inside
// MaxDowntime and CircuitBreaker, which bound and extend its delay.
//
// Backoff never sleeps: the Tether waits the delay, and Close interrupts it.
// It keeps no state (the delay is a function of Event.Attempt, and flap
// damping comes from the Tether counting a connection that dies at once as a
// failed dial), so one value serves any number of Tethers.
//
// A negative field, a Multiplier below 1, a Jitter outside 0..1, a MaxDelay
// below BaseDelay: the Middleware gives up on its first event with an error
// that wraps ErrBadConfig.
func Backoff(c BackoffConfig) tether.Middleware {
	if c.MaxAttempts < 0 {
		return failing(badConfig("Backoff: negative MaxAttempts"))
	}
	bc, err := backoff.Config{
		BaseDelay:  c.BaseDelay,
		MaxDelay:   c.MaxDelay,
		Multiplier: c.Multiplier,
		Jitter:     c.Jitter,
	}.Normalize("Backoff: ")
	if err != nil {
		return failing(badConfig(err.Error()))
	}
	maxAttempts := c.MaxAttempts
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			a := next.HandleDisconnect(ctx, ev)
			if a != tether.Reconnect || !outage(ev) {
				return a
			}
			if maxAttempts > 0 && ev.Attempt >= maxAttempts {
				ev.Err = wrapCause(ErrMaxAttempts, fmt.Sprintf("%d in a row", ev.Attempt), ev.Err)
				return tether.GiveUp
			}
			ev.Delay = bc.Delay(ev.Attempt, backoff.Rand())
			return tether.Reconnect
		})
	}
}
