package main

import (
	"fmt"
	"runtime"
	"strings"
)

// corePrefix starts the names of the functions of package tether (not its
// subpackages).
const corePrefix = "github.com/io-tether/tether."

// ownAllocs returns the heap allocations per call of f that the Tether's own
// code makes, exactly: with every allocation recorded
// (runtime.MemProfileRate = 1), those whose stack holds a function of
// package tether that made the allocation itself or through a callee other
// than the connection's methods. Allocations of the connection under the
// Tether, and of other goroutines, do not count.
func ownAllocs(ops int, f func() (int, error)) (float64, error) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	for range ops / 10 { // warm up
		if _, err := f(); err != nil {
			return 0, err
		}
	}
	before := tetherAllocCount()
	for range ops {
		if _, err := f(); err != nil {
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

// runAllocs counts the allocations that the Tether's own code makes in a
// healthy Read and Write of 1 KiB over each transport. What the whole
// process allocates per call, raw and through a Tether, is not counted
// here: go test -bench -benchmem measures it (BenchmarkWrite, BenchmarkRead
// and BenchmarkOverhead in the tether package, BenchmarkThroughput in tls
// and quic).
func (b *bench) runAllocs() error {
	for _, tr := range b.cfg.transports {
		b.progress("allocs %s", tr.name)
		if err := b.allocsOf(tr); err != nil {
			return fmt.Errorf("allocs %s: %w", tr.name, err)
		}
	}
	return nil
}

func (b *bench) allocsOf(tr *transport) error {
	l, err := openLink(tr)
	if err != nil {
		return err
	}
	defer l.close()
	// The server's end sinks what the client writes and sources what it
	// reads, until it is closed.
	go sink(l.p)
	go spring(l.p)
	buf := make([]byte, 1<<10)
	for _, dir := range []string{"write", "read"} {
		own, err := ownAllocs(b.cfg.allocOps, call(l.t, dir, buf))
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		// A raw connection runs none of the Tether's code: 0.
		r := newRow("allocs", tr.name, dir+"/1KiB/own", "allocs/op", 0, own)
		r.Target = target{Kind: maxDelta, Limit: 0}
		b.rows = append(b.rows, r)
	}
	return nil
}
