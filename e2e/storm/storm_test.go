package storm

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/e2e/internal/e2etest"
	"github.com/io-tether/tether/tcp"
)

var stormN = flag.Int("storm", 1000, "how many Tethers TestStorm reconnects (above 8000, run without -race: it allows 8128 goroutines)")

func TestMain(m *testing.M) {
	if os.Getenv(stormServerEnv) != "" {
		os.Exit(serveStorm()) // TestStorm's server process
	}
	goleak.VerifyTestMain(m)
}

// Real sockets on a loaded machine: bounds on things that should take
// milliseconds are seconds.
const long = 15 * time.Second

// TestStorm: -storm Tethers (1000 by default) connected to one server,
// which restarts on the same port. Every Tether comes back, the default
// policy's jitter spreads the redials (0–200 ms after a stable connection
// is lost), and once they are closed no goroutine is left.
func TestStorm(t *testing.T) {
	n := *stormN
	raiseFileLimit(t, n+1000) // a socket per Tether; the server has its own process

	srv := startRemoteServer(t)

	var (
		mu         sync.Mutex
		dials      []time.Time
		failed     int
		restart    time.Time
		reconnects atomic.Int64
		// planned: when each lost connection's first redial is due, as
		// the policy decided it (the loss plus the Delay it chose).
		planned []time.Time
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
			a := next.HandleDisconnect(ctx, ev)
			if ev.Kind == tether.Disconnected && a == tether.Reconnect {
				mu.Lock()
				planned = append(planned, ev.Since.Add(ev.Delay))
				mu.Unlock()
			}
			return a
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
	planned = planned[:0]
	failed = 0
	restart = time.Now()
	mu.Unlock()
	down := srv.restart(t)
	waitN(t, second, n, "greetings from the restarted server")
	back := time.Since(restart)

	mu.Lock()
	dialed, due := spread(dials, restart, n), spread(planned, restart, n)
	ndials, nfailed, nplanned := len(dials), failed, len(planned)
	mu.Unlock()
	t.Logf("storm: %d Tethers; server down for %v; all back after %v; %d dials (%d failed while it was down), %d reconnects",
		n, down.Round(time.Millisecond), back.Round(time.Millisecond), ndials, nfailed, reconnects.Load())
	t.Logf("storm: first %d redials after the restart, as dialed: %v", n, dialed)
	t.Logf("storm: the same, as the policy planned them: %v", due)

	require.GreaterOrEqual(t, int(reconnects.Load()), n, "every Tether reconnected")
	require.Equal(t, n, nplanned, "a redial planned for each lost connection")
	// The policy's plan, not the dials' times, is what the jitter decides:
	// on a busy machine the timers fire late and the dials bunch as
	// goroutines get the CPU (a run under four test processes and two CPU
	// hogs saw 256 in one window, with every redial late by 0.2 to 0.9 s).
	require.GreaterOrEqual(t, due.p90-due.p10, 80*time.Millisecond, "the jitter spreads the redials")
	require.LessOrEqual(t, due.peak, max(3*n/20, 20), "too many redials due in one 10 ms window")

	for _, tt := range tethers {
		require.NoError(t, tt.Close())
	}
	readers.Wait()
	srv.stop(t)
	goleak.VerifyNone(t)
}

// A spreadOf sums up when a wave of redials came (or was due), from a
// restart.
type spreadOf struct {
	min, p10, p50, p90, max time.Duration
	peak, uniform           int // in one 10 ms window; were they spread uniformly over 200 ms
}

// spread sums up the first n times of at (each Tether's first redial,
// roughly), as offsets from restart.
func spread(at []time.Time, restart time.Time, n int) spreadOf {
	offsets := make([]time.Duration, len(at))
	for i, a := range at {
		offsets[i] = a.Sub(restart)
	}
	slices.Sort(offsets)
	wave := offsets[:min(n, len(offsets))]
	if len(wave) == 0 {
		return spreadOf{}
	}
	s := spreadOf{uniform: n / 20}
	buckets := map[int64]int{}
	for _, o := range wave {
		b := int64(o / (10 * time.Millisecond))
		buckets[b]++
		s.peak = max(s.peak, buckets[b])
	}
	pct := func(p float64) time.Duration { return wave[int(p*float64(len(wave)-1))] }
	s.min, s.p10, s.p50, s.p90, s.max = pct(0), pct(0.1), pct(0.5), pct(0.9), pct(1)
	return s
}

func (s spreadOf) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v, p10 %v, p50 %v, p90 %v, max %v; peak %d in one 10 ms window (uniform over 200 ms: %d)",
		r(s.min), r(s.p10), r(s.p50), r(s.p90), r(s.max), s.peak, s.uniform)
}

// The storm's server runs in a child process (this test binary, which
// TestMain turns into the server when stormServerEnv is set), so that the
// Tethers' sockets and the server's do not share one file limit.
const stormServerEnv = "FAULTMATRIX_STORM_SERVER"

type remoteServer struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
}

func startRemoteServer(t *testing.T) *remoteServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stormServerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	r := &remoteServer{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	r.addr = r.line(t)
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *remoteServer) line(t *testing.T) string {
	t.Helper()
	if !r.out.Scan() {
		t.Fatalf("the storm server exited: %v", r.out.Err())
	}
	return r.out.Text()
}

// restart stops the server and starts it again on the same port, and
// returns how long that took.
func (r *remoteServer) restart(t *testing.T) time.Duration {
	t.Helper()
	_, err := io.WriteString(r.in, "restart\n")
	require.NoError(t, err)
	d, err := time.ParseDuration(strings.TrimPrefix(r.line(t), "restarted "))
	require.NoError(t, err)
	return d
}

func (r *remoteServer) stop(t *testing.T) {
	if r.in == nil {
		return
	}
	r.in.Close()
	r.in = nil
	require.NoError(t, r.cmd.Wait())
}

// serveStorm is the storm server's process: it prints its address, restarts
// at each "restart" line on stdin (printing "restarted <duration>"), and
// exits at the end of stdin. Each connection gets "hello N\n", N the
// server's incarnation, then an echo.
func serveStorm() int {
	in := bufio.NewScanner(os.Stdin)
	addr := "127.0.0.1:0"
	for inc := 1; ; inc++ {
		start := time.Now()
		ln, err := e2etest.ListenAgain(addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm server:", err)
			return 1
		}
		addr = ln.Addr().String()
		if inc == 1 {
			fmt.Println(addr)
		} else {
			fmt.Println("restarted", time.Since(start))
		}
		stop := serveIncarnation(ln, inc)
		restart := false
		for !restart && in.Scan() {
			restart = in.Text() == "restart"
		}
		stop()
		if !restart {
			return 0 // the end of stdin
		}
	}
}

// serveIncarnation serves ln, and returns a func that closes it and every
// connection, as a server that exits, and waits for the handlers.
func serveIncarnation(ln net.Listener, inc int) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				if _, err := fmt.Fprintf(c, "hello %d\n", inc); err == nil {
					io.Copy(c, c)
				}
			})
		}
	})
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
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
