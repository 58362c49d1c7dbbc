package faultmatrix

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

var (
	soakFor  = flag.Duration("soak", 3*time.Second, "how long TestIntegritySoak injects faults")
	soakSeed = flag.Uint64("seed", 1, "the seed of TestIntegritySoak's faults")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Real sockets on a loaded machine: bounds on things that should take
// milliseconds are seconds.
const long = 15 * time.Second

// A transport is one way to reach the server through the proxy.
type transport struct {
	name string
	// listen wraps the server's TCP listener (TLS wraps it in tls.Server).
	listen func(net.Listener) net.Listener
	// dialer makes the client's Dialer, with timeout per dial attempt.
	dialer func(timeout time.Duration) tether.Dialer
}

// transports are the transports of the matrix; tls_test.go adds tls.
var transports = []transport{{
	name:   "tcp",
	listen: func(l net.Listener) net.Listener { return l },
	dialer: func(timeout time.Duration) tether.Dialer { return &tcp.Dialer{Timeout: timeout} },
}}

// forEachTransport runs f as a parallel subtest per transport.
func forEachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			f(t, tr)
		})
	}
}

// server is a real server on loopback that can stop and come back on the
// same port. Each connection runs handle after a greeting line that names
// the server's incarnation: "hello 1\n", then "hello 2\n" after a restart.
type server struct {
	tr     transport
	handle func(net.Conn)
	addr   string

	wg sync.WaitGroup

	mu          sync.Mutex
	ln          net.Listener
	conns       map[net.Conn]struct{}
	incarnation int
	accepted    int
}

func startServer(t testing.TB, tr transport, handle func(net.Conn)) *server {
	t.Helper()
	s := &server{tr: tr, handle: handle, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	require.NoError(t, s.start())
	t.Cleanup(s.stop)
	return s
}

// start listens on the server's port (a fresh one the first time).
func (s *server) start() error {
	var (
		ln  net.Listener
		err error
	)
	for range 100 { // a port just closed may take a moment to bind again
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln = s.tr.listen(ln)
	s.addr = ln.Addr().String()
	s.incarnation++
	inc := s.incarnation
	s.mu.Unlock()
	s.wg.Add(1)
	go s.serve(s.ln, inc)
	return nil
}

func (s *server) serve(ln net.Listener, inc int) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fmt.Fprintln(os.Stderr, "server: accept:", err)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.ln != ln { // stopped meanwhile
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.accepted++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			if _, err := fmt.Fprintf(c, "hello %d\n", inc); err != nil {
				return
			}
			s.handle(c)
		}()
	}
}

// stop closes the listener and every connection, as a server that exits.
func (s *server) stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	s.closeLocked()
	s.mu.Unlock()
	s.wg.Wait()
}

// closeConns closes the live connections cleanly; the server stays up.
func (s *server) closeConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *server) closeLocked() int {
	n := len(s.conns)
	for c := range s.conns {
		c.Close()
	}
	return n
}

// echo writes back what it reads (see transporttest.EchoConn).
func echo(c net.Conn) { transporttest.EchoConn(c) }

// ticker returns a handler that writes "tick\n" every d, and reads and drops
// what the client sends.
func ticker(d time.Duration) func(net.Conn) {
	return func(c net.Conn) {
		go io.Copy(io.Discard, c) // ends when the connection closes
		for {
			time.Sleep(d)
			if _, err := c.Write([]byte("tick\n")); err != nil {
				return
			}
		}
	}
}

// sink returns a handler that reads everything and counts it in n.
func sink(n *atomic.Int64) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			m, err := c.Read(buf)
			n.Add(int64(m))
			if err != nil {
				return
			}
		}
	}
}

// recorder is a middleware that records a copy of each event, its time and
// the action.
type recorder struct {
	mu     sync.Mutex
	evs    []tether.Event
	at     []time.Time
	notify chan struct{} // closed and replaced at each event
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) middleware(next tether.DisconnectHandler) tether.DisconnectHandler {
	return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		a := next.HandleDisconnect(ctx, ev)
		e := *ev
		e.Conn = nil
		r.mu.Lock()
		r.evs = append(r.evs, e)
		r.at = append(r.at, time.Now())
		close(r.notify)
		r.notify = make(chan struct{})
		r.mu.Unlock()
		return a
	})
}

func (r *recorder) events() []tether.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tether.Event(nil), r.evs...)
}

func (r *recorder) count(kind tether.EventKind) int {
	n := 0
	for _, e := range r.events() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// wait waits until at least n events of kind have happened, for up to long,
// and returns the n-th and its time.
func (r *recorder) wait(t testing.TB, kind tether.EventKind, n int) (tether.Event, time.Time) {
	t.Helper()
	return r.waitAny(t, n, kind)
}

// waitAny waits until at least n events of any of kinds have happened, for
// up to long, and returns the n-th and its time.
func (r *recorder) waitAny(t testing.TB, n int, kinds ...tether.EventKind) (tether.Event, time.Time) {
	t.Helper()
	deadline := time.NewTimer(long)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		seen := 0
		for i, e := range r.evs {
			if slices.Contains(kinds, e.Kind) {
				if seen++; seen == n {
					ev, at := e, r.at[i]
					r.mu.Unlock()
					return ev, at
				}
			}
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %v event #%d within %v; events: %v", kinds, n, long, kindsOf(r.events()))
		}
	}
}

