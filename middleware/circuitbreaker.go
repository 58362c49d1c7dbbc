package middleware

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/attempt"
)

// Defaults of BreakerConfig.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerWindow   = time.Minute
	DefaultBreakerCoolDown = 30 * time.Second
)

// BreakerConfig configures a Breaker. The zero value of each field means its
// default.
type BreakerConfig struct {
	// Failures is how many failed dials to one address within Window open
	// its circuit (default DefaultBreakerFailures). A connection that dies
	// within the Tether's stability period counts as a failed dial, as it
	// does for Event.Attempt.
	Failures int
	// Window is how far back failed dials count (default
	// DefaultBreakerWindow).
	Window time.Duration
	// CoolDown is how long an open circuit stays open before it lets one
	// trial dial through (default DefaultBreakerCoolDown).
	CoolDown time.Duration
	// Stability is how long the connection of a successful trial must stay
	// up before the circuit closes (default tether.DefaultStabilityPeriod,
	// the Tethers' own default): a server that accepts and closes at once
	// fails its trials. Match it to the Tethers' WithStabilityPeriod.
	Stability time.Duration
}

// BreakerState is the state of a Breaker's circuit for one address.
type BreakerState int

const (
	// BreakerClosed lets dials through: the address is presumed healthy.
	BreakerClosed BreakerState = iota
	// BreakerOpen holds every dial back until the cool-down ends.
	BreakerOpen
	// BreakerHalfOpen lets one trial dial through, and holds the others back
	// until its outcome: a connection that stays up for the stability period
	// closes the circuit; a failed dial, or a connection that dies sooner,
	// opens it for another cool-down.
	BreakerHalfOpen
)

// String returns the lowercase name of s ("closed", "open", "half-open").
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "breaker-state(" + strconv.Itoa(int(s)) + ")"
}

// A Breaker is a set of circuit breakers, one per address, shared by every
// Tether whose chain holds CircuitBreaker(b): when many clients lose the same
// server, they stop dialing it together, and one of them probes it for all.
// Unlike the other middleware of this package, a Breaker keeps state across
// Tethers; that is its purpose.
//
// Make one with NewBreaker; a Breaker is safe for concurrent use. Circuits
// are made on the first failure to an address and forgotten once idle for
// the window.
type Breaker struct {
	cfg BreakerConfig
	err error // the configuration error, if any

	mu       sync.Mutex
	circuits map[string]*circuit
	swept    time.Time // when forget last swept circuits
}

// circuit is the state for one address. Closed: openUntil is zero. Open: now
// is before openUntil, and settle is zero. Half-open: openUntil has passed;
// probe is when the trial dial's lease ends (zero: no trial out). Settling
// (half-open too): a dial succeeded, and the circuit closes at settle
// unless a failure comes first.
type circuit struct {
	fails     []time.Time // failed dials within the window, oldest first (closed only)
	openUntil time.Time
	probe     time.Time
	settle    time.Time
	changed   chan struct{} // closed and replaced on every change of state
	waiters   int           // handlers waiting on changed
}

// NewBreaker returns a Breaker configured by c. A negative field in c does
// not panic: every CircuitBreaker(b) gives up on its first event with an
// error that wraps ErrBadConfig.
func NewBreaker(c BreakerConfig) *Breaker {
	b := &Breaker{circuits: make(map[string]*circuit)}
	switch {
	case c.Failures < 0:
		b.err = badConfig("CircuitBreaker: negative Failures")
	case c.Window < 0:
		b.err = badConfig("CircuitBreaker: negative Window")
	case c.CoolDown < 0:
		b.err = badConfig("CircuitBreaker: negative CoolDown")
	case c.Stability < 0:
		b.err = badConfig("CircuitBreaker: negative Stability")
	}
	if c.Failures == 0 {
		c.Failures = DefaultBreakerFailures
	}
	if c.Window == 0 {
		c.Window = DefaultBreakerWindow
	}
	if c.CoolDown == 0 {
		c.CoolDown = DefaultBreakerCoolDown
	}
	if c.Stability == 0 {
		c.Stability = tether.DefaultStabilityPeriod
	}
	b.cfg = c
	return b
}

