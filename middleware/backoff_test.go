package middleware_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// nominal is the delay before jitter after attempt failed dials, computed
// here independently of internal/backoff.
func nominal(c middleware.BackoffConfig, attempt int) time.Duration {
	d := float64(c.BaseDelay) * math.Pow(c.Multiplier, float64(attempt-1))
	return time.Duration(min(d, float64(c.MaxDelay)))
}

// jittered returns the bounds of a delay d spread by ±jitter, with a
// nanosecond of slack for rounding.
func jittered(d time.Duration, jitter float64) (lo, hi time.Duration) {
	return time.Duration(float64(d)*(1-jitter)) - 1, time.Duration(float64(d)*(1+jitter)) + 1
}

func TestBackoffDelaysGrowAndCap(t *testing.T) {
	c := middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Multiplier: 2, Jitter: 0.1}
	h := tether.Chain(reconnect, middleware.Backoff(c))
	wantNominal := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}
	for i, want := range wantNominal {
		attempt := i + 1
		want *= time.Millisecond
		require.Equal(t, want, nominal(c, attempt), "nominal(%d)", attempt)
		lo, hi := jittered(want, c.Jitter)
		for range 200 {
			a, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: attempt})
			require.Equal(t, tether.Reconnect, a)
			require.True(t, ev.Delay >= lo && ev.Delay <= hi, "attempt %d: Delay = %v, want within [%v, %v]", attempt, ev.Delay, lo, hi)
		}
	}
	// The first redial after a stable connection: within [0, Jitter×BaseDelay].
	for range 200 {
		_, ev := handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Attempt: 0})
		require.True(t, ev.Delay >= 0 && ev.Delay <= 10*time.Millisecond, "attempt 0: Delay = %v, want within [0, 10ms]", ev.Delay)
	}
}

func TestBackoffJitterStatistics(t *testing.T) {
	c := middleware.BackoffConfig{BaseDelay: time.Second, MaxDelay: time.Minute, Multiplier: 1.6, Jitter: 0.5}
	h := tether.Chain(reconnect, middleware.Backoff(c))
	const draws = 20000
	n := nominal(c, 3) // 2.56 s
	lo, hi := jittered(n, c.Jitter)
	width := float64(hi - lo)
	var sum float64
	var quartiles [4]int
	minD, maxD := time.Duration(math.MaxInt64), time.Duration(0)
	for range draws {
		_, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 3})
		require.True(t, ev.Delay >= lo && ev.Delay <= hi, "Delay = %v, want within [%v, %v]", ev.Delay, lo, hi)
		sum += float64(ev.Delay)
		quartiles[min(int(float64(ev.Delay-lo)/width*4), 3)]++
		minD, maxD = min(minD, ev.Delay), max(maxD, ev.Delay)
	}
	// The mean is within 1 % of the nominal delay (5 standard errors).
	mean := sum / draws
	require.InDelta(t, float64(n), mean, 0.01*float64(n), "mean delay = %v, want %v", time.Duration(mean), n)
	// Each quarter of the range gets a quarter of the draws, ±2 % (6 sigma).
	for i, k := range quartiles {
		require.InDelta(t, 0.25, float64(k)/draws, 0.02, "quarter %d of [%v, %v] got %d of %d draws", i, lo, hi, k, draws)
	}
	// The draws reach both ends of the range.
	require.Less(t, float64(minD-lo), 0.01*width, "smallest delay %v, want near %v", minD, lo)
	require.Less(t, float64(hi-maxD), 0.01*width, "largest delay %v, want near %v", maxD, hi)
}

func TestBackoffDefaults(t *testing.T) {
	h := tether.Chain(reconnect, middleware.Backoff(middleware.BackoffConfig{}))
	tests := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 0, 200 * time.Millisecond},
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, 1280 * time.Millisecond, 1920 * time.Millisecond},
		{100, 96 * time.Second, 144 * time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			_, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: tt.attempt})
			require.True(t, ev.Delay >= tt.lo && ev.Delay <= tt.hi, "attempt %d: Delay = %v, want within [%v, %v]", tt.attempt, ev.Delay, tt.lo, tt.hi)
		}
	}
}

