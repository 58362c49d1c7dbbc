package tethertest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestMiddlewareBuiltins runs every built-in middleware, and the
// recommended chain, through the conformance check.
func TestMiddlewareBuiltins(t *testing.T) {
	transient := func(ev *tether.Event) bool { return !tether.IsPermanent(ev.Err) }
	var dropped atomic.Uint64
	tests := []struct {
		name string
		mw   func() tether.Middleware // fresh for each run
		opts []tethertest.MiddlewareOption
	}{
		{"Logging", func() tether.Middleware { return middleware.Logging(slog.New(slog.DiscardHandler)) }, nil},
		{"Backoff", func() tether.Middleware { return middleware.Backoff(middleware.BackoffConfig{}) }, nil},
		{"Backoff MaxAttempts", func() tether.Middleware {
			return middleware.Backoff(middleware.BackoffConfig{BaseDelay: time.Millisecond, Jitter: 1, MaxAttempts: 2})
		}, nil},
		{"Failover", func() tether.Middleware { return middleware.Failover("127.0.0.1:7001", "127.0.0.1:7002") }, nil},
		{"StickyFailover", func() tether.Middleware { return middleware.StickyFailover("127.0.0.1:7001", "127.0.0.1:7002") }, nil},
		{"Notify", func() tether.Middleware { return middleware.Notify(make(chan tether.Event, 1)) }, nil},
		{"NotifyDropped", func() tether.Middleware { return middleware.NotifyDropped(make(chan tether.Event), &dropped) }, nil},
		{"MaxDowntime", func() tether.Middleware { return middleware.MaxDowntime(time.Minute) }, nil},
		{"When", func() tether.Middleware {
			return middleware.When(func(ev *tether.Event) bool { return ev.Attempt > 1 }, middleware.Backoff(middleware.BackoffConfig{}))
		}, nil},
		{"RetryIf", func() tether.Middleware { return middleware.RetryIf(transient) }, nil},
		{"RetryIf never", func() tether.Middleware { return middleware.RetryIf(func(*tether.Event) bool { return false }) }, nil},
		{"CircuitBreaker", func() tether.Middleware {
			return middleware.CircuitBreaker(middleware.NewBreaker(middleware.BreakerConfig{Failures: 1}))
		}, []tethertest.MiddlewareOption{tethertest.WithSharedState()}},
		{"Metrics", func() tether.Middleware { return middleware.Metrics(new(middleware.ExpvarMetrics)) }, nil},
		{"recommended chain", func() tether.Middleware {
			breaker := middleware.NewBreaker(middleware.BreakerConfig{})
			return func(next tether.DisconnectHandler) tether.DisconnectHandler {
				return tether.Chain(next,
					middleware.Logging(slog.New(slog.DiscardHandler)),
					middleware.Metrics(new(middleware.ExpvarMetrics)),
					middleware.Notify(make(chan tether.Event, 1)),
					middleware.MaxDowntime(time.Minute),
					middleware.CircuitBreaker(breaker),
					middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 3}),
					middleware.RetryIf(transient),
					middleware.Failover("127.0.0.1:7001", "127.0.0.1:7002"),
				)
			}
		}, []tethertest.MiddlewareOption{tethertest.WithSharedState()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tethertest.TestMiddleware(t, tt.mw(), tt.opts...)
		})
	}
}

// TestMiddlewareBuiltinsInSynctest: the check also runs inside a synctest
// bubble, with middleware made in it.
func TestMiddlewareBuiltinsInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		require.NoError(t, tethertest.CheckMiddleware(middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 3})))
		require.NoError(t, tethertest.CheckMiddleware(middleware.MaxDowntime(time.Second)))
		require.NoError(t, tethertest.CheckMiddleware(middleware.CircuitBreaker(middleware.NewBreaker(middleware.BreakerConfig{Failures: 1})),
			tethertest.WithSharedState()))
	})
}

// handlerFunc turns f into a Middleware.
func handlerFunc(f func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action) tether.Middleware {
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			return f(next, ctx, ev)
		})
	}
}

func outage(ev *tether.Event) bool {
	return ev.Kind == tether.Disconnected || ev.Kind == tether.Unreachable
}

