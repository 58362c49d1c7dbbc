package middleware_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

func TestWhen(t *testing.T) {
	refusedOnly := func(ev *tether.Event) bool { return errors.Is(ev.Err, errRefused) }
	tests := []struct {
		name string
		ev   tether.Event
		want []string
	}{
		{"pred true", tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA}, []string{"mw in", "base in", "base out", "mw out"}},
		{"pred false", tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA}, []string{"base in", "base out"}},
		{"pred false on connected", tether.Event{Kind: tether.Connected, Addr: addrA}, []string{"base in", "base out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			h := tether.Chain(reconnect, middleware.When(refusedOnly, probe(&log, "mw", nil)), probe(&log, "base", nil))
			a, _ := handle(h, tt.ev)
			require.Equal(t, tether.Reconnect, a)
			require.Equal(t, tt.want, log)
		})
	}
}

func TestWhenBackoffForSomeErrors(t *testing.T) {
	slow := middleware.BackoffConfig{BaseDelay: time.Hour, MaxDelay: 2 * time.Hour}
	h := tether.Chain(reconnect, middleware.When(func(ev *tether.Event) bool { return errors.Is(ev.Err, errRefused) }, middleware.Backoff(slow)))
	_, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 1})
	require.GreaterOrEqual(t, ev.Delay, 48*time.Minute, "refused: the slow backoff applies")
	_, ev = handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Attempt: 1})
	require.Zero(t, ev.Delay, "EOF: the backoff does not apply")
}

func TestRetryIf(t *testing.T) {
	transient := func(ev *tether.Event) bool { return !tether.IsPermanent(ev.Err) }
	permanent := tether.Permanent(errors.New("certificate rejected"))
	tests := []struct {
		name     string
		ev       tether.Event
		want     tether.Action
		wantNext bool
	}{
		{"transient unreachable", tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 1}, tether.Reconnect, true},
		{"transient disconnected", tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA}, tether.Reconnect, true},
		{"permanent unreachable", tether.Event{Kind: tether.Unreachable, Err: permanent, Addr: addrA, Attempt: 1}, tether.GiveUp, false},
		{"connected", tether.Event{Kind: tether.Connected, Addr: addrA}, tether.Reconnect, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &tethertest.Recorder{}
			a, got := handle(middleware.RetryIf(transient)(n), tt.ev)
			require.Equal(t, tt.want, a)
			require.Equal(t, tt.wantNext, len(n.Events()) == 1)
			require.Equal(t, tt.ev.Err, got.Err, "RetryIf reports the event's own error")
		})
	}
}

// TestRetryIfTether: a reconnect policy that retries every error, except an
// authentication failure that RetryIf tells apart.
func TestRetryIfTether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errAuth := errors.New("authentication failed")
		n := servers(t, map[string]func(net.Conn){addrA: sendAndClose("foo")})
		n.FailWhen(func(dial int, _ string) error {
			if dial == 2 {
				return errAuth
			}
			return nil
		})
		h := tether.Chain(reconnect, middleware.RetryIf(func(ev *tether.Event) bool { return !errors.Is(ev.Err, errAuth) }))
		tn := tethertest.Dial(t, n, addrA, h)
		b, err := io.ReadAll(tn)
		require.ErrorIs(t, err, errAuth)
		require.Equal(t, "foofoo", string(b))
		require.Equal(t, 3, n.Dials())
	})
}
