package tethertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/io-tether/tether"
)

// A MiddlewareOption adjusts CheckMiddleware and TestMiddleware.
type MiddlewareOption func(*middlewareCheck)

// WithSharedState declares that the middleware keeps state across the
// Tethers it serves on purpose, as a circuit breaker does: the check that a
// middleware keeps no per-Tether state is skipped.
func WithSharedState() MiddlewareOption {
	return func(c *middlewareCheck) { c.shared = true }
}

// WithCallTimeout sets how long the checks wait for one call of the
// middleware's handler to return (default DefaultCallTimeout).
func WithCallTimeout(d time.Duration) MiddlewareOption {
	return func(c *middlewareCheck) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// DefaultCallTimeout is how long the checks wait for one call of the
// middleware's handler to return, unless WithCallTimeout says otherwise.
const DefaultCallTimeout = 5 * time.Second

// middlewareCheck is one run of the rules over a middleware.
type middlewareCheck struct {
	mw      tether.Middleware
	shared  bool
	timeout time.Duration
	port    atomic.Int64 // for fresh addresses
}

// A middlewareRule is one rule of the conformance check.
type middlewareRule struct {
	name  string
	check func(c *middlewareCheck) error
}

const statelessRule = "keeps no per-Tether state"

// middlewareRules are the rules every tether.Middleware keeps, in the order
// they are checked.
var middlewareRules = []middlewareRule{
	{"returns a handler", (*middlewareCheck).checkHandler},
	{"passes informational events through", (*middlewareCheck).checkInformational},
	{"calls next unless it decides", (*middlewareCheck).checkCallsNext},
	{"keeps a give-up from next", (*middlewareCheck).checkKeepsGiveUp},
	{"changes only Addr, Delay and Err", (*middlewareCheck).checkReadOnly},
	{"returns when ctx is done", (*middlewareCheck).checkCtxDone},
	{statelessRule, (*middlewareCheck).checkStateless},
	{"is safe for concurrent use", (*middlewareCheck).checkConcurrent},
}

// CheckMiddleware runs mw through the rules that every [tether.Middleware]
// must keep, and returns an error that joins one error per broken rule, or
// nil. It is to middleware what testing/slogtest is to slog handlers. The
// rules, each checked on events of every kind with transient errors:
//
//   - returns a handler: mw(next) is not nil.
//   - passes informational events through: on Connected and Reconnected,
//     the handler calls next once, with the event unchanged, and returns
//     next's action (an acceptance or a rejection).
//   - calls next unless it decides: on Disconnected and Unreachable, it
//     calls next at most once, and when it does not, it returns GiveUp or
//     Ignore, not Reconnect; a GiveUp comes with Event.Err set.
//   - keeps a give-up from next: when next gives up, the handler gives up,
//     and its Event.Err still wraps next's (errors.Is).
//   - changes only Addr, Delay and Err: every other field of the event is
//     the same for next and after the call, and Delay is not negative.
//   - returns when ctx is done: the handler returns within the call timeout
//     when ctx is done before the call, or during it.
//   - keeps no per-Tether state: after the events of one Tether (many failed
//     dials, long outages), the handler decides about another Tether's
//     events as it did before, each of those asked right after that Tether
//     reconnected (same action, address, and delays no more than twice the
//     largest seen before, nor all above it). Skipped [WithSharedState].
//   - is safe for concurrent use: many goroutines call the handler at once
//     without a panic (run the test with -race to catch data races).
//
// Every call must return within the call timeout ([WithCallTimeout]); a
// call that does not is reported and left running. The events name a fresh
// address for each dial, so that no policy that waits on an address (a
// circuit breaker) trips. A middleware that shares state across Tethers
// (declared [WithSharedState]) should be made fresh for the check, and a
// middleware must not log or send to a place that blocks.
//
// CheckMiddleware may run inside a testing/synctest bubble when mw was made
// inside it; then its timeouts take no real time. A handler that blocks for
// good, ignoring ctx (on a channel that nothing will send to), cannot be
// checked there: the call left running stays blocked in the bubble, and
// synctest.Test panics when the bubble ends. Check such a middleware
// outside a bubble, where the hung call is reported and its goroutine is
// left blocked until whatever it waits for happens.
func CheckMiddleware(mw tether.Middleware, opts ...MiddlewareOption) error {
	c := newMiddlewareCheck(mw, opts)
	var errs []error
	for _, r := range middlewareRules {
		if err := r.check(c); err != nil {
			errs = append(errs, fmt.Errorf("tethertest: %s: %w", r.name, err))
			if r.name == middlewareRules[0].name {
				break // no handler, nothing more to check
			}
		}
	}
	return errors.Join(errs...)
}

// TestMiddleware runs mw through the rules of CheckMiddleware, each as a
// subtest of t named after the rule, which fails when mw breaks it. A
// middleware declared WithSharedState gets no subtest for the statelessness
// rule.
func TestMiddleware(t *testing.T, mw tether.Middleware, opts ...MiddlewareOption) {
	t.Helper()
	c := newMiddlewareCheck(mw, opts)
	for _, r := range middlewareRules {
		if r.name == statelessRule && c.shared {
			continue // declared: the middleware shares state by design
		}
		ok := t.Run(r.name, func(t *testing.T) {
			if err := r.check(c); err != nil {
				t.Error(err)
			}
		})
		if !ok && r.name == middlewareRules[0].name {
			return
		}
	}
}

func newMiddlewareCheck(mw tether.Middleware, opts []MiddlewareOption) *middlewareCheck {
	c := &middlewareCheck{mw: mw, timeout: DefaultCallTimeout}
	c.port.Store(10000)
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// fakeNext is the handler that the checked middleware wraps: it records the
// events it sees and answers with action.
type fakeNext struct {
	action tether.Action
	err    error // set as Event.Err when action is GiveUp
	block  bool  // wait for ctx to be done before answering
	// entered, when not nil, is closed at the first call.
	entered chan struct{}

	mu     sync.Mutex
	events []tether.Event
}

func (n *fakeNext) HandleDisconnect(ctx context.Context, ev *tether.Event) tether.Action {
	n.mu.Lock()
	n.events = append(n.events, *ev)
	if len(n.events) == 1 && n.entered != nil {
		close(n.entered)
	}
	n.mu.Unlock()
	if n.block {
		<-ctx.Done()
	}
	if n.action == tether.GiveUp && n.err != nil {
		ev.Err = n.err
	}
	return n.action
}

func (n *fakeNext) seen() []tether.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]tether.Event(nil), n.events...)
}

