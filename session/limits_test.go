package session_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
)

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// 1,000 connections that never say a word cost at most the handshake cap
// in goroutines, each for at most the handshake timeout, and a client that
// behaves still gets through.
func TestHalfOpenFlood(t *testing.T) {
	defer goleak.VerifyNone(t)
	const capHS = 32
	sl := session.NewListener(listen(t), session.WithMaxHandshakes(capHS), session.WithHandshakeTimeout(500*time.Millisecond))
	defer sl.Close()
	go echo(sl)
	addr := sl.Addr().String()

	base := runtime.NumGoroutine()
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	conns := make([]net.Conn, 0, 1000)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	peak := 0
	for range 1000 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
		peak = max(peak, runtime.NumGoroutine())
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	// Each handshake in progress is one goroutine.
	require.LessOrEqual(t, peak-base, capHS+8, "goroutines during the flood")
	require.Less(t, int64(ms1.HeapInuse)-int64(ms0.HeapInuse), int64(16<<20), "heap during the flood")

	// A good client, with the flood still open, gets a session.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	c, err := session.Dial(ctx, &tethertcp.Dialer{}, addr, quick())
	require.NoError(t, err)
	defer c.Close()
	t.Logf("a good client got through in %v", time.Since(start).Round(time.Millisecond))
	write(t, c, "ping")
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))
}

// A connection that sends nothing is dropped after the handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t), session.WithHandshakeTimeout(200*time.Millisecond))
	defer sl.Close()
	raw, err := net.Dial("tcp", sl.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(raw) // the server's preface, then the end
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
}

// Beyond the session cap a new session is refused, as a transient error:
// the client's handler decides, and gets through once a session ends.
func TestMaxSessions(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t), session.WithMaxSessions(2), session.WithLinger(0))
	defer sl.Close()
	go echo(sl)
	addr := sl.Addr().String()
	dial := func(h tether.DisconnectHandler) (*session.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return session.Dial(ctx, &tethertcp.Dialer{}, addr, h, session.WithLinger(0))
	}
	a, err := dial(quick())
	require.NoError(t, err)
	defer a.Close()
	b, err := dial(quick())
	require.NoError(t, err)
	_, err = dial(tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		return tether.GiveUp
	}))
	require.ErrorContains(t, err, "too many sessions")
	require.False(t, tether.IsPermanent(err))
	b.Close()
	c, err := dial(quick())
	require.NoError(t, err)
	c.Close()
}

// A session that ended while it waited for Accept (its client wrote and
// closed) still holds what it received, until Accept takes it: it counts
// toward the session cap until then, and Accept returns it with its bytes.
func TestEndedSessionsCountUntilAccepted(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t), session.WithMaxSessions(2))
	defer sl.Close()
	addr := sl.Addr().String()
	payload := make([]byte, 256<<10)
	dial := func(h tether.DisconnectHandler) (*session.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return session.Dial(ctx, &tethertcp.Dialer{}, addr, h)
	}
	for i := range 2 {
		c, err := dial(quick())
		require.NoError(t, err, "dial %d", i)
		_, err = c.Write(payload)
		require.NoError(t, err)
		require.NoError(t, c.Close(), "the server acknowledged every byte, unaccepted")
	}
	require.Equal(t, 2, sl.Len())
	_, err := dial(tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.GiveUp }))
	require.ErrorContains(t, err, "too many sessions", "the ended sessions still hold their bytes")
	for range 2 {
		s, err := sl.AcceptSession()
		require.NoError(t, err)
		got, err := io.ReadAll(s)
		require.NoError(t, err)
		require.Len(t, got, len(payload))
		s.Close()
	}
	require.Equal(t, 0, sl.Len())
	c, err := dial(quick())
	require.NoError(t, err, "accepted, they no longer count")
	c.Close()
}

