package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// stormBucket is the width of the storm's time buckets.
const stormBucket = 100 * time.Millisecond

// A stormServer is a TCP server in a child process (this program, run with
// -serve-storm), so that a restart is a real one: the process is killed,
// the kernel closes its connections, and a new process listens on the same
// port. It also keeps the server's sockets and memory out of the
// measurement.
type stormServer struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	addr string
}

// startStormServer starts a server process listening on addr.
func startStormServer(addr string) (*stormServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve-storm", addr)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &stormServer{cmd: cmd, in: in}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		a, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
		if !ok {
			s.kill()
			return nil, fmt.Errorf("storm server: %q", line)
		}
		s.addr = a
		return s, nil
	case <-time.After(setupTimeout):
		s.kill()
		return nil, errors.New("storm server: not ready in time")
	}
}

// kill kills the server process and waits for it to end.
func (s *stormServer) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.in.Close()
}

// serveStorm is the child process: it accepts connections on addr and keeps
// them, without a goroutine each, until it is killed or its standard input
// closes (the parent died).
func serveStorm(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("ready %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	var conns []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors, say: wait and go on.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		conns = append(conns, c)
	}
}

// stormLog records, with times since an origin, what the storm's Tethers
// did.
type stormLog struct {
	reconnected atomic.Int64

	mu                       sync.Mutex
	origin                   time.Time
	dials, fails, downs, ups []float64 // seconds since origin
}

func (l *stormLog) add(s *[]float64) {
	now := time.Now()
	l.mu.Lock()
	*s = append(*s, now.Sub(l.origin).Seconds())
	l.mu.Unlock()
}

// dialer counts the dials of d.
func (l *stormLog) dialer(d tether.Dialer) tether.Dialer {
	return tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		l.add(&l.dials)
		c, err := d.Dial(ctx, addr)
		if err != nil {
			l.add(&l.fails)
		}
		return c, err
	})
}

// middleware records the losses and the reconnects, and leaves the decision
// to next.
func (l *stormLog) middleware(next tether.DisconnectHandler) tether.DisconnectHandler {
	return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		switch ev.Kind {
		case tether.Disconnected:
			l.add(&l.downs)
		case tether.Reconnected:
			l.add(&l.ups)
			l.reconnected.Add(1)
		}
		return next.HandleDisconnect(ctx, ev)
	})
}

// stormResult is what the storm measured.
type stormResult struct {
	N              int
	Down           time.Duration // how long the server was down
	Restart        float64       // seconds from the loss to the restart
	AllBack        float64       // seconds from the loss to the last reconnect; NaN if not all came back
	Back           int           // Tethers back
	Dials, Fails   int
	HeapBefore     int64
	HeapAfter      int64
	GoroutinesPre  int
	GoroutinesPost int
	Timeline       []stormBucketRow
}

// A stormBucketRow is one bucket of the storm's timeline, a line of
// storm.csv.
type stormBucketRow struct {
	Start             float64 // seconds since the loss
	Dials, Fails, Ups int     // in the bucket
	Connected         int     // Tethers connected at the end of the bucket
}

