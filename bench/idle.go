package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/io-tether/tether"
)

// idleHeapTarget is the most heap a Tether may keep beyond its raw
// connection while idle, in bytes.
const idleHeapTarget = 512

// An idleResult is the heap and goroutines that n idle connections kept,
// a line of idle.csv.
type idleResult struct {
	Transport, Via string
	N              int
	HeapBytes      int64 // beyond the state before they were made
	Goroutines     int
}

// liveHeap returns the bytes of live heap objects, after full collections,
// once two readings in a row agree (goroutines of an earlier part that are
// still tearing down, finalizers, would otherwise free memory in the middle
// of a measurement).
func liveHeap() int64 {
	prev := int64(-1)
	for range 10 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		h := int64(m.HeapAlloc)
		if prev >= 0 && max(h-prev, prev-h) < 4<<10 {
			return h
		}
		prev = h
		time.Sleep(20 * time.Millisecond)
	}
	return prev
}

// measureIdle makes n connections with mk, keeps them, and returns the heap
// and goroutines they added.
func measureIdle(n int, mk func() (net.Conn, error), keep *[]net.Conn) (int64, int, error) {
	h0, g0 := liveHeap(), runtime.NumGoroutine()
	for range n {
		c, err := mk()
		if err != nil {
			return 0, 0, err
		}
		*keep = append(*keep, c)
	}
	return liveHeap() - h0, runtime.NumGoroutine() - g0, nil
}

// runIdle measures what idle Tethers keep beyond their raw connections: n
// raw connections are made and kept, then n Tethers with the same Dialer;
// both counts include the server's ends, which are alike for both. A Tether
// over a connection that does nothing ("mem") gives the Tether alone.
func (b *bench) runIdle() error {
	n := b.cfg.idleN
	b.progress("idle mem (%d)", n)
	keep := make([]net.Conn, 0, n)
	noDial := tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		return nil, errors.New("bench: no redial")
	})
	h, g, err := measureIdle(n, func() (net.Conn, error) { return tether.New(nopConn{}, noDial, "mem", nil) }, &keep)
	if err != nil {
		return err
	}
	b.addIdle("mem", n, [2]int64{0, h}, [2]int{0, g})
	if err := b.idleProfile("mem"); err != nil {
		return err
	}
	for _, c := range keep {
		c.Close()
	}
	keep = nil

	for _, tr := range b.cfg.transports {
		b.progress("idle %s (%d)", tr.name, n)
		if err := b.idleOf(tr, n); err != nil {
			return fmt.Errorf("idle %s: %w", tr.name, err)
		}
	}
	return nil
}

func (b *bench) idleOf(tr *transport, n int) error {
	s, err := tr.serve("")
	if err != nil {
		return err
	}
	defer s.close()
	d := tr.dialer()
	defer closeDialer(d)
	// Over TCP, a third set of Tethers is dialed with a ctx that has a
	// deadline: once Dial returns, the Tether must not keep it.
	nDeadline := 0
	if tr.name == "tcp" {
		nDeadline = min(n, 1000)
	}
	conns := make([]net.Conn, 0, 2*n+nDeadline)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	peers := make([]*peer, 0, 2*n+nDeadline)
	s.reserve(2*n + nDeadline)
	mk := func(via string) func() (net.Conn, error) {
		return func() (net.Conn, error) {
			var (
				c   net.Conn
				err error
			)
			switch via {
			case "raw":
				c, err = dialRaw(tr, d, s.addr)
			case "tether":
				// Dial's ctx has no deadline: the dialers bound each
				// attempt themselves.
				c, err = dialTetherCtx(context.Background(), tr, d, s.addr, nil)
			default:
				c, err = dialTether(tr, d, s.addr, nil)
			}
			if err != nil {
				return nil, err
			}
			p, err := s.next()
			if err != nil {
				c.Close()
				return nil, err
			}
			peers = append(peers, p)
			return c, nil
		}
	}
	hRaw, gRaw, err := measureIdle(n, mk("raw"), &conns)
	if err != nil {
		return fmt.Errorf("raw: %w", err)
	}
	hTether, gTether, err := measureIdle(n, mk("tether"), &conns)
	if err != nil {
		return fmt.Errorf("tether: %w", err)
	}
	b.addIdle(tr.name, n, [2]int64{hRaw, hTether}, [2]int{gRaw, gTether})
	if err := b.idleProfile(tr.name); err != nil {
		return err
	}
	if nDeadline > 0 {
		h, _, err := measureIdle(nDeadline, mk("tether-deadline-ctx"), &conns)
		if err != nil {
			return fmt.Errorf("tether with a deadline ctx: %w", err)
		}
		b.idle = append(b.idle, idleResult{Transport: tr.name, Via: "tether-deadline-ctx", N: nDeadline, HeapBytes: h})
		b.rows = append(b.rows, newRow("idle", tr.name, "heap/deadline-ctx", "B/conn",
			float64(hRaw)/float64(n), float64(h)/float64(nDeadline)))
	}
	runtime.KeepAlive(peers)
	return nil
}

// addIdle records the heap and goroutines of n raw connections ([0]) and n
// Tethers ([1]) as rows.
func (b *bench) addIdle(transport string, n int, heap [2]int64, gor [2]int) {
	for i, via := range []string{"raw", "tether"} {
		b.idle = append(b.idle, idleResult{Transport: transport, Via: via, N: n, HeapBytes: heap[i], Goroutines: gor[i]})
	}
	fn := float64(n)
	h := newRow("idle", transport, "heap", "B/conn", float64(heap[0])/fn, float64(heap[1])/fn)
	h.Target = target{Kind: maxDelta, Limit: idleHeapTarget}
	g := newRow("idle", transport, "goroutines", "goroutines/conn", float64(gor[0])/fn, float64(gor[1])/fn)
	g.Target = target{Kind: maxDelta, Limit: 0}
	b.rows = append(b.rows, h, g)
}

// idleProfile writes, with -memprofile, a heap profile while the idle
// connections of transport are alive: FILE.idle-TRANSPORT (its inuse_space
// shows what each keeps).
func (b *bench) idleProfile(transport string) error {
	if b.cfg.memProfile == "" {
		return nil
	}
	return writeHeapProfile(b.cfg.memProfile + ".idle-" + transport)
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
