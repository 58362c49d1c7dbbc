package transporttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/io-tether/tether"
)

// waitTimeout bounds every wait of the suite: generous, so that only a
// hang fails a test, never a slow machine.
const waitTimeout = 10 * time.Second

// A Policy decides about an event, as a DisconnectHandler does.
type Policy func(ev *tether.Event) tether.Action

// Fast is the policy of the suite: reconnect after transient errors at once
// (10 ms after a failed dial), give up on permanent ones.
func Fast(ev *tether.Event) tether.Action {
	switch ev.Kind {
	case tether.Disconnected, tether.Unreachable:
		if tether.IsPermanent(ev.Err) {
			return tether.GiveUp
		}
		if ev.Kind == tether.Unreachable {
			ev.Delay = 10 * time.Millisecond
		}
	}
	return tether.Reconnect
}

// A Recorder is a DisconnectHandler that decides with its Policy and keeps
// a copy of each event (with the decision's changes), for the test to wait
// for and inspect.
type Recorder struct {
	policy Policy

	mu      sync.Mutex
	events  []tether.Event
	changed chan struct{} // closed and replaced at each event
}

// NewRecorder returns a Recorder that decides with p (nil: Fast).
func NewRecorder(p Policy) *Recorder {
	if p == nil {
		p = Fast
	}
	return &Recorder{policy: p, changed: make(chan struct{})}
}

// HandleDisconnect implements tether.DisconnectHandler.
func (r *Recorder) HandleDisconnect(_ context.Context, ev *tether.Event) tether.Action {
	a := r.policy(ev)
	e := *ev
	e.Conn = nil
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return a
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []tether.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tether.Event(nil), r.events...)
}

// Kinds returns the kinds of the events so far.
func (r *Recorder) Kinds() []tether.EventKind {
	var kinds []tether.EventKind
	for _, e := range r.Events() {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// Count returns how many events of kind there were.
func (r *Recorder) Count(kind tether.EventKind) int {
	n := 0
	for _, e := range r.Events() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// WaitFor waits until there were n events of kind and returns the nth; it
// fails the test after a generous timeout.
func (r *Recorder) WaitFor(t testing.TB, kind tether.EventKind, n int) tether.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		seen := 0
		for _, e := range r.events {
			if e.Kind == kind {
				if seen++; seen == n {
					r.mu.Unlock()
					return e
				}
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("no %s event #%d within %v; events: %v", kind, n, waitTimeout, r.Kinds())
		}
	}
}

// QuickBackoff returns the default policy's logic with short delays, for
// tests that break connections many times: give up on permanent errors,
// otherwise reconnect after 20 ms, doubling per attempt up to 300 ms.
func QuickBackoff() tether.DisconnectHandler {
	return tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		switch ev.Kind {
		case tether.Disconnected, tether.Unreachable:
			if tether.IsPermanent(ev.Err) {
				return tether.GiveUp
			}
			ev.Delay = min(20*time.Millisecond<<min(ev.Attempt, 8), 300*time.Millisecond)
		}
		return tether.Reconnect
	})
}

// Describe lists events as their kinds, each with its error when it has
// one, for failure messages.
func Describe(evs []tether.Event) []string {
	var s []string
	for _, e := range evs {
		k := e.Kind.String()
		if e.Err != nil {
			k += "(" + e.Err.Error() + ")"
		}
		s = append(s, k)
	}
	return s
}
