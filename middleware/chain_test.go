package middleware_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// addrDelay shows the event's address and whether it has a delay.
func addrDelay(ev *tether.Event) string { return ev.Addr + " " + delayClass(ev.Delay) }

func delayClass(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return "delayed"
}

// TestChainOrder checks that mw[0] is outermost, and where each built-in
// acts relative to next: Failover before (inner middleware see its
// address), Backoff after (outer middleware see its delay).
func TestChainOrder(t *testing.T) {
	var log []string
	h := tether.Chain(reconnect,
		probe(&log, "1", addrDelay),
		middleware.Logging(slog.New(slog.DiscardHandler)),
		probe(&log, "2", addrDelay),
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: time.Second}),
		probe(&log, "3", addrDelay),
		middleware.Failover(addrA, addrB),
		probe(&log, "4", addrDelay),
	)
	a, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Dialed: addrA, Attempt: 1})
	require.Equal(t, tether.Reconnect, a)
	require.Equal(t, addrB, ev.Addr)
	require.Equal(t, []string{
		"1 in " + addrA + " 0",
		"2 in " + addrA + " 0",
		"3 in " + addrA + " 0",
		"4 in " + addrB + " 0", // Failover acted before next
		"4 out " + addrB + " 0",
		"3 out " + addrB + " 0",
		"2 out " + addrB + " delayed", // Backoff acted after next
		"1 out " + addrB + " delayed",
	}, log)
}

// TestRecommendedChain runs the chain of the package documentation on real
// Tethers: the seed's exchange, then a server that is gone for good.
func TestRecommendedChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &records{}
		var metrics middleware.ExpvarMetrics
		events := make(chan tether.Event, 100)
		var dropped atomic.Uint64
		breaker := middleware.NewBreaker(middleware.BreakerConfig{})
		transient := func(ev *tether.Event) bool { return !tether.IsPermanent(ev.Err) }
		h := tether.Chain(nil,
			middleware.Logging(slog.New(rec)),
			middleware.Metrics(&metrics),
			middleware.NotifyDropped(events, &dropped),
			middleware.MaxDowntime(time.Minute),
			middleware.CircuitBreaker(breaker),
			middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 10}),
			middleware.RetryIf(transient),
			middleware.Failover(addrA, addrB),
		)
		n := fooBar(t.Context())
		tn := tethertest.Dial(t, n, addrA, h)
		buf := make([]byte, 6)
		_, err := io.ReadFull(tn, buf)
		require.NoError(t, err)
		require.Equal(t, "foobar", string(buf))

		// Both servers go away: the Tether gives up within MaxDowntime.
		n.Down(addrA)
		n.Down(addrB)
		start := time.Now()
		_, err = io.ReadAll(tn)
		require.True(t, errors.Is(err, middleware.ErrMaxDowntime), "ReadAll = %v, want ErrMaxDowntime", err)
		require.LessOrEqual(t, time.Since(start), time.Minute)

		var kinds []tether.EventKind
		for len(events) > 0 {
			kinds = append(kinds, (<-events).Kind)
		}
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected, tether.Disconnected}, kinds[:4])
		require.Zero(t, dropped.Load())
		records := rec.all()
		require.Len(t, records, len(kinds), "one record per event")
		require.Equal(t, slog.LevelError, records[len(records)-1].level, "the give-up is logged as an error")
		var m expvarJSON
		require.NoError(t, json.Unmarshal([]byte(metrics.String()), &m))
		require.Equal(t, int64(1), m.Actions["give-up"])
		require.Equal(t, int64(1), m.OutagesRecovered)
	})
}