func TestBackoffActsOnlyOnReconnect(t *testing.T) {
	c := middleware.BackoffConfig{BaseDelay: time.Second, MaxDelay: time.Minute, Multiplier: 2, Jitter: 0.1}
	setHour := func(ev *tether.Event) { ev.Delay = time.Hour }
	tests := []struct {
		name      string
		kind      tether.EventKind
		next      tether.Action
		change    func(*tether.Event)
		want      tether.Action
		lo, hi    time.Duration
		wantEvent bool // next saw the event
	}{
		{"disconnected, reconnect", tether.Disconnected, tether.Reconnect, nil, tether.Reconnect, 3600 * time.Millisecond, 4400 * time.Millisecond, true},
		{"unreachable, reconnect", tether.Unreachable, tether.Reconnect, nil, tether.Reconnect, 3600 * time.Millisecond, 4400 * time.Millisecond, true},
		{"next's delay is replaced", tether.Unreachable, tether.Reconnect, setHour, tether.Reconnect, 3600 * time.Millisecond, 4400 * time.Millisecond, true},
		{"give-up is not delayed", tether.Unreachable, tether.GiveUp, nil, tether.GiveUp, 0, 0, true},
		{"ignore is not delayed", tether.Disconnected, tether.Ignore, nil, tether.Ignore, 0, 0, true},
		{"connected", tether.Connected, tether.Reconnect, nil, tether.Reconnect, 0, 0, true},
		{"reconnected", tether.Reconnected, tether.Reconnect, nil, tether.Reconnect, 0, 0, true},
		{"rejected", tether.Reconnected, tether.GiveUp, nil, tether.GiveUp, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := answer(tt.next, tt.change)
			h := middleware.Backoff(c)(n)
			ev := tether.Event{Kind: tt.kind, Addr: addrA, Attempt: 3}
			if tt.kind == tether.Disconnected || tt.kind == tether.Unreachable {
				ev.Err = errRefused
			}
			a, got := handle(h, ev)
			require.Equal(t, tt.want, a, "HandleDisconnect(%v) = %v, want %v", tt.kind, a, tt.want)
			require.True(t, got.Delay >= tt.lo && got.Delay <= tt.hi, "Delay = %v, want within [%v, %v]", got.Delay, tt.lo, tt.hi)
			require.Len(t, n.Events(), 1, "next saw %d events, want 1", len(n.Events()))
		})
	}
}

func TestBackoffMaxAttempts(t *testing.T) {
	h := tether.Chain(reconnect, middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 3}))
	for attempt := range 6 {
		kind := tether.Unreachable
		if attempt == 0 {
			kind = tether.Disconnected
		}
		a, ev := handle(h, tether.Event{Kind: kind, Err: errRefused, Addr: addrA, Attempt: attempt})
		if attempt < 3 {
			require.Equal(t, tether.Reconnect, a, "attempt %d: HandleDisconnect = %v, want reconnect", attempt, a)
			continue
		}
		require.Equal(t, tether.GiveUp, a, "attempt %d: HandleDisconnect = %v, want give-up", attempt, a)
		require.Zero(t, ev.Delay, "a give-up is not delayed")
		require.ErrorIs(t, ev.Err, middleware.ErrMaxAttempts)
		require.ErrorIs(t, ev.Err, errRefused, "the cause keeps the dial error")
		require.True(t, strings.HasPrefix(ev.Err.Error(), "tether/middleware: "), "Err = %q", ev.Err)
	}
}

// TestBackoffTetherDelays dials a dead address: the dials inside Dial are
// spaced by the backoff (replacing the default policy's), and Dial gives up
// right after MaxAttempts failed dials.
func TestBackoffTetherDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.1, MaxAttempts: 8}
		n := servers(t, nil)
		start := time.Now()
		_, err := tether.Dial(context.Background(), n, addrA, tether.Chain(nil, middleware.Backoff(c)))
		require.ErrorIs(t, err, middleware.ErrMaxAttempts)
		require.ErrorIs(t, err, errRefused)
		dials := n.History()
		require.Len(t, dials, 8, "Dial made %d dials, want MaxAttempts = 8", len(dials))
		require.Equal(t, start, dials[0].At, "the first dial is at once")
		for i := 1; i < len(dials); i++ {
			lo, hi := jittered(nominal(c, i), c.Jitter)
			gap := dials[i].At.Sub(dials[i-1].At)
			require.True(t, gap >= lo && gap <= hi, "gap before dial %d = %v, want within [%v, %v]", i+1, gap, lo, hi)
		}
		require.Equal(t, dials[7].At, time.Now(), "Dial gave up right after the last failed dial")
	})
}