func kindsOf(evs []tether.Event) []string { return transporttest.Describe(evs) }

// env is one Tether through the fault proxy to a server.
type env struct {
	t     *testing.T
	tr    transport
	srv   *server
	proxy *faultproxy.Proxy
	rec   *recorder
	tt    *tether.Tether

	dmu   sync.Mutex
	dials []time.Time

	rmu    sync.Mutex
	got    bytes.Buffer // what the reader read, when started
	rerr   error
	rdone  chan struct{}
	rwake  chan struct{}
	target atomic.Pointer[string] // the address "svc.test" resolves to; nil: it does not
}

type envConfig struct {
	handle  func(net.Conn)
	policy  tether.DisconnectHandler // nil: transporttest.QuickBackoff; use tether.DefaultHandler() for the default
	timeout time.Duration            // per dial attempt; 0: 5 s
	opts    []tether.Option
}

// newEnv starts a server with cfg.handle, a proxy in front of it, and a
// Tether that dials the name "svc.test", which resolves to the proxy.
func newEnv(t *testing.T, tr transport, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, tr: tr, rec: newRecorder(), rwake: make(chan struct{})}
	e.srv = startServer(t, tr, cfg.handle)
	p, err := faultproxy.New(e.srv.addr, 1)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	e.proxy = p
	addr := p.Addr()
	e.target.Store(&addr)

	timeout := cfg.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	inner := tr.dialer(timeout)
	d := tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		e.dmu.Lock()
		e.dials = append(e.dials, time.Now())
		e.dmu.Unlock()
		return e.resolve(ctx, inner, addr)
	})
	policy := cfg.policy
	if policy == nil {
		policy = transporttest.QuickBackoff()
	}
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	tt, err := tether.Dial(ctx, d, "svc.test:443", tether.Chain(policy, e.rec.middleware), cfg.opts...)
	require.NoError(t, err)
	e.tt = tt
	t.Cleanup(func() { tt.Close() })
	return e
}

// resolve dials the address that "svc.test" resolves to now, or fails as a
// name that does not resolve.
func (e *env) resolve(ctx context.Context, inner tether.Dialer, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	target := e.target.Load()
	if host != "svc.test" {
		return inner.Dial(ctx, addr)
	}
	if target == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{
			Err: "no such host", Name: host, IsNotFound: true}}
	}
	return inner.Dial(ctx, *target)
}

func (e *env) numDials() int {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	return len(e.dials)
}

func (e *env) dialTimes() []time.Time {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	return append([]time.Time(nil), e.dials...)
}

// startReader reads the Tether in a goroutine until it fails, keeping what
// it read.
func (e *env) startReader() {
	e.rdone = make(chan struct{})
	go func() {
		defer close(e.rdone)
		buf := make([]byte, 4096)
		for {
			n, err := e.tt.Read(buf)
			e.rmu.Lock()
			e.got.Write(buf[:n])
			if err != nil {
				e.rerr = err
			}
			close(e.rwake)
			e.rwake = make(chan struct{})
			e.rmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
}

// readerErr returns the error that ended the reader, if it ended.
func (e *env) readerErr() error {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	return e.rerr
}

// waitRead waits until the reader has read s count times in all, for up to
// long.
func (e *env) waitRead(s string, count int) {
	e.t.Helper()
	deadline := time.NewTimer(long)
	defer deadline.Stop()
	for {
		e.rmu.Lock()
		n, err, ch := bytes.Count(e.got.Bytes(), []byte(s)), e.rerr, e.rwake
		e.rmu.Unlock()
		if n >= count {
			return
		}
		if err != nil {
			e.t.Fatalf("the reader failed before reading %q ×%d: %v", s, count, err)
		}
		select {
		case <-ch:
		case <-deadline.C:
			e.t.Fatalf("the reader did not read %q ×%d within %v (read %d); events: %v", s, count, long, n, kindsOf(e.rec.events()))
		}
	}
}

func (e *env) readCount(s string) int {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	return bytes.Count(e.got.Bytes(), []byte(s))
}

// closeAndCheck closes the Tether: Close returns promptly, the reader (if
// any) returns net.ErrClosed, and Err reports net.ErrClosed.
func (e *env) closeAndCheck() time.Duration {
	e.t.Helper()
	start := time.Now()
	require.NoError(e.t, e.tt.Close())
	took := time.Since(start)
	require.Less(e.t, took, time.Second, "Close took %v", took)
	if e.rdone != nil {
		select {
		case <-e.rdone:
		case <-time.After(time.Second):
			e.t.Fatal("a Read blocked at Close did not return within 1 s")
		}
		require.ErrorIs(e.t, e.readerErr(), net.ErrClosed)
	}
	require.ErrorIs(e.t, e.tt.Err(), net.ErrClosed)
	return took
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
