package faultmatrix

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// TestStorm: -storm Tethers (1000 by default) connected to one server,
// which restarts on the same port. Every Tether comes back, the default
// policy's jitter spreads the redials (0–200 ms after a stable connection
// is lost), and once they are closed no goroutine is left.
func TestStorm(t *testing.T) {
	n := *stormN
	raiseFileLimit(t, 2*n+1000) // a client and a server socket per Tether

	tr := transports[0] // tcp, straight to the server: the storm is the server's
	srv := startServer(t, tr, echo)

	var (
		mu         sync.Mutex
		dials      []time.Time
		failed     int
		restart    time.Time
		reconnects atomic.Int64
	)
	inner := &tcp.Dialer{Timeout: 10 * time.Second}
	d := tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		now := time.Now()
		c, err := inner.Dial(ctx, addr)
		mu.Lock()
		dials = append(dials, now)
		if err != nil {
			failed++
		}
		mu.Unlock()
		return c, err
	})
	h := tether.Chain(nil, func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Reconnected {
				reconnects.Add(1)
			}
			return next.HandleDisconnect(ctx, ev)
		})
	})

	// Connect them all, a few at a time.
	tethers := make([]*tether.Tether, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := atomic.Int64{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), long)
				tt, err := tether.Dial(ctx, d, srv.addr, h)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				tethers[i] = tt
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	defer func() {
		for _, tt := range tethers {
			tt.Close()
		}
	}()

	// A reader per Tether: it reports the first and the second greeting,
	// then reads until the Tether is closed.
	first, second := make(chan struct{}, n), make(chan struct{}, n)
	readers := sync.WaitGroup{}
	for _, tt := range tethers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var got []byte
			buf := make([]byte, 64)
			sent := 0
			for {
				m, err := tt.Read(buf)
				if err != nil {
					return
				}
				got = append(got, buf[:m]...)
				if sent == 0 && bytes.Contains(got, []byte("hello 1\n")) {
					first <- struct{}{}
					sent++
				}
				if sent == 1 && bytes.Contains(got, []byte("hello 2\n")) {
					second <- struct{}{}
					sent++
				}
			}
		}()
	}
	waitN(t, first, n, "first greetings")
	// Let every connection become stable (tether.DefaultStabilityPeriod),
	// so that its loss is redialed after the first-redial jitter.
	time.Sleep(tether.DefaultStabilityPeriod + 100*time.Millisecond)

	mu.Lock()
	dials = dials[:0]
	failed = 0
	restart = time.Now()
	mu.Unlock()
	srv.stop()
	down := time.Since(restart)
	require.NoError(t, srv.start())
	waitN(t, second, n, "greetings from the restarted server")
	back := time.Since(restart)

	mu.Lock()
	offsets := make([]time.Duration, len(dials))
	for i, at := range dials {
		offsets[i] = at.Sub(restart)
	}
	nfailed := failed
	mu.Unlock()
	slices.Sort(offsets)
	wave := offsets[:min(n, len(offsets))] // the first redial of each, roughly
	buckets := map[int64]int{}
	peak := 0
	for _, o := range wave {
		b := int64(o / (10 * time.Millisecond))
		buckets[b]++
		peak = max(peak, buckets[b])
	}
	pct := func(p float64) time.Duration { return wave[int(p*float64(len(wave)-1))] }
	t.Logf("storm: %d Tethers; server down for %v; all back after %v; %d dials (%d failed while it was down), %d reconnects",
		n, down.Round(time.Millisecond), back.Round(time.Millisecond), len(offsets), nfailed, reconnects.Load())
	t.Logf("storm: first %d redials after the restart: min %v, p10 %v, p50 %v, p90 %v, max %v; peak %d in one 10 ms window (uniform over 200 ms: %d)",
		len(wave), pct(0).Round(time.Millisecond), pct(0.1).Round(time.Millisecond), pct(0.5).Round(time.Millisecond),
		pct(0.9).Round(time.Millisecond), pct(1).Round(time.Millisecond), peak, n/20)

	require.GreaterOrEqual(t, int(reconnects.Load()), n, "every Tether reconnected")
	require.GreaterOrEqual(t, pct(0.9)-pct(0.1), 80*time.Millisecond, "the jitter spreads the redials")
	require.LessOrEqual(t, peak, max(3*n/20, 20), "too many redials in one 10 ms window")

	for _, tt := range tethers {
		require.NoError(t, tt.Close())
	}
	readers.Wait()
	srv.stop()
	goleak.VerifyNone(t)
}

// waitN receives n values from ch, for up to long plus a millisecond per
// value.
func waitN(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	timeout := time.NewTimer(long + time.Duration(n)*time.Millisecond)
	defer timeout.Stop()
	for i := range n {
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("%s: %d of %d", what, i, n)
		}
	}
}
