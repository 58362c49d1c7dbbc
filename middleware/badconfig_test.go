package middleware_test

import (
	"context"
	"io"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// badConfigs are the built-ins made from bad configurations, each with the
// error message it must give.
func badConfigs() []struct {
	name string
	mw   tether.Middleware
	msg  string
} {
	var dropped atomic.Uint64
	always := func(*tether.Event) bool { return true }
	never := func(*tether.Event) bool { return false }
	return []struct {
		name string
		mw   tether.Middleware
		msg  string
	}{
		{"Logging(nil)", middleware.Logging(nil), "Logging: nil *slog.Logger"},
		{"Backoff negative BaseDelay", middleware.Backoff(middleware.BackoffConfig{BaseDelay: -1}), "Backoff: negative BaseDelay"},
		{"Backoff negative MaxDelay", middleware.Backoff(middleware.BackoffConfig{MaxDelay: -1}), "Backoff: negative MaxDelay"},
		{"Backoff Multiplier below 1", middleware.Backoff(middleware.BackoffConfig{Multiplier: 0.5}), "Backoff: Multiplier must be at least 1"},
		{"Backoff Multiplier NaN", middleware.Backoff(middleware.BackoffConfig{Multiplier: math.NaN()}), "Backoff: Multiplier must be at least 1"},
		{"Backoff Jitter above 1", middleware.Backoff(middleware.BackoffConfig{Jitter: 1.5}), "Backoff: Jitter must be within 0..1"},
		{"Backoff negative Jitter", middleware.Backoff(middleware.BackoffConfig{Jitter: -0.2}), "Backoff: Jitter must be within 0..1"},
		{"Backoff MaxDelay below BaseDelay", middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10, MaxDelay: 5}), "Backoff: MaxDelay is less than BaseDelay"},
		{"Backoff negative MaxAttempts", middleware.Backoff(middleware.BackoffConfig{MaxAttempts: -1}), "Backoff: negative MaxAttempts"},
		{"Failover()", middleware.Failover(), "Failover: no addresses"},
		{"Failover empty address", middleware.Failover(addrA, ""), "Failover: empty address"},
		{"Failover duplicate", middleware.Failover(addrA, addrB, addrA), "Failover: duplicate address " + addrA},
		{"StickyFailover()", middleware.StickyFailover(), "StickyFailover: no addresses"},
		{"Notify(nil)", middleware.Notify(nil), "Notify: nil channel"},
		{"NotifyDropped nil channel", middleware.NotifyDropped(nil, &dropped), "NotifyDropped: nil channel"},
		{"NotifyDropped nil counter", middleware.NotifyDropped(make(chan tether.Event), nil), "NotifyDropped: nil counter"},
		{"MaxDowntime(0)", middleware.MaxDowntime(0), "MaxDowntime: duration must be positive"},
		{"MaxDowntime negative", middleware.MaxDowntime(-1), "MaxDowntime: duration must be positive"},
		{"When nil predicate", middleware.When(nil, middleware.Notify(make(chan tether.Event))), "When: nil predicate"},
		{"When nil Middleware", middleware.When(always, nil), "When: nil Middleware"},
		{"When nil handler", middleware.When(always, func(tether.DisconnectHandler) tether.DisconnectHandler { return nil }), "When: the Middleware returned a nil handler"},
		{"When bad inner", middleware.When(always, middleware.Failover()), "Failover: no addresses"},
		{"When bad inner, never picked", middleware.When(never, middleware.Failover()), "Failover: no addresses"},
		{"RetryIf(nil)", middleware.RetryIf(nil), "RetryIf: nil predicate"},
		{"CircuitBreaker(nil)", middleware.CircuitBreaker(nil), "CircuitBreaker: nil *Breaker"},
		{"CircuitBreaker negative Failures", middleware.CircuitBreaker(middleware.NewBreaker(middleware.BreakerConfig{Failures: -1})), "CircuitBreaker: negative Failures"},
		{"CircuitBreaker negative Window", middleware.CircuitBreaker(middleware.NewBreaker(middleware.BreakerConfig{Window: -1})), "CircuitBreaker: negative Window"},
		{"CircuitBreaker negative CoolDown", middleware.CircuitBreaker(middleware.NewBreaker(middleware.BreakerConfig{CoolDown: -1})), "CircuitBreaker: negative CoolDown"},
		{"CircuitBreaker negative Stability", middleware.CircuitBreaker(middleware.NewBreaker(middleware.BreakerConfig{Stability: -1})), "CircuitBreaker: negative Stability"},
		{"Metrics(nil)", middleware.Metrics(nil), "Metrics: nil MetricsRecorder"},
		{"Metrics nil pointer", middleware.Metrics((*middleware.ExpvarMetrics)(nil)), "Metrics: nil MetricsRecorder (a nil *middleware.ExpvarMetrics)"},
		{"CircuitBreaker zero", middleware.CircuitBreaker(&middleware.Breaker{}), "CircuitBreaker: zero Breaker (make one with NewBreaker)"},
	}
}

// TestBadConfigFailsDial: every built-in with a bad configuration makes Dial
// fail with its error, on the first event (Connected: the dial succeeds).
func TestBadConfigFailsDial(t *testing.T) {
	for _, tt := range badConfigs() {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := servers(t, map[string]func(net.Conn){addrA: hold})
				tn, err := tether.Dial(context.Background(), n, addrA, tether.Chain(nil, tt.mw))
				require.Nil(t, tn)
				require.ErrorIs(t, err, middleware.ErrBadConfig)
				require.EqualError(t, err, "tether/middleware: "+tt.msg)
				require.Len(t, n.History(), 1, "the first event gave up: no second dial")
			})
		})
	}
}

// TestBadConfigGivesUpOnEveryEvent calls the handlers directly: every kind of
// event gets a give-up with the error.
func TestBadConfigGivesUpOnEveryEvent(t *testing.T) {
	for _, tt := range badConfigs() {
		for _, kind := range []tether.EventKind{tether.Connected, tether.Disconnected, tether.Unreachable, tether.Reconnected} {
			n := &tethertest.Recorder{}
			ev := tether.Event{Kind: kind, Addr: addrA, Dialed: addrA}
			if kind == tether.Disconnected {
				ev.Err = io.EOF
			}
			a, got := handle(tt.mw(n), ev)
			require.Equal(t, tether.GiveUp, a, "%s on %v", tt.name, kind)
			require.ErrorIs(t, got.Err, middleware.ErrBadConfig, "%s on %v", tt.name, kind)
			require.True(t, strings.HasPrefix(got.Err.Error(), "tether/middleware: "), "%s: %q", tt.name, got.Err)
			require.Empty(t, n.Events(), "%s on %v: next is not asked", tt.name, kind)
		}
	}
}
