package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/io-tether/tether"
)

// allocRepeats is how many times each allocation count is taken; the
// smallest is kept, since other goroutines (the server's end, the runtime)
// can only add allocations to a count, never remove the Tether's.
const allocRepeats = 5

// allocsPerOp returns the average number of heap allocations of one call of
// f over ops calls, counted process-wide.
func allocsPerOp(ops int, f func() error) (float64, error) {
	for range ops / 10 { // warm up
		if err := f(); err != nil {
			return 0, err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for range ops {
		if err := f(); err != nil {
			return 0, err
		}
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(ops), nil
}

// corePrefix starts the names of the functions of package tether (not its
// subpackages).
const corePrefix = "github.com/io-tether/tether."

// ownAllocs returns the heap allocations per call of f that the Tether's own
// code makes, exactly: with every allocation recorded
// (runtime.MemProfileRate = 1), those whose stack holds a function of
// package tether that made the allocation itself or through a callee other
// than the connection's methods. Allocations of the connection under the
// Tether, and of other goroutines, do not count.
func ownAllocs(ops int, f func() error) (float64, error) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	for range ops / 10 { // warm up
		if err := f(); err != nil {
			return 0, err
		}
	}
	before := tetherAllocCount()
	for range ops {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return float64(tetherAllocCount()-before) / float64(ops), nil
}

// tetherAllocCount returns how many allocations so far the memory profile
// attributes to package tether's own code.
func tetherAllocCount() int64 {
	// The profile is up to two collections old.
	for range 3 {
		runtime.GC()
	}
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(nil, true)
		recs = make([]runtime.MemProfileRecord, n+64)
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var total int64
	for i := range recs {
		if tethersOwn(funcNames(recs[i].Stack())) {
			total += recs[i].AllocObjects
		}
	}
	return total
}

// funcNames returns the functions of a stack, innermost first, inlined
// calls included.
func funcNames(pcs []uintptr) []string {
	var names []string
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		names = append(names, f.Function)
		if !more {
			return names
		}
	}
}

// tethersOwn reports whether an allocation whose stack is names (innermost
// first) is the Tether's: the innermost function of package tether made it
// directly, or through a callee that is not a method of the connection
// (Read, Write, ...), which the raw connection would have called too.
func tethersOwn(names []string) bool {
	for i, n := range names {
		if !strings.HasPrefix(n, corePrefix) {
			continue
		}
		if i == 0 {
			return true
		}
		callee := names[i-1]
		for _, m := range []string{".Read", ".Write", ".Close", ".SetDeadline", ".SetReadDeadline", ".SetWriteDeadline", ".CloseWrite"} {
			if strings.HasSuffix(callee, m) {
				return false
			}
		}
		return true
	}
	return false
}

// allocRows measures op on the raw connection and on the Tether,
// alternately, and returns two rows: the allocations counted process-wide
// (informative: they include the connection's and the server's), and the
// Tether's own (the target).
func allocRows(transport, cas string, ops int, raw, tt func() error) ([]row, error) {
	r, err := allocRow(transport, cas, ops, raw, tt)
	if err != nil {
		return nil, err
	}
	r.Target = target{}
	own, err := ownAllocs(ops, tt)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", transport, cas, err)
	}
	nan := math.NaN()
	return []row{r, {Part: "allocs", Transport: transport, Case: cas + "/own", Unit: "allocs/op",
		Raw: 0, Wrapped: own, Ratio: nan, SpreadLo: nan, SpreadHi: nan,
		Target: target{Kind: maxDelta, Limit: 0}}}, nil
}

// allocRow measures op on the raw connection and on the Tether,
// alternately, counting process-wide, and returns the row.
func allocRow(transport, cas string, ops int, raw, tt func() error) (row, error) {
	best := [2]float64{math.Inf(1), math.Inf(1)}
	for r := range allocRepeats {
		for k := range 2 {
			i := (r + k) % 2
			f := raw
			if i == 1 {
				f = tt
			}
			a, err := allocsPerOp(ops, f)
			if err != nil {
				return row{}, fmt.Errorf("%s %s: %w", transport, cas, err)
			}
			best[i] = min(best[i], a)
		}
	}
	return row{Part: "allocs", Transport: transport, Case: cas, Unit: "allocs/op",
		Raw: best[0], Wrapped: best[1], Ratio: math.NaN(), SpreadLo: math.NaN(), SpreadHi: math.NaN(),
		Target: target{Kind: maxDelta, Limit: 0}}, nil
}

// runAllocs counts the allocations of a healthy Read and Write: first over
// an in-memory connection that does nothing (the Tether alone, exactly),
// then over each transport, raw and through a Tether.
func (b *bench) runAllocs() error {
	ops := b.cfg.allocOps
	b.progress("allocs mem")
	tt, err := tether.New(nopConn{}, tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		return nil, errors.New("bench: no redial")
	}), "mem", nil)
	if err != nil {
		return err
	}
	defer tt.Close()
	buf := make([]byte, 1<<10)
	for _, op := range []string{"write", "read"} {
		f := func(c net.Conn) func() error {
			if op == "write" {
				return func() error { _, err := c.Write(buf); return err }
			}
			return func() error { _, err := c.Read(buf); return err }
		}
		rs, err := allocRows("mem", op+"/1KiB", ops*10, f(nopConn{}), f(tt))
		if err != nil {
			return err
		}
		b.rows = append(b.rows, rs...)
	}
	for _, tr := range b.cfg.transports {
		b.progress("allocs %s", tr.name)
		if err := b.allocsOf(tr, ops); err != nil {
			return fmt.Errorf("allocs %s: %w", tr.name, err)
		}
	}
	return nil
}

func (b *bench) allocsOf(tr *transport, ops int) error {
	s, err := tr.serve("")
	if err != nil {
		return err
	}
	defer s.close()
	dRaw, releaseRaw := tr.dialer()
	defer releaseRaw()
	dTether, releaseTether := tr.dialer()
	defer releaseTether()
	raw, err := dialPair(tr, s, dRaw, "raw")
	if err != nil {
		return err
	}
	defer raw.close()
	tt, err := dialPair(tr, s, dTether, "tether")
	if err != nil {
		return err
	}
	defer tt.close()
	// The server's ends sink what the clients write and source what they
	// read, until they are closed.
	for _, p := range []*peer{raw.p, tt.p} {
		go func() {
			buf := make([]byte, serverChunk)
			for {
				if _, err := p.Read(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			buf := make([]byte, serverChunk)
			for {
				if _, err := p.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	buf := make([]byte, 1<<10)
	for _, op := range []string{"write", "read"} {
		f := func(c net.Conn) func() error {
			if op == "write" {
				return func() error { _, err := c.Write(buf); return err }
			}
			return func() error { _, err := c.Read(buf); return err }
		}
		rs, err := allocRows(tr.name, op+"/1KiB", ops, f(raw.c), f(tt.c))
		if err != nil {
			return err
		}
		b.rows = append(b.rows, rs...)
	}
	return nil
}

// nopConn reads and writes nothing, instantly: a Tether over it costs only
// what the Tether adds. Its addresses are allocated once, as a real
// connection's are when it is made.
type nopConn struct{}

var nopAddr net.Addr = &net.TCPAddr{}

func (nopConn) Read(p []byte) (int, error)       { return len(p), nil }
func (nopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nopAddr }
func (nopConn) RemoteAddr() net.Addr             { return nopAddr }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