// handler returns c.mw(next), or an error when it panics or returns nil.
func (c *middlewareCheck) handler(next tether.DisconnectHandler) (h tether.DisconnectHandler, err error) {
	if c.mw == nil {
		return nil, errors.New("the Middleware is nil")
	}
	defer func() {
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("the Middleware panicked: %v", p)
		}
	}()
	if h = c.mw(next); h == nil {
		return nil, errors.New("the Middleware returned a nil DisconnectHandler")
	}
	return h, nil
}

// call calls h with ev and waits at most the call timeout for it to return.
// A call that does not return is left running, on a copy of the event.
func (c *middlewareCheck) call(ctx context.Context, h tether.DisconnectHandler, ev *tether.Event) (tether.Action, error) {
	type result struct {
		a   tether.Action
		ev  tether.Event
		err error
	}
	done := make(chan result, 1)
	in := *ev
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("HandleDisconnect(%v) panicked: %v", in.Kind, p)
			}
			done <- r
		}()
		e := in
		r.a = h.HandleDisconnect(ctx, &e)
		r.ev = e
	}()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, r.err
		}
		*ev = r.ev
		return r.a, nil
	case <-timer.C:
		return 0, fmt.Errorf("HandleDisconnect(%v) did not return within %v", in.Kind, c.timeout)
	}
}

// addr returns a loopback address that no other event of the check names.
func (c *middlewareCheck) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.FormatInt(c.port.Add(1), 10))
}

// checkRefused is a transient dial error, as the tcp dialer reports it.
var checkRefused error = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