// A client with a small buffer writing to a server with a large one gets
// its acks after half its buffer, not after the server's ack threshold
// or its ack delay: 256 KiB through a 16 KiB buffer take well under a
// second (at one buffer per ack delay, they took 1.6 s).
func TestSmallBufferGetsTimelyAcks(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t), session.WithLinger(0))
	defer sl.Close()
	go func() {
		s, err := sl.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, s)
		s.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil, session.WithBufferSize(16<<10), session.WithLinger(0))
	require.NoError(t, err)
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	n, err := c.Write(make([]byte, 256<<10))
	require.NoError(t, err, "%d bytes in %v", n, time.Since(start))
	require.Less(t, time.Since(start), time.Second)
}

// A peer that never reads: the writer blocks once its buffer and the
// peer's are full, and memory stays bounded by them.
func TestPeerNeverReads(t *testing.T) {
	defer goleak.VerifyNone(t)
	const buf = 256 << 10
	sl := session.NewListener(listen(t), session.WithBufferSize(buf))
	defer sl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), quick(), session.WithBufferSize(buf), session.WithLinger(0))
	require.NoError(t, err)
	s, err := sl.AcceptSession() // and never reads
	require.NoError(t, err)
	defer s.Close()

	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	chunk := make([]byte, 32<<10)
	total := 0
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(time.Second)))
	var werr error
	for werr == nil && total < 64*buf {
		var n int
		n, werr = c.Write(chunk)
		total += n
	}
	require.ErrorIs(t, werr, os.ErrDeadlineExceeded, "the writer must block at the bound")
	// What the peer's buffer took, plus this end's: no more.
	require.GreaterOrEqual(t, total, buf)
	require.LessOrEqual(t, total, 2*buf)
	runtime.GC() // what stays live: the buffers
	runtime.ReadMemStats(&ms1)
	require.Less(t, int64(ms1.HeapInuse)-int64(ms0.HeapInuse), int64(8*buf), "heap while blocked")

	// Close unblocks a blocked Write.
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(chunk)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	require.ErrorIs(t, <-errc, net.ErrClosed)
}

// While the peer acknowledges, Write holds a few round trips' worth; once
// the acks stop (here the peer never reads, and its window, still the
// initial one, is full), it fills the whole buffer, as in an outage.
func TestWriteFillsBufferWhenAcksStop(t *testing.T) {
	t.Parallel() // TestMain checks for leaks
	const buf = session.DefaultBufferSize
	sl := session.NewListener(listen(t))
	defer sl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), quick(), session.WithLinger(0))
	require.NoError(t, err)
	defer c.Close()
	s, err := sl.AcceptSession() // and never reads
	require.NoError(t, err)
	defer s.Close()

	chunk := make([]byte, 32<<10)
	total := 0
	// Generous, for a loaded machine: filling takes milliseconds.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(10*time.Second)))
	for total < buf+session.InitialWindow {
		n, err := c.Write(chunk)
		total += n
		require.NoError(t, err, "after %d bytes: the peer's window, then this end's whole buffer, fit", total)
	}
	// Both full: the next Write blocks until its deadline.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(200*time.Millisecond)))
	n, err := c.Write(chunk)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Zero(t, n, "written beyond the peer's window and this end's buffer")
}

// A CloseWrite that comes while a large Write copies into the buffer
// (without the session's lock) ends the stream after what that Write
// returned as buffered: the peer reads exactly that, then io.EOF.
func TestCloseWriteDuringLargeWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	const buf = 16 << 20
	p := make([]byte, buf)
	for i := range 8 {
		sl := session.NewListener(listen(t), session.WithBufferSize(buf), session.WithLinger(0))
		type result struct {
			n   int64
			err error
		}
		got := make(chan result, 1)
		go func() {
			s, err := sl.Accept()
			if err != nil {
				got <- result{0, err}
				return
			}
			n, err := io.Copy(io.Discard, s)
			got <- result{n, err}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), quick(), session.WithBufferSize(buf), session.WithLinger(0))
		cancel()
		require.NoError(t, err)
		_, err = c.Write([]byte("hello"))
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond) // sent: a final frame could go at once
		written := make(chan int, 1)
		go func() {
			n, _ := c.Write(p)
			written <- n
		}()
		time.Sleep(time.Duration(i) * time.Millisecond)
		require.NoError(t, c.CloseWrite())
		n := 5 + <-written
		var r result
		select {
		case r = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("iteration %d: the peer did not reach the end", i)
		}
		require.NoError(t, r.err, "iteration %d", i)
		require.EqualValues(t, n, r.n, "iteration %d: what the peer read, against what Write buffered", i)
		c.Close()
		sl.Close()
	}
}

