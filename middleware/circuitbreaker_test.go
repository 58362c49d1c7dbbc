package middleware_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// failedDial is an Unreachable event for a dial to dialed whose next dial
// goes to next.
func failedDial(dialed, next string) tether.Event {
	return tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: next, Dialed: dialed, Attempt: 1}
}

// handleTimed calls h on ev in a goroutine of its own, and sends how long
// the call took.
func handleTimed(h tether.DisconnectHandler, ev tether.Event) <-chan time.Duration {
	took := make(chan time.Duration, 1)
	go func() {
		begin := time.Now()
		handle(h, ev)
		took <- time.Since(begin)
	}()
	return took
}

func TestBreakerStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3, Window: 10 * time.Second, CoolDown: 30 * time.Second})
		h := middleware.CircuitBreaker(b)(reconnect)
		// The failures are at A; the next dials go to B, whose circuit is
		// closed, so no call waits.
		for i := range 3 {
			require.Equal(t, middleware.BreakerClosed, b.State(addrA), "after %d failures", i)
			a, _ := handle(h, failedDial(addrA, addrB))
			require.Equal(t, tether.Reconnect, a)
		}
		require.Equal(t, middleware.BreakerOpen, b.State(addrA), "after 3 failures within the window")
		require.Equal(t, middleware.BreakerClosed, b.State(addrB))
		time.Sleep(30 * time.Second)
		require.Equal(t, middleware.BreakerHalfOpen, b.State(addrA), "after the cool-down")
		handle(h, failedDial(addrA, addrB))
		require.Equal(t, middleware.BreakerOpen, b.State(addrA), "a failure when half-open opens again")
		time.Sleep(30 * time.Second)
		handle(h, tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, Attempt: 5})
		require.Equal(t, middleware.BreakerHalfOpen, b.State(addrA), "a success when half-open: the connection settles")
		time.Sleep(time.Second)
		require.Equal(t, middleware.BreakerClosed, b.State(addrA), "closed once it stayed up for the stability period")

		// A connection that dies before it has settled opens the circuit again.
		for range 3 {
			handle(h, failedDial(addrA, addrB))
		}
		time.Sleep(30 * time.Second)
		handle(h, tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, Attempt: 3})
		time.Sleep(time.Second - time.Nanosecond)
		handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrB, Dialed: addrA, Attempt: 4})
		require.Equal(t, middleware.BreakerOpen, b.State(addrA), "a flap while settling opens again")
	})
}

func TestBreakerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3, Window: 10 * time.Second})
		h := middleware.CircuitBreaker(b)(reconnect)
		for _, at := range []time.Duration{0, 6 * time.Second, 6 * time.Second} { // failures at 0 s, 6 s, 12 s
			time.Sleep(at)
			handle(h, failedDial(addrA, addrB))
		}
		require.Equal(t, middleware.BreakerClosed, b.State(addrA), "the first failure left the window")
		time.Sleep(2 * time.Second)
		handle(h, failedDial(addrA, addrB)) // 6 s, 12 s, 14 s
		require.Equal(t, middleware.BreakerOpen, b.State(addrA))
	})
}

func TestBreakerCountsFlaps(t *testing.T) {
	b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 2})
	h := middleware.CircuitBreaker(b)(reconnect)
	stable := tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrB, Dialed: addrA, Attempt: 0}
	flap := tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrB, Dialed: addrA, Attempt: 1}
	handle(h, stable)
	handle(h, stable)
	require.Equal(t, middleware.BreakerClosed, b.State(addrA), "the loss of a stable connection is not a failed dial")
	handle(h, flap)
	handle(h, flap)
	require.Equal(t, middleware.BreakerOpen, b.State(addrA), "a connection that died at once is a failed dial")
}

