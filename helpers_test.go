package tether_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/io-tether/tether"
)

// pipeDialer hands out the client ends of net.Pipe pairs and keeps the server
// ends on servers. fail, when set, can fail a dial by its index.
type pipeDialer struct {
	servers chan net.Conn

	mu    sync.Mutex
	dials []dialRecord
	fail  func(n int, addr string) error
	hold  chan struct{} // when non-nil, dials block until it is closed or ctx ends
	// wrap, when set, replaces the client end of dial n: a test's conn
	// that misbehaves. Set it before the first dial.
	wrap func(n int, c net.Conn) net.Conn
}

type dialRecord struct {
	addr string
	at   time.Time
}

func newPipeDialer() *pipeDialer {
	return &pipeDialer{servers: make(chan net.Conn, 1000)}
}

func (p *pipeDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	p.mu.Lock()
	n := len(p.dials)
	p.dials = append(p.dials, dialRecord{addr, time.Now()})
	fail, hold := p.fail, p.hold
	p.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(n, addr); err != nil {
			return nil, err
		}
	}
	c, s := net.Pipe()
	p.servers <- s
	if p.wrap != nil {
		return p.wrap(n, c), nil
	}
	return c, nil
}

func (p *pipeDialer) setFail(f func(n int, addr string) error) {
	p.mu.Lock()
	p.fail = f
	p.mu.Unlock()
}

func (p *pipeDialer) numDials() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dials)
}

func (p *pipeDialer) addrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var a []string
	for _, d := range p.dials {
		a = append(a, d.addr)
	}
	return a
}

// server returns the next server end, failing the test if none comes.
func (p *pipeDialer) server(t *testing.T) net.Conn {
	t.Helper()
	select {
	case s := <-p.servers:
		t.Cleanup(func() { s.Close() })
		return s
	case <-time.After(time.Hour): // virtual time inside synctest
		t.Fatal("no connection was dialed")
		return nil
	}
}

// recorder is a handler that records a copy of each event and answers with
// decide (Reconnect when nil).
type recorder struct {
	mu     sync.Mutex
	events []tether.Event
	decide func(ev *tether.Event) tether.Action
}

func (r *recorder) HandleDisconnect(ctx context.Context, ev *tether.Event) tether.Action {
	a := tether.Reconnect
	if r.decide != nil {
		a = r.decide(ev)
	}
	r.mu.Lock()
	r.events = append(r.events, *ev)
	r.mu.Unlock()
	return a
}

func (r *recorder) kinds() []tether.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []tether.EventKind
	for _, e := range r.events {
		k = append(k, e.Kind)
	}
	return k
}

func (r *recorder) all() []tether.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tether.Event(nil), r.events...)
}

var errRefused = errors.New("refused (test)")

// readN reads exactly n bytes from c in a goroutine and reports them.
func readAsync(c net.Conn, n int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		buf := make([]byte, n)
		m, err := readFull(c, buf)
		ch <- result{string(buf[:m]), m, err}
	}()
	return ch
}

type result struct {
	s   string
	n   int
	err error
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// tetherGoroutines counts the goroutines that package tether started.
func tetherGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "created by github.com/io-tether/tether.")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// dialPipe dials a Tether over a new pipeDialer, with h (nil: the default
// policy) and opts, and closes it when the test ends.
func dialPipe(t *testing.T, h tether.DisconnectHandler, opts ...tether.Option) (*tether.Tether, *pipeDialer) {
	t.Helper()
	d := newPipeDialer()
	tt, err := tether.Dial(t.Context(), d, "a", h, opts...)
	if err != nil {
		t.Fatalf("tether.Dial over pipes: %v", err)
	}
	t.Cleanup(func() { tt.Close() })
	return tt, d
}