// A session client against a plain server fails at once, permanently,
// and says why.
func TestPlainServer(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name  string
		serve func(c net.Conn)
		said  string // how the error tells what the server sent
	}{
		{"echo", func(c net.Conn) { io.Copy(c, c) }, "it sent this end's own preface back (an echo server?)"},
		{"greeting", func(c net.Conn) { c.Write([]byte("220 ready\r\n")); io.Copy(io.Discard, c) }, `it sent "220 ready`},
		{"close", func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, `it sent "HTTP/1.1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer ln.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() { defer wg.Done(); defer c.Close(); tc.serve(c) }()
				}
			}()
			start := time.Now()
			// The default policy: it retries transient errors for ever.
			_, err := session.Dial(context.Background(), &tethertcp.Dialer{}, ln.Addr().String(), nil)
			require.ErrorIs(t, err, session.ErrNotSession)
			require.True(t, tether.IsPermanent(err))
			// The session's own words: the Tether's OnConnect hook is the
			// session's, not the caller's.
			require.True(t, strings.HasPrefix(err.Error(), "tether/session: handshake with "+ln.Addr().String()+": peer does not speak tether-session (preface mismatch): "+tc.said), "Dial = %v", err)
			require.Less(t, time.Since(start), time.Second)
		})
	}
}

// A plain client against a session server gets the server's preface and
// the end at once; the server logs why.
func TestPlainClient(t *testing.T) {
	defer goleak.VerifyNone(t)
	var log bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sl := session.NewListener(listen(t), session.WithLogger(logger))
	defer sl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A plain Tether, as a client of a plain server would be.
	tc, err := tethertcp.Dial(ctx, sl.Addr().String(), tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Connected {
			return tether.Reconnect // accept it
		}
		return tether.GiveUp
	}))
	require.NoError(t, err)
	defer tc.Close()
	start := time.Now()
	_, err = tc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	got, err := io.ReadAll(tc)
	require.NoError(t, err)
	require.Less(t, time.Since(start), time.Second)
	require.True(t, bytes.HasPrefix(got, []byte("tether-session\x01S")), "got %q", got)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Contains(log.Bytes(), []byte("does not speak tether-session"))
	}, 5*time.Second, 10*time.Millisecond, "the server's log says why")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Options the session owns, and options for the other end, are errors.
func TestBadOptions(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	d := &tethertcp.Dialer{}
	_, err := session.Dial(ctx, d, "127.0.0.1:1", nil, session.WithTether(tether.WithOnConnect(func(context.Context, net.Conn) error { return nil })))
	require.ErrorContains(t, err, "OnConnect")
	_, err = session.Dial(ctx, d, "127.0.0.1:1", nil, session.WithTether(tether.WithReconnectBoundary()))
	require.ErrorContains(t, err, "reconnect boundary")
	_, err = session.Dial(ctx, d, "127.0.0.1:1", nil, session.WithTether(tether.WithStabilityPeriod(time.Second), tether.WithWritePolicy(tether.WriteResume)))
	require.ErrorContains(t, err, "write policy")
	_, err = session.Dial(ctx, d, "127.0.0.1:1", nil, session.WithMaxSessions(3))
	require.ErrorContains(t, err, "listener option")
	_, err = session.Dial(ctx, d, "127.0.0.1:1", nil, session.WithBufferSize(10))
	require.ErrorContains(t, err, "buffer size")
	_, err = session.Dial(ctx, d, "127.0.0.1:1", nil, session.WithTether(tether.WithStabilityPeriod(-1)))
	require.ErrorContains(t, err, "negative stability period")
	_, err = session.Dial(ctx, nil, "127.0.0.1:1", nil)
	require.Error(t, err)
	sl := session.NewListener(listen(t), session.WithTether())
	_, err = sl.Accept()
	require.ErrorContains(t, err, "WithTether")
	require.NoError(t, sl.Close())
	sl = session.NewListener(nil)
	_, err = sl.Accept()
	require.ErrorContains(t, err, "nil net.Listener")
	require.False(t, errors.Is(err, net.ErrClosed))
}

// Cancelling Dial's ctx interrupts the handshake at once, as it would any
// dial: a server that accepts and stays silent held Dial for the whole
// handshake timeout.
func TestDialCtxInterruptsHandshake(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the server's own cleanup
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Silent)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := session.Dial(ctx, &tethertcp.Dialer{}, srv.Addr(), nil, session.WithHandshakeTimeout(10*time.Second))
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 5*time.Second, "the handshake timeout is 10 s")
}

// A server that takes the connection and says nothing: the handler hears
// that the handshake with it got no answer within the timeout.
func TestHandshakeTimeoutNamed(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the server's own cleanup
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Silent)
	rec := &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action {
		return tether.GiveUp
	})}
	_, err := session.Dial(context.Background(), &tethertcp.Dialer{}, srv.Addr(), rec,
		session.WithHandshakeTimeout(100*time.Millisecond))
	require.Error(t, err)
	ev := rec.WaitFor(t, tether.Unreachable, 1)
	require.ErrorContains(t, ev.Err, "tether/session: handshake with "+srv.Addr()+": no answer within the handshake timeout (100ms): ")
}

// Dial's ctx that ends first is not taken for the handshake timeout. (The
// client times its handshake itself: the Tether's OnConnect timeout began
// a moment before the hook, and the error of a handshake that ran out
// lacked the timeout's words, under load, by that moment.)
func TestDialDeadlineIsNoHandshakeTimeout(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the server's own cleanup
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Silent)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := session.Dial(ctx, &tethertcp.Dialer{}, srv.Addr(), nil, session.WithHandshakeTimeout(10*time.Second))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "handshake timeout")
}

// A Listener owns its inner listener even when its options were bad: Close
// closes it.
func TestBadOptionsListenerClosesInner(t *testing.T) {
	ln := listen(t)
	sl := session.NewListener(ln, session.WithTether())
	_, err := sl.Accept()
	require.ErrorContains(t, err, "WithTether")
	require.NoError(t, sl.Close())
	require.ErrorIs(t, ln.Close(), net.ErrClosed, "the inner listener was left open")
	require.ErrorIs(t, sl.Close(), net.ErrClosed)
}

// WithTether's options are checked without showing the check to them: a
// state observer sees the session's Tether alone. WithLazy, which a
// session cannot take, gets a clear error.
func TestTetherOptionsCheckUnseen(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t))
	defer sl.Close()
	var mu sync.Mutex
	var seen []string
	obs := tether.WithStateObserver(func(from, to tether.State, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, from.String()+"->"+to.String())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil, session.WithTether(obs))
	require.NoError(t, err)
	mu.Lock()
	require.Equal(t, []string{"connecting->connecting", "connecting->ready"}, seen)
	mu.Unlock()
	c.Close()
	_, err = session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil, session.WithTether(tether.WithLazy()))
	require.ErrorContains(t, err, "WithLazy does not go with a session")
}

// A server that takes the connection and closes it before its preface (a
// TLS port spoken to in plain TCP, a server at its cap): the error says so
// and hints at why, and stays transient.
func TestServerClosesBeforePreface(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the server's own cleanup
	srv := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, c net.Conn, n int) {
		// A clean end: a Close with the client's hello unread would
		// reset the connection instead.
		c.(*net.TCPConn).CloseWrite()
		transporttest.Silent(ctx, c, n)
	})
	rec := &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action {
		return tether.GiveUp
	})}
	_, err := session.Dial(context.Background(), &tethertcp.Dialer{}, srv.Addr(), rec)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	ev := rec.WaitFor(t, tether.Unreachable, 1)
	require.ErrorContains(t, ev.Err, "tether/session: handshake with "+srv.Addr()+": the server closed the connection before its preface (a TLS port?")
	require.False(t, tether.IsPermanent(ev.Err))
}