// TestCheckMiddlewareCatches feeds the check middleware that each break one
// rule; the check must name it, and pass the identity middleware.
func TestCheckMiddlewareCatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{}) // lets the stuck handlers go at the end
		var calls atomic.Int64
		var inside atomic.Int32
		tests := []struct {
			name string
			mw   tether.Middleware
			rule string // "" when the middleware keeps every rule
		}{
			{"identity", func(next tether.DisconnectHandler) tether.DisconnectHandler { return next }, ""},
			{"nil handler", func(tether.DisconnectHandler) tether.DisconnectHandler { return nil }, "returns a handler"},
			{"nil Middleware", nil, "returns a handler"},
			{"panics when built", func(tether.DisconnectHandler) tether.DisconnectHandler { panic("boom") }, "returns a handler"},
			{"swallows informational events", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if !outage(ev) {
					return tether.Reconnect
				}
				return next.HandleDisconnect(ctx, ev)
			}), "passes informational events through"},
			{"accepts what next rejects", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				next.HandleDisconnect(ctx, ev)
				if !outage(ev) {
					ev.Err = nil
					return tether.Reconnect
				}
				return tether.Reconnect
			}), "passes informational events through"},
			{"reconnects without next", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if outage(ev) {
					return tether.Reconnect
				}
				return next.HandleDisconnect(ctx, ev)
			}), "calls next unless it decides"},
			{"calls next twice", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if outage(ev) {
					next.HandleDisconnect(ctx, ev)
				}
				return next.HandleDisconnect(ctx, ev)
			}), "calls next unless it decides"},
			{"gives up without an error", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if outage(ev) {
					ev.Err = nil
					return tether.GiveUp
				}
				return next.HandleDisconnect(ctx, ev)
			}), "calls next unless it decides"},
			{"overrides next's give-up", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				a := next.HandleDisconnect(ctx, ev)
				if outage(ev) {
					return tether.Reconnect
				}
				return a
			}), "keeps a give-up from next"},
			{"replaces next's error", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				a := next.HandleDisconnect(ctx, ev)
				if a == tether.GiveUp && outage(ev) {
					ev.Err = errors.New("something else")
				}
				return a
			}), "keeps a give-up from next"},
			{"changes Attempt", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if outage(ev) {
					ev.Attempt = 0
				}
				return next.HandleDisconnect(ctx, ev)
			}), "changes only Addr, Delay and Err"},
			{"negative delay", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				a := next.HandleDisconnect(ctx, ev)
				ev.Delay = -time.Second
				return a
			}), "changes only Addr, Delay and Err"},
			{"sleeps through Close", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if ctx.Err() != nil {
					<-release // ignores ctx
				}
				return next.HandleDisconnect(ctx, ev)
			}), "returns when ctx is done"},
			{"waits after next, ignoring ctx", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				a := next.HandleDisconnect(ctx, ev)
				if ctx.Err() != nil {
					<-release
				}
				return a
			}), "returns when ctx is done"},
			{"counts events in the middleware", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if outage(ev) && calls.Add(1) > 40 {
					ev.Err = errors.New("too many events")
					return tether.GiveUp
				}
				return next.HandleDisconnect(ctx, ev)
			}), "keeps no per-Tether state"},
			{"remembers the last address", func() tether.Middleware {
				var last atomic.Value
				return handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
					if prev, ok := last.Load().(string); ok && outage(ev) {
						ev.Addr = prev
					}
					last.Store(ev.Dialed)
					return next.HandleDisconnect(ctx, ev)
				})
			}(), "keeps no per-Tether state"},
			{"counts its own attempts", counting(time.Second), "keeps no per-Tether state"},
			{"backs off by a count of all Tethers' failures, reset on success, capped", func() tether.Middleware {
				var failures atomic.Int64
				return handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
					a := next.HandleDisconnect(ctx, ev)
					switch {
					case ev.Kind == tether.Connected || ev.Kind == tether.Reconnected:
						failures.Store(0)
					case outage(ev) && a == tether.Reconnect:
						ev.Delay = min(100*time.Millisecond<<min(failures.Add(1)-1, 20), 30*time.Second)
					}
					return a
				})
			}(), "keeps no per-Tether state"},
			{"not safe for concurrent use", handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
				if inside.Add(1) > 1 {
					inside.Add(-1)
					panic("two calls at once")
				}
				time.Sleep(time.Millisecond) // virtual: lets the others in
				inside.Add(-1)
				return next.HandleDisconnect(ctx, ev)
			}), "is safe for concurrent use"},
		}
		for _, tt := range tests {
			err := tethertest.CheckMiddleware(tt.mw)
			if tt.rule == "" {
				require.NoError(t, err, tt.name)
				continue
			}
			require.Error(t, err, "%s: CheckMiddleware = nil, want an error about %q", tt.name, tt.rule)
			require.Contains(t, err.Error(), "tethertest: "+tt.rule+": ", tt.name)
		}
		close(release)
	})
}