// runStorm connects n Tethers (the default policy) to a server process,
// kills it, restarts it on the same port after the configured downtime, and
// records until every Tether is back.
func (b *bench) runStorm() error {
	n := b.cfg.stormN
	b.progress("storm (%d Tethers, server down %v)", n, b.cfg.stormDown)
	srv, err := startStormServer("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() { srv.kill() }()

	log := &stormLog{origin: time.Now()}
	d := log.dialer(&tcp.Dialer{})
	h := tether.Chain(nil, log.middleware)
	ts := make([]*tether.Tether, 0, n)
	var readers sync.WaitGroup
	defer func() {
		for _, t := range ts {
			t.Close()
		}
		readers.Wait()
	}()
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		t, err := tether.Dial(ctx, d, srv.addr, h)
		cancel()
		if err != nil {
			return fmt.Errorf("storm: dial %d: %w", len(ts), err)
		}
		ts = append(ts, t)
		// The application's reader: the server never writes, so Read
		// blocks until the connection is lost, and on through the
		// reconnect.
		readers.Go(func() {
			buf := make([]byte, 64)
			for {
				if _, err := t.Read(buf); err != nil {
					return
				}
			}
		})
	}
	// Let the connections become stable (tether.DefaultStabilityPeriod), so
	// that their loss starts the default policy at attempt 0.
	time.Sleep(tether.DefaultStabilityPeriod + 200*time.Millisecond)
	heapBefore, gBefore := liveHeap(), runtime.NumGoroutine()
	if err := b.stormProfile("before"); err != nil {
		return err
	}

	log.mu.Lock()
	log.origin = time.Now()
	log.dials, log.fails, log.downs, log.ups = nil, nil, nil, nil
	log.mu.Unlock()
	srv.kill()
	time.Sleep(b.cfg.stormDown)
	restart := time.Since(log.origin).Seconds()
	next, err := startStormServer(srv.addr)
	if err != nil {
		return fmt.Errorf("storm: restart: %w", err)
	}
	srv = next
	deadline := time.Now().Add(b.cfg.stormTimeout)
	for log.reconnected.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	back := int(log.reconnected.Load())
	// Let the reconnect goroutines end before counting.
	time.Sleep(500 * time.Millisecond)
	heapAfter, gAfter := liveHeap(), runtime.NumGoroutine()
	if err := b.stormProfile("after"); err != nil {
		return err
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	res := stormResult{N: n, Down: b.cfg.stormDown, Restart: restart, AllBack: math.NaN(), Back: back,
		Dials: len(log.dials), Fails: len(log.fails),
		HeapBefore: heapBefore, HeapAfter: heapAfter, GoroutinesPre: gBefore, GoroutinesPost: gAfter}
	if back >= n && len(log.ups) > 0 {
		res.AllBack = maxOf(log.ups)
	}
	end := maxOf(append([]float64{restart}, log.ups...)) + 0.5
	res.Timeline = timeline(log.dials, log.fails, log.downs, log.ups, n, -0.5, end, stormBucket.Seconds())
	b.storm = &res
	b.rows = append(b.rows, stormRows(res)...)
	if back < n {
		return fmt.Errorf("storm: only %d of %d Tethers back after %v", back, n, b.cfg.stormTimeout)
	}
	return nil
}

func maxOf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// timeline buckets the storm's events from lo to hi seconds.
func timeline(dials, fails, downs, ups []float64, n int, lo, hi, w float64) []stormBucketRow {
	hd, hf := histogram(dials, lo, hi, w), histogram(fails, lo, hi, w)
	hdown, hup := histogram(downs, lo, hi, w), histogram(ups, lo, hi, w)
	// Losses before lo (there are none) and after count as they come.
	connected := n
	for _, t := range downs {
		if t < lo {
			connected--
		}
	}
	out := make([]stormBucketRow, len(hd))
	for i := range hd {
		connected += hup[i] - hdown[i]
		out[i] = stormBucketRow{Start: lo + float64(i)*w, Dials: hd[i], Fails: hf[i], Ups: hup[i], Connected: connected}
	}
	return out
}

// stormRows turns the storm's result into rows of the table.
func stormRows(r stormResult) []row {
	peak := 0
	for _, bk := range r.Timeline {
		peak = max(peak, bk.Dials)
	}
	mk := func(cas, unit string, v float64) row {
		return newRow("storm", "tcp", cas, unit, math.NaN(), v)
	}
	const mib = 1 << 20
	return []row{
		mk("tethers", "count", float64(r.N)),
		mk("down", "s", r.Down.Seconds()),
		mk("all-back-after-restart", "s", r.AllBack-r.Restart),
		mk("all-back-after-loss", "s", r.AllBack),
		mk("dials-per-tether", "dials/tether", float64(r.Dials)/float64(r.N)),
		mk("peak-dials", "dials/s", float64(peak)/stormBucket.Seconds()),
		mk("heap-before", "MiB", float64(r.HeapBefore)/mib),
		mk("heap-after", "MiB", float64(r.HeapAfter)/mib),
		mk("goroutines-before", "count", float64(r.GoroutinesPre)),
		mk("goroutines-after", "count", float64(r.GoroutinesPost)),
	}
}

// stormProfile writes, with -memprofile, a heap profile before the storm or
// after it: FILE.storm-before and FILE.storm-after, for pprof -diff_base.
func (b *bench) stormProfile(when string) error {
	if b.cfg.memProfile == "" {
		return nil
	}
	return writeHeapProfile(b.cfg.memProfile + ".storm-" + when)
}
