package tethertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/io-tether/tether"
)

// WaitTimeout bounds [Recorder.WaitFor] and [Dialer.Server]: generous, so
// that only a hang fails a test, never a slow machine. Inside testing/synctest it passes in virtual
// time, so a test that waits for what never comes fails at once.
const WaitTimeout = 30 * time.Second

// A Recorder is a tether.DisconnectHandler that lets Next decide and keeps a
// copy of each event, as Next left it (with its Delay, Addr and Err), and of
// the decision, for a test to wait for and inspect.
//
// The zero value decides Reconnect on every event, at once: against an
// address that refuses, it redials without pause. Inside testing/synctest
// such a loop never lets virtual time pass (a WaitFor or a timer waits for
// ever): give it a Next that sets a delay, such as
// tether.DefaultHandler(), where a dial may fail. A Recorder is safe for
// concurrent use; use one per Tether, or count the events of all together.
type Recorder struct {
	// Next decides; nil means Reconnect on every event, without delay.
	// Set it before the Recorder's first event.
	Next tether.DisconnectHandler

	mu      sync.Mutex
	events  []Record
	changed chan struct{} // closed and replaced at each event
}

// A Record is one event a Recorder saw, when it came, and the action it
// returned.
type Record struct {
	tether.Event
	Action tether.Action
	// At is when the event came, before Next decided: with a real clock,
	// the time a detection or a reconnect took; inside testing/synctest,
	// the bubble's virtual time.
	At time.Time
}

// HandleDisconnect implements tether.DisconnectHandler: it asks Next, then
// records the event and the decision.
func (r *Recorder) HandleDisconnect(ctx context.Context, ev *tether.Event) tether.Action {
	at := time.Now()
	a := tether.Reconnect
	if r.Next != nil {
		a = r.Next.HandleDisconnect(ctx, ev)
	}
	r.mu.Lock()
	r.events = append(r.events, Record{Event: *ev, Action: a, At: at})
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
	return a
}

// Records returns a copy of the events so far with their decisions.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.events...)
}

// Events returns a copy of the events so far, as Next left them.
func (r *Recorder) Events() []tether.Event {
	return collect(r.Records(), func(rec Record) tether.Event { return rec.Event })
}

// Kinds returns the kinds of the events so far, in order.
func (r *Recorder) Kinds() []tether.EventKind {
	return collect(r.Records(), func(rec Record) tether.EventKind { return rec.Kind })
}

func collect[T any](recs []Record, f func(Record) T) []T {
	out := make([]T, len(recs))
	for i, rec := range recs {
		out[i] = f(rec)
	}
	return out
}

// Count returns how many events of kind there were so far.
func (r *Recorder) Count(kind tether.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Wait waits until there were n events of kind (n ≥ 1) and returns the nth,
// or returns ctx's error.
func (r *Recorder) Wait(ctx context.Context, kind tether.EventKind, n int) (tether.Event, error) {
	if n < 1 {
		return tether.Event{}, fmt.Errorf("tethertest: wait for event #%d: n must be at least 1", n)
	}
	for {
		r.mu.Lock()
		seen := 0
		for _, e := range r.events {
			if e.Kind == kind {
				if seen++; seen == n {
					r.mu.Unlock()
					return e.Event, nil
				}
			}
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return tether.Event{}, ctx.Err()
		}
	}
}

// WaitFor waits until there were n events of kind and returns the nth. It
// fails the test if they do not come within [WaitTimeout], listing the events
// that came.
func (r *Recorder) WaitFor(t testing.TB, kind tether.EventKind, n int) tether.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	ev, err := r.Wait(ctx, kind, n)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("none within %v", WaitTimeout)
		}
		t.Fatalf("tethertest: %s event #%d: %v; events so far: %s", kind, n, err, r)
	}
	return ev
}

// String lists the events so far as their kinds, each with its error when it
// has one: "[connected disconnected(EOF) reconnected]", for failure messages.
func (r *Recorder) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range r.Records() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Kind.String())
		if e.Err != nil {
			b.WriteString("(" + e.Err.Error() + ")")
		}
	}
	b.WriteByte(']')
	return b.String()
}