// State returns the state of the circuit for addr.
func (b *Breaker) State(addr string) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.circuits[addr]
	now := time.Now()
	switch {
	case c == nil || c.settled(now) || c.openUntil.IsZero():
		return BreakerClosed
	case c.settle.IsZero() && now.Before(c.openUntil):
		return BreakerOpen
	}
	return BreakerHalfOpen
}

// CircuitBreaker returns a Middleware that stops dialing an address that
// keeps failing, for every Tether that shares b.
//
// It acts around next. It records the outcome the event reports for
// Event.Dialed: a failed dial (Unreachable, before next; Disconnected with
// Attempt above 0, after next, unless next keeps the connection with
// Ignore), or a successful one (Connected, Reconnected, before next). When
// BreakerConfig.Failures failed dials fall within BreakerConfig.Window, the
// circuit for that address opens. A successful dial to an address whose
// circuit is not closed closes it once its connection has stayed up for
// BreakerConfig.Stability; meanwhile the circuit stays half-open, and a
// failure opens it again.
//
// After next, when next decided to Reconnect on Disconnected or Unreachable
// and the circuit for Event.Addr (the address of the next dial) is not
// closed, CircuitBreaker waits in the handler: until the cool-down ends, and
// then, while the circuit is half-open, until it is this Tether's turn to
// make the trial dial, or until the trial's outcome closes the circuit. It
// then returns Reconnect with Event.Delay shortened by the time it waited.
// The wait ends at once when ctx is done (Close, or Dial's ctx); the Tether
// then stops, and takes no trial. A trial that reports no outcome within
// its delay, a cool-down and the default per-attempt timeout
// (tcp.DefaultTimeout) hands the trial to another Tether: its Tether was
// closed or gave up. (Its ctx cannot tell: a MaxDowntime outside hands
// CircuitBreaker a ctx that ends when the handler returns.)
//
// Why a wait and not a longer Event.Delay: a delay fixes the time of the next
// dial in advance, so every held Tether would dial at the end of the
// cool-down; waiting in the handler lets exactly one of them dial. An outer
// Logging thus logs after the wait. A dial that a Tether was allowed before
// the circuit opened (it is waiting its delay, or dialing) still goes out;
// from its outcome on, that Tether is held back too.
//
// Put CircuitBreaker inside MaxDowntime (which bounds its wait) and outside
// Backoff and Failover (so that it sees their delay and address). A nil or
// zero b, or one made from a bad BreakerConfig: the Middleware gives up on
// its first event with an error that wraps ErrBadConfig.
func CircuitBreaker(b *Breaker) tether.Middleware {
	switch {
	case b == nil:
		return failing(badConfig("CircuitBreaker: nil *Breaker"))
	case b.err != nil:
		return failing(b.err)
	case b.circuits == nil:
		return failing(badConfig("CircuitBreaker: zero Breaker (make one with NewBreaker)"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			dialed := ev.Dialed
			flap := ev.Kind == tether.Disconnected && ev.Attempt > 0 && !errors.Is(ev.Err, tether.ErrForcedReconnect)
			switch ev.Kind {
			case tether.Unreachable:
				b.fail(dialed)
			case tether.Connected, tether.Reconnected:
				b.succeed(dialed)
			}
			a := next.HandleDisconnect(ctx, ev)
			if flap && a != tether.Ignore { // Ignore keeps the connection: it did not fail
				b.fail(dialed)
			}
			if a == tether.Reconnect && outage(ev) {
				b.wait(ctx, ev)
			}
			return a
		})
	}
}

// fail records a failed dial to addr.
func (b *Breaker) fail(addr string) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.circuits[addr]
	if c == nil {
		c = &circuit{changed: make(chan struct{})}
		b.circuits[addr] = c
	}
	c.settled(now)
	switch {
	case !c.settle.IsZero():
		// Settling: the connection that succeeded died young, or
		// another dial failed.
		c.open(now, b.cfg.CoolDown)
	case !c.openUntil.IsZero() && now.Before(c.openUntil):
		// Open: a dial that began before the circuit opened.
	case !c.openUntil.IsZero():
		// Half-open: the trial (or a dial like it) failed.
		c.open(now, b.cfg.CoolDown)
	default:
		c.fails = append(c.prune(now, b.cfg.Window), now)
		if len(c.fails) >= b.cfg.Failures {
			c.open(now, b.cfg.CoolDown)
		}
	}
	b.forget("", nil, now)
}