// TestBackoffGivesUpOnReconnect loses a stable connection to a server that
// is gone: three failed redials, then the Tether gives up.
func TestBackoffGivesUpOnReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := middleware.BackoffConfig{BaseDelay: time.Second, MaxAttempts: 3}
		tt, n, lost, read := loseServer(t, tether.Chain(nil, middleware.Backoff(c)), 5*time.Second)
		err := <-read
		require.ErrorIs(t, err, tether.ErrGaveUp)
		require.ErrorIs(t, err, middleware.ErrMaxAttempts)
		require.Equal(t, 3, dialsTo(n, addrA, lost), "failed redials before the give-up")
		// Attempt 0 waits at most 200 ms, then 1 s and 1.6 s, ±20 %.
		require.LessOrEqual(t, time.Since(lost), 200*time.Millisecond+1200*time.Millisecond+1920*time.Millisecond)
		require.GreaterOrEqual(t, time.Since(lost), 800*time.Millisecond+1280*time.Millisecond)
		select {
		case <-tt.Done():
		default:
			t.Fatal("Done is not closed after the give-up")
		}
		require.ErrorIs(t, tt.Err(), middleware.ErrMaxAttempts)
	})
}

// TestBackoffFlapDamping: a server that accepts and closes at once makes
// the attempt count, and the delay with it, grow.
func TestBackoffFlapDamping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Multiplier: 2, Jitter: 0.1}
		n := servers(t, map[string]func(net.Conn){addrA: func(net.Conn) {}}) // accept, close
		tt := tethertest.Dial(t, n, addrA, tether.Chain(reconnect, middleware.Backoff(c)))
		done := drain(tt)
		time.Sleep(10 * time.Second)
		dials := n.History()
		// 100+200+400+800+1600+3200 ms = 6.3 s, and the next gap is 6.4 s:
		// 7 dials in 10 s, where no damping would make 10 s / 100 ms.
		require.Len(t, dials, 7)
		for i := 1; i < len(dials); i++ {
			lo, hi := jittered(nominal(c, i), c.Jitter)
			gap := dials[i].At.Sub(dials[i-1].At)
			require.True(t, gap >= lo && gap <= hi, "gap before dial %d = %v, want within [%v, %v]", i+1, gap, lo, hi)
		}
		require.NoError(t, tt.Close())
		<-done
	})
}

// TestBackoffCloseDuringWait closes a Tether that waits an hour-long backoff:
// Close, and the blocked Read, return at once, and no dial follows.
func TestBackoffCloseDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := middleware.BackoffConfig{BaseDelay: time.Hour, MaxDelay: 10 * time.Hour}
		tt, n, lost, read := loseServer(t, tether.Chain(reconnect, middleware.Backoff(c)), 5*time.Second)
		// Attempt 0 waits at most 12 min; the next wait is about an hour.
		time.Sleep(13 * time.Minute)
		synctest.Wait()
		require.Equal(t, 1, dialsTo(n, addrA, lost), "one failed redial, then the hour-long wait")

		closeAtOnce(t, tt, read)
		require.ErrorIs(t, tt.Err(), net.ErrClosed)
		time.Sleep(3 * time.Hour)
		require.Equal(t, 1, dialsTo(n, addrA, lost), "no dial after Close")
	})
}

func TestBackoffBadConfigNeverPanics(t *testing.T) {
	for _, c := range []middleware.BackoffConfig{
		{BaseDelay: -1}, {MaxDelay: -1}, {Multiplier: 0.5}, {Multiplier: -2}, {Multiplier: math.NaN()},
		{Jitter: 1.5}, {Jitter: -0.1}, {Jitter: math.NaN()}, {MaxAttempts: -1},
		{BaseDelay: 2 * time.Second, MaxDelay: time.Second},
	} {
		a, ev := handle(tether.Chain(reconnect, middleware.Backoff(c)), tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 1})
		require.Equal(t, tether.GiveUp, a, "Backoff(%+v) = %v, want give-up", c, a)
		require.ErrorIs(t, ev.Err, middleware.ErrBadConfig, "Backoff(%+v)", c)
		require.False(t, errors.Is(ev.Err, errRefused))
	}
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
