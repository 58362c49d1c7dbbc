package middleware_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

func TestMaxDowntimeDecisions(t *testing.T) {
	const limit = 10 * time.Second
	tests := []struct {
		name      string
		kind      tether.EventKind
		outage    time.Duration
		delay     time.Duration // set by next
		nextSays  tether.Action
		want      tether.Action
		wantDelay time.Duration
		wantNext  bool
	}{
		{"within the limit", tether.Unreachable, 2 * time.Second, 3 * time.Second, tether.Reconnect, tether.Reconnect, 3 * time.Second, true},
		{"delay shortened to the limit", tether.Unreachable, 8 * time.Second, 5 * time.Second, tether.Reconnect, tether.Reconnect, 2 * time.Second, true},
		{"limit reached", tether.Unreachable, limit, 0, tether.Reconnect, tether.GiveUp, 0, false},
		{"limit passed", tether.Unreachable, time.Hour, 0, tether.Reconnect, tether.GiveUp, 0, false},
		{"disconnected starts an outage", tether.Disconnected, 0, time.Minute, tether.Reconnect, tether.Reconnect, limit, true},
		{"next's give-up is kept", tether.Unreachable, time.Second, 0, tether.GiveUp, tether.GiveUp, 0, true},
		{"reconnected passes", tether.Reconnected, time.Hour, 0, tether.Reconnect, tether.Reconnect, 0, true},
		{"connected passes", tether.Connected, time.Hour, 0, tether.Reconnect, tether.Reconnect, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var deadline time.Time
				n := answer(tt.nextSays, nil)
				h := middleware.MaxDowntime(limit)(tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
					deadline, _ = ctx.Deadline()
					ev.Delay = tt.delay
					return n.HandleDisconnect(ctx, ev)
				}))
				ev := tether.Event{Kind: tt.kind, Addr: addrA, Since: time.Now().Add(-tt.outage)}
				if tt.kind == tether.Disconnected || tt.kind == tether.Unreachable {
					ev.Err = errRefused
				}
				a, got := handle(h, ev)
				require.Equal(t, tt.want, a)
				require.Equal(t, tt.wantNext, len(n.Events()) == 1, "next called: %v", len(n.Events()) == 1)
				if tt.want == tether.Reconnect {
					require.Equal(t, tt.wantDelay, got.Delay)
				}
				if tt.want == tether.GiveUp && tt.nextSays == tether.Reconnect {
					require.ErrorIs(t, got.Err, middleware.ErrMaxDowntime)
					require.ErrorIs(t, got.Err, errRefused)
					require.True(t, strings.HasPrefix(got.Err.Error(), "tether/middleware: "), "Err = %q", got.Err)
				}
				if tt.wantNext && (tt.kind == tether.Unreachable || tt.kind == tether.Disconnected) {
					require.Equal(t, ev.Since.Add(limit), deadline, "next's ctx ends when the outage reaches the limit")
				}
			})
		})
	}
}

// TestMaxDowntimeGivesUpOnTime: a server that goes away for good; the Tether
// gives up when the outage reaches the limit, not a backoff step later.
func TestMaxDowntimeGivesUpOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tether.Chain(nil, middleware.MaxDowntime(10*time.Second),
			middleware.Backoff(middleware.BackoffConfig{BaseDelay: 3 * time.Second, Multiplier: 2}))
		tn, n, lost, read := loseServer(t, h, time.Minute)
		err := <-read
		require.Equal(t, 10*time.Second, time.Since(lost), "gave up after %v, want the limit", time.Since(lost))
		require.ErrorIs(t, err, middleware.ErrMaxDowntime)
		require.ErrorIs(t, tn.Err(), middleware.ErrMaxDowntime)
		dials := n.History()
		require.Equal(t, lost.Add(10*time.Second), dials[len(dials)-1].At, "the last dial is at the limit")
	})
}

// TestMaxDowntimeBoundsDial: the outage of Dial counts from its start.
func TestMaxDowntimeBoundsDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, nil)
		start := time.Now()
		_, err := tether.Dial(context.Background(), n, addrA, tether.Chain(nil, middleware.MaxDowntime(5*time.Second)))
		require.ErrorIs(t, err, middleware.ErrMaxDowntime)
		require.Equal(t, 5*time.Second, time.Since(start))
	})
}

// TestMaxDowntimeBoundsWaitingHandler: a handler inside MaxDowntime that
// waits on its ctx is cut short at the limit.
func TestMaxDowntimeBoundsWaitingHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			<-ctx.Done() // a lookup that never answers
			return tether.Reconnect
		})
		ev := tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Since: time.Now()}
		start := time.Now()
		a, got := handle(middleware.MaxDowntime(time.Minute)(slow), ev)
		require.Equal(t, tether.GiveUp, a)
		require.ErrorIs(t, got.Err, middleware.ErrMaxDowntime)
		require.ErrorIs(t, got.Err, io.EOF)
		require.Equal(t, time.Minute, time.Since(start))
	})
}

// MaxDowntime bounds a lazy Tether's first dials too: their events carry
// the time the lazy dial began as Event.Since (they carried the zero
// time, and the Tether retried for ever).
func TestMaxDowntimeBoundsLazyDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		d.FailWhen(func(int, string) error { return errRefused })
		rec := &tethertest.Recorder{Next: reconnect}
		h := tether.Chain(rec, middleware.MaxDowntime(time.Second),
			middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: 100 * time.Millisecond}))
		tt := tethertest.Dial(t, d, addrA, h, tether.WithLazy())
		tt.Connect()
		time.Sleep(10 * time.Second)
		select {
		case <-tt.Done():
		default:
			t.Errorf("MaxDowntime(1s): still retrying after 10 s, %d dials; Event.Since of the first: %v",
				d.Dials(), rec.Events()[0].Since)
		}
	})
}