// TestMiddlewareWithSharedState: the statelessness rule is skipped only for
// middleware that declare shared state.
func TestMiddlewareWithSharedState(t *testing.T) {
	err := tethertest.CheckMiddleware(counting(time.Millisecond))
	require.ErrorContains(t, err, "keeps no per-Tether state")
	require.NoError(t, tethertest.CheckMiddleware(counting(time.Millisecond), tethertest.WithSharedState()))
}

// counting returns a middleware that counts the reconnects it saw, of all
// Tethers together, and delays each by that count of units: per-Tether
// state, by a count shared on purpose.
func counting(unit time.Duration) tether.Middleware {
	var n atomic.Int64
	return handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
		a := next.HandleDisconnect(ctx, ev)
		if a == tether.Reconnect && outage(ev) {
			ev.Delay = time.Duration(n.Add(1)) * unit
		}
		return a
	})
}

// TestMiddlewareReportsEachRule: a broken middleware fails the subtest of the
// rule it breaks, and only that one.
func TestMiddlewareReportsEachRule(t *testing.T) {
	overrides := handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
		a := next.HandleDisconnect(ctx, ev)
		if outage(ev) {
			return tether.Reconnect
		}
		return a
	})
	err := tethertest.CheckMiddleware(overrides)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "tethertest: keeps a give-up from next: "), "CheckMiddleware = %v", err)
	for _, rule := range []string{
		"returns a handler", "passes informational events through", "calls next unless it decides",
		"changes only Addr, Delay and Err", "returns when ctx is done", "keeps no per-Tether state", "is safe for concurrent use",
	} {
		require.NotContains(t, err.Error(), "tethertest: "+rule+": ")
	}
}

// TestCheckMiddlewareCallTimeout: a handler that takes longer than the call
// timeout fails; a longer timeout lets it pass.
func TestCheckMiddlewareCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
			select {
			case <-time.After(2 * time.Second): // a lookup
			case <-ctx.Done():
			}
			return next.HandleDisconnect(ctx, ev)
		})
		err := tethertest.CheckMiddleware(slow, tethertest.WithCallTimeout(time.Second))
		require.ErrorContains(t, err, "did not return within 1s")
		require.NoError(t, tethertest.CheckMiddleware(slow, tethertest.WithCallTimeout(3*time.Second)))
		synctest.Wait()
	})
}

// TestCheckMiddlewareHungHandler: outside a synctest bubble (see the
// CheckMiddleware doc), a handler that hangs ignoring ctx is reported, by
// the rule that waits for ctx and by the others, and its calls are left
// running; they end here when the test releases them.
func TestCheckMiddlewareHungHandler(t *testing.T) {
	release := make(chan struct{})
	hung := handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
		<-release // ignores ctx
		return next.HandleDisconnect(ctx, ev)
	})
	err := tethertest.CheckMiddleware(hung, tethertest.WithCallTimeout(20*time.Millisecond))
	close(release)
	require.ErrorContains(t, err, "tethertest: returns when ctx is done: ")
	require.ErrorContains(t, err, "did not return within 20ms")
}

// TestMiddlewareEOFEvents: the check's events carry transient errors: io.EOF
// for Disconnected, so a RetryIf on EOF passes them on.
func TestMiddlewareEOFEvents(t *testing.T) {
	var sawEOF atomic.Bool
	mw := handlerFunc(func(next tether.DisconnectHandler, ctx context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected && errors.Is(ev.Err, io.EOF) {
			sawEOF.Store(true)
		}
		return next.HandleDisconnect(ctx, ev)
	})
	require.NoError(t, tethertest.CheckMiddleware(mw))
	require.True(t, sawEOF.Load())
}