// succeed records a successful dial to addr.
func (b *Breaker) succeed(addr string) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.circuits[addr]
	if c == nil {
		return
	}
	if !c.settled(now) && !c.openUntil.IsZero() && c.settle.IsZero() {
		// Not closed yet: the connection must stay up for the stability
		// period (a server that accepts and closes at once would close the
		// circuit with every trial), while the others wait.
		c.settle = now.Add(b.cfg.Stability)
		c.probe = c.settle
		c.notify()
	}
	// Failures within the window still count: a success does not reset a
	// closed circuit, so a server that fails most dials still trips it.
	b.forget(addr, c, now)
}

// forget deletes c, the circuit for addr, if it is idle: nobody waits on it,
// it has no failure within the window, and it is closed, or half-open for a
// window without a trial out (nobody dials that address any more). Every
// window, it sweeps the other circuits too, so that a Breaker's memory is
// bounded by the addresses that failed recently.
func (b *Breaker) forget(addr string, c *circuit, now time.Time) {
	idle := func(c *circuit) bool {
		c.settled(now)
		c.fails = c.prune(now, b.cfg.Window)
		if c.waiters > 0 || len(c.fails) > 0 {
			return false
		}
		return c.openUntil.IsZero() ||
			now.Sub(c.openUntil) >= b.cfg.Window && (c.probe.IsZero() || !now.Before(c.probe))
	}
	if c != nil && b.circuits[addr] == c && idle(c) {
		delete(b.circuits, addr)
	}
	if now.Sub(b.swept) < b.cfg.Window {
		return
	}
	b.swept = now
	for a, c := range b.circuits {
		if idle(c) {
			delete(b.circuits, a)
		}
	}
}

func (c *circuit) open(now time.Time, coolDown time.Duration) {
	c.openUntil, c.probe, c.settle, c.fails = now.Add(coolDown), time.Time{}, time.Time{}, nil
	c.notify()
}

// settled closes c if its successful connection has stayed up for the
// stability period, and reports whether it did.
func (c *circuit) settled(now time.Time) bool {
	if c.settle.IsZero() || now.Before(c.settle) {
		return false
	}
	c.openUntil, c.probe, c.settle, c.fails = time.Time{}, time.Time{}, time.Time{}, nil
	c.notify()
	return true
}

func (c *circuit) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// prune drops the failures older than the window.
func (c *circuit) prune(now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(c.fails) && now.Sub(c.fails[i]) >= window {
		i++
	}
	return append(c.fails[:0], c.fails[i:]...)
}

// trialDial is what a trial's lease allows for its dial, beyond its delay
// and a cool-down: the default per-attempt timeout of this module's
// dialers, so that a slow dial (to a server that does not answer) is not
// taken for a trial that will report nothing.
const trialDial = attempt.DefaultTimeout

// wait holds the caller back while the circuit for ev.Addr does not let it
// dial, and takes the time waited off ev.Delay.
func (b *Breaker) wait(ctx context.Context, ev *tether.Event) {
	start := time.Now()
	b.mu.Lock()
loop:
	for {
		c := b.circuits[ev.Addr]
		now := time.Now()
		if c == nil || c.settled(now) || c.openUntil.IsZero() {
			break // closed
		}
		until := c.openUntil
		switch {
		case !c.settle.IsZero():
			until = c.settle // a connection is settling: wait for the outcome
		case !now.Before(until):
			// Half-open: take the trial unless another Tether holds it,
			// or this one stops (it would never dial).
			if c.probe.IsZero() || !now.Before(c.probe) {
				if ctx.Err() == nil {
					left := max(ev.Delay-now.Sub(start), 0)
					c.probe = now.Add(left + b.cfg.CoolDown + trialDial)
				}
				break loop
			}
			until = c.probe
		}
		ch := c.changed
		c.waiters++
		b.mu.Unlock()
		timer := time.NewTimer(until.Sub(now))
		select {
		case <-timer.C:
		case <-ch:
		case <-ctx.Done():
		}
		timer.Stop()
		b.mu.Lock()
		c.waiters--
		b.forget(ev.Addr, c, time.Now())
		if ctx.Err() != nil {
			break
		}
	}
	b.mu.Unlock()
	ev.Delay = max(ev.Delay-time.Since(start), 0)
}
