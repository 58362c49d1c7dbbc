//go:build linux

package deadpeer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(listenEnv); spec != "" {
		os.Exit(serveListeners(spec)) // the child of netns.listeners
	}
	goleak.VerifyTestMain(m)
}

// long bounds every wait for something that should happen within seconds.
const long = 20 * time.Second

// server serves a listener with a handler, and closes everything at stop.
type server struct {
	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func startServer(t *testing.T, ln net.Listener, handle func(net.Conn)) *server {
	s := &server{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.stop)
	return s
}

func (s *server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed by stop (nothing else makes Accept fail here)
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			c.Close()
		}()
	}
}

// stop closes the listener and every connection, and waits for the handlers.
func (s *server) stop() {
	s.mu.Lock()
	s.done = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echo writes back what it reads (see transporttest.EchoConn).
func echo(c net.Conn) { transporttest.EchoConn(c) }

// ticker returns a handler that writes "tick\n" every d (a heartbeat) and
// drops what it reads.
func ticker(d time.Duration) func(net.Conn) {
	return func(c net.Conn) {
		read := make(chan struct{})
		go func() {
			defer close(read)
			io.Copy(io.Discard, c) // until the connection is closed
		}()
		defer func() { c.Close(); <-read }()
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-read:
				return
			case <-tk.C:
			}
			if _, err := c.Write([]byte("tick\n")); err != nil {
				return
			}
		}
	}
}

// recorder is a middleware that keeps a copy of each event and its time.
type recorder struct {
	mu     sync.Mutex
	evs    []tether.Event
	at     []time.Time
	notify chan struct{} // closed and replaced at each event
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) middleware(next tether.DisconnectHandler) tether.DisconnectHandler {
	return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		now := time.Now()
		e := *ev
		e.Conn = nil
		r.mu.Lock()
		r.evs = append(r.evs, e)
		r.at = append(r.at, now)
		close(r.notify)
		r.notify = make(chan struct{})
		r.mu.Unlock()
		return next.HandleDisconnect(ctx, ev)
	})
}

func (r *recorder) count(kind tether.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// wait waits up to long for the n-th event of kind, and returns it and
// when it came.
func (r *recorder) wait(t *testing.T, kind tether.EventKind, n int) (tether.Event, time.Time) {
	t.Helper()
	deadline := time.NewTimer(long)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		seen := 0
		for i, e := range r.evs {
			if e.Kind == kind {
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
			t.Fatalf("no %v event #%d within %v; events: %v", kind, n, long, r.summary())
		}
	}
}

// summary lists the events so far, with their errors.
func (r *recorder) summary() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return transporttest.Describe(r.evs)
}

// reader reads a Tether in a goroutine until it fails, keeping what it read
// and when it last read something.
type reader struct {
	mu   sync.Mutex
	got  bytes.Buffer
	last time.Time     // when the last Read with bytes returned
	err  error         // what ended it
	wake chan struct{} // closed and replaced at each Read
	done chan struct{}
}

func startReader(tt *tether.Tether) *reader {
	r := &reader{wake: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := tt.Read(buf)
			now := time.Now()
			r.mu.Lock()
			if n > 0 {
				r.got.Write(buf[:n])
				r.last = now
			}
			r.err = err
			close(r.wake)
			r.wake = make(chan struct{})
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

// waitRead waits up to long until s was read count times in all, and
// returns when the last Read with bytes returned.
func (r *reader) waitRead(t *testing.T, s string, count int) time.Time {
	t.Helper()
	deadline := time.NewTimer(long)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		n, last, err, ch := bytes.Count(r.got.Bytes(), []byte(s)), r.last, r.err, r.wake
		r.mu.Unlock()
		if n >= count {
			return last
		}
		if err != nil {
			t.Fatalf("the reader failed before reading %q ×%d: %v", s, count, err)
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("the reader did not read %q ×%d within %v (read %d)", s, count, long, n)
		}
	}
}

func (r *reader) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Count(r.got.Bytes(), []byte(s))
}

// lastRead returns when the last Read with bytes returned.
func (r *reader) lastRead() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// stopped waits up to a second for the reader to end after Close, and
// returns its error.
func (r *reader) stopped(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(time.Second):
		t.Fatal("a Read blocked at Close did not return within 1 s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// anyBefore reports whether an event of kind came before t0.
func (r *recorder) anyBefore(kind tether.EventKind, t0 time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.evs {
		if e.Kind == kind && r.at[i].Before(t0) {
			return true
		}
	}
	return false
}