// event returns a fresh event of kind, as a Tether reports it, with
// attempt failed dials so far and an outage that began now. On Disconnected
// and Unreachable, Addr and Dialed differ (as after an outer Failover), so
// that a policy that counts failures per address never holds back the next
// dial.
func (c *middlewareCheck) event(kind tether.EventKind, attempt int) tether.Event {
	now := time.Now()
	ev := tether.Event{Kind: kind, Addr: c.addr(), Attempt: attempt, Total: attempt, Since: now, Generation: 3}
	switch kind {
	case tether.Connected, tether.Reconnected:
		ev.Dialed, ev.DialTime, ev.Conn = ev.Addr, time.Millisecond, nopConn{}
		if kind == tether.Connected {
			ev.Generation = 1
		}
	case tether.Disconnected:
		ev.Err, ev.Dialed, ev.Uptime = io.EOF, c.addr(), time.Minute
		if attempt > 0 {
			ev.Uptime = time.Millisecond
		}
	case tether.Unreachable:
		ev.Err, ev.Dialed, ev.DialTime = checkRefused, c.addr(), time.Millisecond
	}
	return ev
}

// outageEvents returns Disconnected and Unreachable events with a few
// attempt counts.
func (c *middlewareCheck) outageEvents() []tether.Event {
	var evs []tether.Event
	for attempt := range 4 {
		evs = append(evs, c.event(tether.Disconnected, attempt))
		if attempt > 0 {
			evs = append(evs, c.event(tether.Unreachable, attempt))
		}
	}
	return evs
}

func (c *middlewareCheck) checkHandler() error {
	_, err := c.handler(&fakeNext{})
	return err
}