// TestBreakerHoldsBack: an event whose next dial goes to an open circuit
// waits in the handler until the cool-down ends, then takes the trial; a
// second one waits for the trial's outcome.
func TestBreakerHoldsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 1, CoolDown: 30 * time.Second})
		h := middleware.CircuitBreaker(b)(tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			ev.Delay = 5 * time.Second // as an inner Backoff does
			return tether.Reconnect
		}))
		start := time.Now()
		a, ev := handle(h, failedDial(addrA, addrA))
		require.Equal(t, tether.Reconnect, a)
		require.Equal(t, 30*time.Second, time.Since(start), "held back for the cool-down")
		require.Zero(t, ev.Delay, "the wait counts toward the delay")
		require.Equal(t, middleware.BreakerHalfOpen, b.State(addrA))

		// The trial is out: another Tether's event waits for its outcome.
		second := handleTimed(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Empty(t, second, "the second Tether dials only after the trial")
		handle(h, tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, Attempt: 1})
		require.Equal(t, 11*time.Second, <-second, "the trial's connection, up for the stability period, releases the second Tether")
		require.Equal(t, middleware.BreakerClosed, b.State(addrA))
	})
}

// TestBreakerSharedByTethers: five Tethers lose the same server. Three
// failed dials open its circuit; no Tether dials during a cool-down; one
// trial dial goes out at the end of each; when the server is back, the
// trial succeeds, and once its connection has stayed up for the stability
// period every other Tether reconnects at once.
func TestBreakerSharedByTethers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const tethers = 5
		const coolDown = 30 * time.Second
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3, Window: time.Minute, CoolDown: coolDown})
		h := tether.Chain(nil, middleware.CircuitBreaker(b), middleware.Backoff(middleware.BackoffConfig{BaseDelay: time.Second, Multiplier: 1}))
		n := servers(t, map[string]func(net.Conn){addrA: hold})
		var ts []*tether.Tether
		var drains []<-chan struct{}
		for range tethers {
			tn := tethertest.Dial(t, n, addrA, h)
			ts = append(ts, tn)
			drains = append(drains, drain(tn))
		}
		time.Sleep(10 * time.Second)
		lost := time.Now()
		n.Down(addrA)
		// The first redials wait at most 200 ms, the second ones 1.2 s.
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Equal(t, middleware.BreakerOpen, b.State(addrA))
		failed := n.History()[tethers:]
		opened := failed[2].At // the third failure
		// Each Tether redialed once; those whose failure came before the
		// circuit opened had already decided on their second dial.
		held := dialsTo(n, addrA, lost)
		require.Equal(t, tethers+2, held, "the dials decided before the circuit opened")

		// The first cool-down: no dial, then one trial, which fails.
		time.Sleep(opened.Add(coolDown).Sub(time.Now()) - time.Nanosecond)
		require.Equal(t, held, dialsTo(n, addrA, lost), "no dial during the cool-down")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Equal(t, held+1, dialsTo(n, addrA, lost), "one trial dial at the end of the cool-down")
		require.Equal(t, middleware.BreakerOpen, b.State(addrA), "the trial failed")

		// The server comes back during the second cool-down: the trial at
		// its end succeeds and releases the others.
		n.Up(addrA)
		time.Sleep(coolDown - time.Nanosecond)
		require.Equal(t, held+1, dialsTo(n, addrA, lost), "no dial during the second cool-down")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Equal(t, middleware.BreakerHalfOpen, b.State(addrA), "the trial's connection settles")
		require.Equal(t, held+2, dialsTo(n, addrA, lost), "the trial alone")
		time.Sleep(time.Second) // the stability period
		synctest.Wait()
		require.Equal(t, middleware.BreakerClosed, b.State(addrA))
		require.Equal(t, held+1+tethers, dialsTo(n, addrA, lost), "the trial and then every other Tether")
		for i, d := range n.History()[tethers+held+1:] {
			require.NoError(t, d.Err)
			want := opened.Add(2 * coolDown)
			if i > 0 {
				want = want.Add(time.Second)
			}
			require.Equal(t, want, d.At)
		}
		for i, tn := range ts {
			require.NoError(t, tn.Close())
			<-drains[i]
		}
	})
}

