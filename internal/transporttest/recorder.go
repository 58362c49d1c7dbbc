package transporttest

import (
	"context"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
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

// NewRecorder returns a tethertest.Recorder that decides with p (nil:
// Fast).
func NewRecorder(p Policy) *tethertest.Recorder {
	if p == nil {
		p = Fast
	}
	return &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(
		func(_ context.Context, ev *tether.Event) tether.Action { return p(ev) })}
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