func (c *middlewareCheck) checkInformational() error {
	var errs []error
	for _, kind := range []tether.EventKind{tether.Connected, tether.Reconnected} {
		for _, action := range []tether.Action{tether.Reconnect, tether.GiveUp} {
			next := &fakeNext{action: action, err: errors.New("tethertest: rejected by next")}
			h, err := c.handler(next)
			if err != nil {
				return err
			}
			ev := c.event(kind, 1)
			want := ev
			a, err := c.call(context.Background(), h, &ev)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			seen := next.seen()
			switch {
			case len(seen) != 1:
				errs = append(errs, fmt.Errorf("on %v, next was called %d times, want 1", kind, len(seen)))
			case !sameEvent(seen[0], want):
				errs = append(errs, fmt.Errorf("on %v, next saw %+v, want the event unchanged: %+v", kind, seen[0], want))
			case a != action:
				errs = append(errs, fmt.Errorf("on %v, next returned %v, the handler %v", kind, action, a))
			case action == tether.Reconnect && ev.Err != nil:
				errs = append(errs, fmt.Errorf("on %v accepted, Event.Err = %v, want nil", kind, ev.Err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *middlewareCheck) checkCallsNext() error {
	return c.eachOutage(tether.Reconnect, nil, func(in, out tether.Event, a tether.Action, calls int) error {
		switch {
		case calls > 1:
			return fmt.Errorf("on %v (attempt %d), next was called %d times, want at most 1", in.Kind, in.Attempt, calls)
		case calls == 0 && a == tether.Reconnect:
			return fmt.Errorf("on %v (attempt %d), the handler returned reconnect without calling next", in.Kind, in.Attempt)
		case a == tether.GiveUp && out.Err == nil:
			return fmt.Errorf("on %v (attempt %d), the handler gave up with a nil Event.Err", in.Kind, in.Attempt)
		}
		return nil
	})
}

func (c *middlewareCheck) checkKeepsGiveUp() error {
	cause := errors.New("tethertest: next gave up")
	return c.eachOutage(tether.GiveUp, cause, func(in, out tether.Event, a tether.Action, calls int) error {
		switch {
		case calls == 0:
			return nil // the handler decided on its own
		case a != tether.GiveUp:
			return fmt.Errorf("on %v (attempt %d), next gave up and the handler returned %v", in.Kind, in.Attempt, a)
		case !errors.Is(out.Err, cause):
			return fmt.Errorf("on %v (attempt %d), next gave up with %q and the handler reports %v", in.Kind, in.Attempt, cause, out.Err)
		}
		return nil
	})
}

// eachOutage calls the handler, over a fresh next that answers action (with
// cause, on GiveUp), with each of the outage events, and asks judge what is
// wrong with the call: in is the event before it, out after, a the action
// and calls how many times next was called.
func (c *middlewareCheck) eachOutage(action tether.Action, cause error, judge func(in, out tether.Event, a tether.Action, calls int) error) error {
	var errs []error
	for _, ev := range c.outageEvents() {
		next := &fakeNext{action: action, err: cause}
		h, err := c.handler(next)
		if err != nil {
			return err
		}
		in := ev
		a, err := c.call(context.Background(), h, &ev)
		if err == nil {
			err = judge(in, ev, a, len(next.seen()))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *middlewareCheck) checkReadOnly() error {
	var errs []error
	evs := append(c.outageEvents(), c.event(tether.Connected, 0), c.event(tether.Reconnected, 2))
	for _, ev := range evs {
		next := &fakeNext{action: tether.Reconnect}
		h, err := c.handler(next)
		if err != nil {
			return err
		}
		want := ev
		if _, err := c.call(context.Background(), h, &ev); err != nil {
			errs = append(errs, err)
			continue
		}
		if !sameFixed(ev, want) {
			errs = append(errs, fmt.Errorf("on %v, the handler changed the event to %+v, from %+v", want.Kind, ev, want))
		}
		if ev.Delay < 0 {
			errs = append(errs, fmt.Errorf("on %v, the handler set a negative Delay %v", want.Kind, ev.Delay))
		}
		for _, seen := range next.seen() {
			if !sameFixed(seen, want) {
				errs = append(errs, fmt.Errorf("on %v, next saw %+v, changed from %+v", want.Kind, seen, want))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *middlewareCheck) checkCtxDone() error {
	var errs []error
	kinds := []tether.EventKind{tether.Connected, tether.Disconnected, tether.Unreachable, tether.Reconnected}
	for _, kind := range kinds {
		// Done before the call.
		h, err := c.handler(&fakeNext{action: tether.Reconnect})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ev := c.event(kind, 1)
		if _, err := c.call(ctx, h, &ev); err != nil {
			errs = append(errs, fmt.Errorf("with ctx done before the call: %w", err))
			break
		}
		// Done during the call, once next waits for it.
		next := &fakeNext{action: tether.Reconnect, block: true, entered: make(chan struct{})}
		h, err = c.handler(next)
		if err != nil {
			return err
		}
		ctx, cancel = context.WithCancel(context.Background())
		stop := make(chan struct{})
		go func() {
			select {
			case <-next.entered:
			case <-stop: // the handler decided without next
			}
			cancel()
		}()
		ev = c.event(kind, 1)
		_, err = c.call(ctx, h, &ev)
		close(stop)
		if err != nil {
			errs = append(errs, fmt.Errorf("with ctx done during the call: %w", err))
			break
		}
	}
	return errors.Join(errs...)
}

// decision is what a handler decided about an event, without the delay.
type decision struct {
	action tether.Action
	addr   string
	err    bool // Event.Err is set
}

func (c *middlewareCheck) checkStateless() error {
	if c.shared {
		return nil
	}
	h, err := c.handler(&fakeNext{action: tether.Reconnect})
	if err != nil {
		return err
	}
	// Tether B's events, each asked about several times: the answer may be
	// random (a jittered delay), but not depend on what Tether A did.
	// Before A's outage, each is asked right after a Reconnected of B's
	// (fresh): a counter shared by every Tether, reset on success and
	// capped, would otherwise reach its cap during this baseline, and the
	// comparison would be cap against cap.
	const samples = 32
	probes := []tether.Event{
		c.event(tether.Disconnected, 0), c.event(tether.Unreachable, 1),
		c.event(tether.Unreachable, 2), c.event(tether.Reconnected, 2),
	}
	probe := func(fresh bool) (ds []decision, minDelay, maxDelay []time.Duration, err error) {
		for _, p := range probes {
			var d decision
			lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
			for i := range samples {
				if fresh {
					up := c.event(tether.Reconnected, 0)
					if _, err := c.call(context.Background(), h, &up); err != nil {
						return nil, nil, nil, err
					}
				}
				ev := p
				ev.Since = time.Now()
				a, err := c.call(context.Background(), h, &ev)
				if err != nil {
					return nil, nil, nil, err
				}
				got := decision{a, ev.Addr, ev.Err != p.Err}
				if i == 0 {
					d = got
				} else if got != d {
					return nil, nil, nil, fmt.Errorf("on %v, the same event was decided as %+v, then %+v", p.Kind, d, got)
				}
				lo, hi = min(lo, ev.Delay), max(hi, ev.Delay)
			}
			ds, minDelay, maxDelay = append(ds, d), append(minDelay, lo), append(maxDelay, hi)
		}
		return ds, minDelay, maxDelay, nil
	}
	before, _, beforeDelay, err := probe(true)
	if err != nil {
		return err
	}
	// Tether A: a long outage at one address, with many failed dials, a few
	// flaps and reconnects.
	addr := c.addr()
	for i := 1; i <= 60; i++ {
		ev := c.event(tether.Unreachable, i)
		ev.Addr, ev.Dialed, ev.Since = addr, addr, time.Now().Add(-time.Duration(i)*time.Minute)
		switch i % 20 {
		case 10:
			ev = c.event(tether.Reconnected, i)
			ev.Addr, ev.Dialed = addr, addr
		case 11:
			ev = c.event(tether.Disconnected, i)
			ev.Addr, ev.Dialed = addr, addr
		}
		if _, err := c.call(context.Background(), h, &ev); err != nil {
			return err
		}
	}
	after, afterMin, afterDelay, err := probe(false)
	if err != nil {
		return err
	}
	var errs []error
	for i, p := range probes {
		if before[i] != after[i] {
			errs = append(errs, fmt.Errorf("on %v (attempt %d) of another Tether, the handler decided %+v before, %+v after one Tether's outage",
				p.Kind, p.Attempt, before[i], after[i]))
		}
		// (Of 32 draws each from one distribution, the least after is
		// above the most before once in 10^18.)
		if afterDelay[i] > 2*beforeDelay[i]+time.Millisecond || afterMin[i] > beforeDelay[i]+time.Millisecond {
			errs = append(errs, fmt.Errorf("on %v (attempt %d) of another Tether, the handler set delays up to %v before, %v to %v after one Tether's outage",
				p.Kind, p.Attempt, beforeDelay[i], afterMin[i], afterDelay[i]))
		}
	}
	return errors.Join(errs...)
}

func (c *middlewareCheck) checkConcurrent() error {
	const goroutines, calls = 8, 25
	h, err := c.handler(&fakeNext{action: tether.Reconnect})
	if err != nil {
		return err
	}
	kinds := []tether.EventKind{tether.Disconnected, tether.Unreachable, tether.Reconnected, tether.Connected}
	errc := make(chan error, goroutines)
	var start sync.WaitGroup
	start.Add(1)
	for g := range goroutines {
		go func() {
			start.Wait()
			for i := range calls {
				ev := c.event(kinds[(g+i)%len(kinds)], i%3)
				if _, err := c.call(context.Background(), h, &ev); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	start.Done()
	var errs []error
	for range goroutines {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sameFixed reports whether a and b agree on every field that a handler must
// not change (all but Addr, Delay and Err).
func sameFixed(a, b tether.Event) bool {
	a.Addr, a.Delay, a.Err = b.Addr, b.Delay, b.Err
	return sameEvent(a, b)
}

// sameEvent reports whether a and b are the same event. Errors compare with
// errors.Is, so that a comparison never panics.
func sameEvent(a, b tether.Event) bool {
	if (a.Err == nil) != (b.Err == nil) || a.Err != nil && !errors.Is(a.Err, b.Err) {
		return false
	}
	a.Err, b.Err = nil, nil
	return a == b
}

// nopConn is the connection of the check's Connected and Reconnected
// events. A handler must not use it; it fails every operation.
type nopConn struct{}

var errNopConn = errors.New("tethertest: the handler used Event.Conn")

func (nopConn) Read([]byte) (int, error)         { return 0, errNopConn }
func (nopConn) Write([]byte) (int, error)        { return 0, errNopConn }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nopAddr{} }
func (nopConn) RemoteAddr() net.Addr             { return nopAddr{} }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

type nopAddr struct{}

func (nopAddr) Network() string { return "tethertest" }
func (nopAddr) String() string  { return "tethertest" }
