package middleware_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// MaxDowntime bounds a lazy Tether's first dials too: their events carry
// the time the lazy dial began as Event.Since (they carried the zero
// time, and the Tether retried for ever).
func TestMaxDowntimeBoundsLazyDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		d.FailWhen(func(int, string) error { return errRefused })
		var mu sync.Mutex
		var since []time.Time
		rec := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			mu.Lock()
			defer mu.Unlock()
			since = append(since, ev.Since)
			return tether.Reconnect
		})
		h := tether.Chain(rec, middleware.MaxDowntime(time.Second),
			middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: 100 * time.Millisecond}))
		tt, err := tether.Dial(context.Background(), d, addrA, h, tether.WithLazy())
		require.NoError(t, err)
		defer tt.Close()
		tt.Connect()
		time.Sleep(10 * time.Second)
		select {
		case <-tt.Done():
		default:
			mu.Lock()
			defer mu.Unlock()
			t.Errorf("MaxDowntime(1s): still retrying after 10 s, %d dials; Event.Since of the first: %v",
				d.Dials(), since[0])
		}
	})
}

// Backoff's delay does not overflow time.Duration for huge delays: it is
// the longest one, not 0 (a tight loop) or negative.
func TestBackoffHugeDelays(t *testing.T) {
	for _, c := range []middleware.BackoffConfig{
		{BaseDelay: math.MaxInt64, MaxDelay: math.MaxInt64},
		{BaseDelay: time.Hour, MaxDelay: math.MaxInt64, Multiplier: 1e6},
		{BaseDelay: 8e18, MaxDelay: 8e18, Jitter: 0.2},
	} {
		h := middleware.Backoff(c)(reconnect)
		for i := range 20 {
			_, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 5})
			if ev.Delay < time.Hour {
				t.Errorf("%+v: attempt 5, draw %d: Delay %v", c, i, ev.Delay)
				break
			}
		}
	}
}

// With Multiplier 1 (a constant backoff), a decision takes the same time
// at any Attempt: it took time in proportion to Attempt, 0.4 s at 2^28.
func TestBackoffMultiplierOneIsConstantTime(t *testing.T) {
	h := middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second, Multiplier: 1})(reconnect)
	start := time.Now()
	_, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: math.MaxInt32})
	require.InDelta(t, 10*time.Millisecond, ev.Delay, float64(3*time.Millisecond), "the base delay, with the default jitter")
	require.Less(t, time.Since(start), time.Second, "one decision (the loop took 2^31 steps)")
}

// A forced Reconnect() is no failed dial: CircuitBreaker does not count
// it, even when the connection it drops came after failed dials.
func TestBreakerIgnoresForcedReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){addrA: hold})
		n.FailNext(2, nil) // two failed dials, then a connection
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3})
		var mu sync.Mutex
		var evs []tether.Event
		rec := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			mu.Lock()
			defer mu.Unlock()
			evs = append(evs, *ev)
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, n, addrA, tether.Chain(rec, middleware.CircuitBreaker(b)))
		done := drain(tt)
		synctest.Wait()
		before := n.Dials()
		tt.Reconnect() // the user's choice: "does not count as a failed attempt"
		time.Sleep(5 * time.Second)
		t.Logf("dials to A in the 5 s after Reconnect(): %d; state %v; breaker %v",
			n.Dials()-before, tt.State(), b.State(addrA))
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			t.Logf("%v attempt=%d err=%v", ev.Kind, ev.Attempt, ev.Err)
		}
		require.Equal(t, middleware.BreakerClosed, b.State(addrA),
			"two failed dials and a successful one, then a forced reconnect, opened the circuit")
		tt.Close()
		<-done
	})
}

type wrapErr struct{ err error }

func (e wrapErr) Error() string { return "wrapped: " + e.err.Error() }
func (e wrapErr) Unwrap() error { return e.err }

type sliceErr []string

func (sliceErr) Error() string { return "slice" }

// Logging compares errors of a comparable type that hold uncomparable
// values without a panic (== on them panics at run time).
func TestLoggingUncomparableValues(t *testing.T) {
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := middleware.Logging(l)(tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		ev.Err = wrapErr{sliceErr{"b"}}
		return tether.GiveUp
	}))
	require.NotPanics(t, func() {
		handle(h, tether.Event{Kind: tether.Disconnected, Err: wrapErr{sliceErr{"a"}}, Addr: addrA})
	})
}

// Metrics records a connection's lifetime once, when it is lost: not on a
// Disconnected event that the handlers answered with Ignore (the
// connection is kept).
func TestMetricsIgnoreIsNoLoss(t *testing.T) {
	var m middleware.ExpvarMetrics
	ignoreTimeouts := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if errors.Is(ev.Err, errRefused) {
			return tether.Ignore
		}
		return tether.Reconnect
	})
	h := middleware.Metrics(&m)(ignoreTimeouts)
	handle(h, tether.Event{Kind: tether.Disconnected, Err: errRefused, Addr: addrA, Dialed: addrA, Uptime: time.Minute}) // kept
	handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA, Uptime: 2 * time.Minute}) // lost
	t.Log(m.String())
	require.Contains(t, m.String(), `"connection_seconds": {"buckets": {"0.001": 0, "0.005": 0, "0.01": 0, "0.05": 0, "0.1": 0, "0.5": 0, "1": 0, "5": 0, "10": 0, "30": 0, "60": 0, "300": 1`,
		"one connection was lost, after 2 minutes")
}

// ExpvarMetrics' sums do not wrap negative: in nanoseconds they did after
// 292 years of summed durations (10,000 Tethers whose connections live a
// day get there in 11 days).
func TestExpvarSumsDoNotOverflow(t *testing.T) {
	var m middleware.ExpvarMetrics
	for range 2 {
		m.ObserveConnection(&tether.Event{}, 150*365*24*time.Hour)
	}
	s := m.String()
	t.Log(s)
	require.NotContains(t, s, `"sum": -`)
}

var errHiccup = errors.New("hiccup")

type hiccupConn struct {
	net.Conn
	once bool
}

func (c *hiccupConn) Read(p []byte) (int, error) {
	if !c.once {
		c.once = true
		return 0, errHiccup
	}
	return c.Conn.Read(p)
}

// Failover counts from the address that failed (Event.Dialed): after an
// ignored error (the connection to A kept, though Failover had moved the
// address on), A's loss fails over to B, not back to A.
func TestFailoverAfterIgnore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){addrA: hold, addrB: hold})
		n.Wrap(func(c *tethertest.Conn) net.Conn {
			if c.Index() == 0 {
				return &hiccupConn{Conn: c.Client()}
			}
			return c.Client()
		})
		var mu sync.Mutex
		var evs []tether.Event
		policy := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			mu.Lock()
			defer mu.Unlock()
			evs = append(evs, *ev)
			if errors.Is(ev.Err, errHiccup) {
				return tether.Ignore
			}
			ev.Delay = 10 * time.Millisecond
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, n, addrA, tether.Chain(policy, middleware.Failover(addrA, addrB)))
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, errHiccup) // ignored: the connection to A is kept
		done := drain(tt)
		synctest.Wait()
		n.Down(addrA)
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			t.Logf("%v dialed=%s next=%s err=%v", ev.Kind, ev.Dialed, ev.Addr, ev.Err)
		}
		hist := n.History()
		t.Logf("dials: %+v", hist)
		require.Equal(t, addrB, hist[1].Addr, "the first dial after A's loss went back to A")
		tt.Close()
		<-done
	})
}
