// Package e2etest holds what the end-to-end suites share: an event recorder
// that notes when each event came, a reader that keeps what a Tether read,
// and what servers need.
package e2etest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// Long bounds every wait for something that should take milliseconds or
// seconds: generous, for real sockets on a loaded machine.
const Long = tethertest.WaitTimeout

// A Recorder is a tethertest.Recorder with waits that return when an event
// came (its Record.At). Use one per Tether.
type Recorder struct {
	tethertest.Recorder
}

// NewRecorder returns a Recorder whose next handler is next (nil:
// Reconnect on every event).
func NewRecorder(next tether.DisconnectHandler) *Recorder {
	return &Recorder{tethertest.Recorder{Next: next}}
}

// WaitAt waits for the nth event of kind and returns it and when it came.
func (r *Recorder) WaitAt(t testing.TB, kind tether.EventKind, n int) (tether.Event, time.Time) {
	t.Helper()
	return r.WaitAny(t, n, kind)
}

// WaitAny waits for the nth event of any of kinds and returns it and when
// it came.
func (r *Recorder) WaitAny(t testing.TB, n int, kinds ...tether.EventKind) (tether.Event, time.Time) {
	t.Helper()
	deadline := time.Now().Add(Long)
	for {
		seen := 0
		for _, rec := range r.Records() {
			if slices.Contains(kinds, rec.Kind) {
				if seen++; seen == n {
					return rec.Event, rec.At
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v event #%d within %v; events: %v", kinds, n, Long, r)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// AnyBefore reports whether an event of kind came before t0.
func (r *Recorder) AnyBefore(kind tether.EventKind, t0 time.Time) bool {
	for _, rec := range r.Records() {
		if rec.Kind == kind && rec.At.Before(t0) {
			return true
		}
	}
	return false
}

// A Reader reads a Tether in a goroutine until it fails, keeping what it
// read and when it last read something.
type Reader struct {
	mu   sync.Mutex
	got  bytes.Buffer
	last time.Time     // when the last Read with bytes returned
	err  error         // what ended it
	wake chan struct{} // closed and replaced at each Read
	done chan struct{}
}

// StartReader starts reading c.
func StartReader(c io.Reader) *Reader {
	r := &Reader{wake: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
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

// WaitRead waits until s was read count times in all, and returns when the
// last Read with bytes returned.
func (r *Reader) WaitRead(t testing.TB, s string, count int) time.Time {
	t.Helper()
	deadline := time.NewTimer(Long)
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
			t.Fatalf("the reader did not read %q ×%d within %v (read %d)", s, count, Long, n)
		}
	}
}

// Err returns the error that ended the reader, or nil while it reads.
func (r *Reader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Count returns how many times s was read so far.
func (r *Reader) Count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Count(r.got.Bytes(), []byte(s))
}

// LastRead returns when the last Read with bytes returned.
func (r *Reader) LastRead() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Stopped waits up to a second for the reader to end (after Close), and
// returns its error.
func (r *Reader) Stopped(t testing.TB) error {
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

// ListenAgain listens on the TCP address addr (a fresh loopback port when
// addr is ""), retrying for up to a second while a port that a server just
// closed is not free yet: a server that restarts on its port listens with
// it.
func ListenAgain(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, err
}

// Ticker returns a server handler that writes "tick\n" every d (a
// heartbeat) and drops what it reads, until the connection fails.
func Ticker(d time.Duration) func(net.Conn) {
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

// RequireClosed checks a Tether after Close: werr, the result of a Write
// that was blocked at Close, comes within a second and is nil (the Write went
// through first) or net.ErrClosed; Err, and every later Read and Write,
// report net.ErrClosed.
func RequireClosed(t testing.TB, tt *tether.Tether, werr <-chan error) {
	t.Helper()
	select {
	case err := <-werr:
		if err != nil {
			require.ErrorIs(t, err, net.ErrClosed, "a Write blocked at Close")
		}
	case <-time.After(time.Second):
		t.Fatal("a Write blocked at Close did not return within 1 s")
	}
	require.ErrorIs(t, tt.Err(), net.ErrClosed)
	_, err := tt.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = tt.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)
}

// IsTimeout reports whether err is a timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