// TestBreakerFlappingServer: a server that accepts and closes at once fails
// every trial, as its connections die young: five Tethers that share the
// Breaker make one trial dial a cool-down. (Each trial's Reconnected closed
// the circuit before its connection died, and released the five: about 500
// dials in the ten cool-downs.)
func TestBreakerFlappingServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){addrA: hold})
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3, CoolDown: 10 * time.Second, Window: time.Minute})
		h := tether.Chain(nil, middleware.CircuitBreaker(b),
			middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}))
		for range 5 {
			drain(tethertest.Dial(t, n, addrA, h))
		}
		time.Sleep(2 * time.Second) // stable
		// From now on the server accepts and closes at once.
		n.Wrap(func(c *tethertest.Conn) net.Conn { c.Close(); return c.Client() })
		for _, c := range n.Conns() {
			c.Close()
		}
		for b.State(addrA) != middleware.BreakerOpen {
			time.Sleep(10 * time.Millisecond)
		}
		start := time.Now()
		time.Sleep(100 * time.Second)
		// One trial a cool-down, and at most one dial each Tether had
		// decided before the circuit opened (11 to 13 dials in 100 runs).
		require.LessOrEqual(t, dialsTo(n, addrA, start), 10+5, "one trial a cool-down, in ten cool-downs")
		require.Equal(t, middleware.BreakerOpen, b.State(addrA))
	})
}

// TestBreakerCloseDuringWait: Close interrupts a Tether held back by an open
// circuit at once, and no dial follows.
func TestBreakerCloseDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 1, CoolDown: time.Hour})
		tn, n, lost, read := loseServer(t, tether.Chain(nil, middleware.CircuitBreaker(b)), 10*time.Second)
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Equal(t, middleware.BreakerOpen, b.State(addrA))
		require.Equal(t, 1, dialsTo(n, addrA, lost))

		closeAtOnce(t, tn, read)
		time.Sleep(2 * time.Hour)
		require.Equal(t, 1, dialsTo(n, addrA, lost), "no dial after Close")
	})
}

func TestBreakerForgetsIdleCircuits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 100, Window: time.Minute})
		h := middleware.CircuitBreaker(b)(reconnect)
		for i := range 1000 {
			handle(h, failedDial("127.0.0.1:"+strconv.Itoa(20000+i), addrB))
		}
		require.Equal(t, 1000, middleware.Circuits(b))
		time.Sleep(2 * time.Minute)
		handle(h, failedDial(addrA, addrB))
		require.Equal(t, 1, middleware.Circuits(b), "circuits idle for a window are forgotten")

		// An open circuit that nobody dials again is forgotten a window
		// after its cool-down.
		o := middleware.NewBreaker(middleware.BreakerConfig{Failures: 1, Window: time.Minute, CoolDown: 30 * time.Second})
		h = middleware.CircuitBreaker(o)(reconnect)
		handle(h, failedDial(addrA, addrB))
		require.Equal(t, middleware.BreakerOpen, o.State(addrA))
		time.Sleep(30*time.Second + time.Minute)
		handle(h, tether.Event{Kind: tether.Reconnected, Addr: addrB, Dialed: addrB})
		handle(h, failedDial(addrC, addrB))
		require.Equal(t, 1, middleware.Circuits(o), "only the circuit of the new failure is left")
		require.Equal(t, middleware.BreakerClosed, o.State(addrA))
	})
}

func TestBreakerStateString(t *testing.T) {
	for s, want := range map[middleware.BreakerState]string{
		middleware.BreakerClosed: "closed", middleware.BreakerOpen: "open", middleware.BreakerHalfOpen: "half-open",
		middleware.BreakerState(7): "breaker-state(7)",
	} {
		require.Equal(t, want, s.String())
	}
}

// A forced Reconnect() is no failed dial: CircuitBreaker does not count
// it, even when the connection it drops came after failed dials.
func TestBreakerIgnoresForcedReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){addrA: hold})
		n.FailNext(2, nil) // two failed dials, then a connection
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3})
		rec := &tethertest.Recorder{Next: reconnect}
		tt := tethertest.Dial(t, n, addrA, tether.Chain(rec, middleware.CircuitBreaker(b)))
		done := drain(tt)
		synctest.Wait()
		tt.Reconnect() // the user's choice: "does not count as a failed attempt"
		time.Sleep(5 * time.Second)
		require.Equal(t, middleware.BreakerClosed, b.State(addrA),
			"two failed dials and a successful one, then a forced reconnect, opened the circuit: %v", rec)
		require.Equal(t, tether.Ready, tt.State())
		tt.Close()
		<-done
	})
}

// A loss that the handler inside keeps (Ignore) is no failed dial: three
// ignored idle timeouts leave the circuit closed (they opened it, on an
// address whose connection was up).
func TestBreakerIgnoredLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3})
		keepIdle := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			if errors.Is(ev.Err, tether.ErrIdleTimeout) {
				return tether.Ignore
			}
			return tether.Reconnect
		})
		tn := tethertest.Dial(t, d, addrA, tether.Chain(keepIdle, middleware.CircuitBreaker(b)),
			tether.WithReadIdleTimeout(100*time.Millisecond))
		d.Server(t)
		for range 3 {
			_, err := tn.Read(make([]byte, 1))
			require.ErrorIs(t, err, tether.ErrIdleTimeout)
		}
		require.Equal(t, tether.Ready, tn.State())
		require.Equal(t, middleware.BreakerClosed, b.State(addrA))
	})
}

// A trial dial slower than the cool-down (to a server that does not
// answer, bounded by a 10 s per-attempt timeout) still holds the others
// back until its outcome: one trial at a time. The chain is the recommended
// one: MaxDowntime outside, which hands the breaker a ctx that ends as it
// returns.
func TestBreakerSlowTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const coolDown = 2 * time.Second
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 1, CoolDown: coolDown, Window: time.Minute})
		h := tether.Chain(nil, middleware.MaxDowntime(time.Hour), middleware.CircuitBreaker(b),
			middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Multiplier: 1}))
		n := servers(t, map[string]func(net.Conn){addrA: hold})
		d := dialers.Timeout(n, 10*time.Second)
		var ts []*tether.Tether
		for range 3 {
			tn := tethertest.Dial(t, d, addrA, h)
			ts = append(ts, tn)
			drain(tn)
		}
		time.Sleep(5 * time.Second) // stable
		n.Down(addrA)
		for b.State(addrA) != middleware.BreakerOpen {
			time.Sleep(time.Millisecond)
		}
		opened := time.Now()
		time.Sleep(time.Second) // every Tether's redial was refused, or held back
		synctest.Wait()
		n.Hold() // dials now hang until their timeout
		time.Sleep(coolDown + 8*time.Second)
		synctest.Wait()
		var trials []time.Duration
		for _, r := range n.History() {
			if r.Addr == addrA && r.At.After(opened.Add(time.Second)) {
				trials = append(trials, r.At.Sub(opened))
			}
		}
		require.Len(t, trials, 1, "trial dials (since the circuit opened) while the first was out")
		for _, tn := range ts {
			tn.Close()
		}
		n.Release()
	})
}

// A Tether that stops (its ctx is done) takes no trial: the others are not
// held back for a trial that will report nothing.
func TestBreakerStoppedTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const coolDown = 10 * time.Second
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 1, CoolDown: coolDown})
		h := middleware.CircuitBreaker(b)(reconnect)
		handle(h, failedDial(addrA, addrB)) // opens A's circuit
		time.Sleep(coolDown)
		require.Equal(t, middleware.BreakerHalfOpen, b.State(addrA))

		stopped, cancel := context.WithCancel(context.Background())
		cancel()
		ev := failedDial(addrC, addrA)
		h.HandleDisconnect(stopped, &ev)
		start := time.Now()
		handle(h, failedDial(addrC, addrA))
		require.Zero(t, time.Since(start), "held back by the trial of a Tether that had stopped")
	})
}

// The trial's lease holds while its Tether dials, whatever ctx the breaker
// was handed: under MaxDowntime it ends as the handler returns.
func TestBreakerTrialUnderMaxDowntime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const coolDown = 10 * time.Second
		b := middleware.NewBreaker(middleware.BreakerConfig{Failures: 1, CoolDown: coolDown})
		h := tether.Chain(reconnect, middleware.MaxDowntime(time.Hour), middleware.CircuitBreaker(b))
		since := func(ev tether.Event) tether.Event { ev.Since = time.Now(); return ev }
		handle(h, since(failedDial(addrA, addrB))) // opens A
		time.Sleep(coolDown)
		handle(h, since(failedDial(addrC, addrA))) // takes the trial
		second := handleTimed(h, since(failedDial(addrC, addrA)))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Empty(t, second, "a second trial while the first is out")
		handle(h, tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, Attempt: 1})
		require.Equal(t, 6*time.Second, <-second, "released when the trial's connection has settled")
	})
}
