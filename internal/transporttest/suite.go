package transporttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// dial returns a Tether to addr over tr, closed when the test ends.
func dial(t *testing.T, tr Transport, addr string, h tether.DisconnectHandler, opts ...tether.Option) *tether.Tether {
	t.Helper()
	return dialWith(t, tr, tr.Dialer(), addr, h, opts...)
}

// dialWith is dial with d, a Dialer of tr.
func dialWith(t *testing.T, tr Transport, d tether.Dialer, addr string, h tether.DisconnectHandler, opts ...tether.Option) *tether.Tether {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	tt, err := tether.Dial(ctx, d, addr, h, opts...)
	require.NoError(t, err, "tether.Dial(%q) over %s", addr, tr.Name)
	t.Cleanup(func() { tt.Close() })
	return tt
}

// greeted starts a server that greets with "hi", and returns it with a
// Tether to it (and its Recorder) that has read the greeting.
func greeted(t *testing.T, tr Transport) (*Server, *tethertest.Recorder, *tether.Tether) {
	t.Helper()
	srv := StartServer(t, tr, Greet("hi"))
	rec := NewRecorder(nil)
	tt := dial(t, tr, srv.Addr(), rec)
	readString(t, tt, "hi")
	return srv, rec, tt
}

// recv receives from ch, failing the test after a generous timeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: nothing within %v", what, waitTimeout)
		panic("unreachable")
	}
}

// readString reads len(want) bytes from c and checks them.
func readString(t *testing.T, c net.Conn, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err, "io.ReadFull(%d bytes)", len(want))
	require.Equal(t, want, string(buf), "io.ReadFull(%d bytes)", len(want))
}

// roundtrip writes s to c, whose peer echoes, and reads it back.
func roundtrip(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_, err := io.WriteString(c, s)
	require.NoError(t, err, "Write(%q)", s)
	readString(t, c, s)
}

// requireTimeout checks that err is the error of a passed deadline.
func requireTimeout(t *testing.T, err error, op string) {
	t.Helper()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "%s", op)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "%s", op)
	require.True(t, ne.Timeout(), "%s: Timeout() = false, want true", op)
}

// testTransparentReconnect is io-tether's example: the first server writes
// "foo" and closes, the second writes "bar"; one io.ReadFull of 6 bytes
// reads "foobar", and the new connection carries both directions.
func testTransparentReconnect(t *testing.T, tr Transport) {
	srv := StartServer(t, tr, func(ctx context.Context, c net.Conn, n int) {
		if n == 1 {
			io.WriteString(c, "foo")
			return
		}
		io.WriteString(c, "bar")
		Echo(ctx, c, n)
	})
	rec := NewRecorder(nil)
	tt := dial(t, tr, srv.Addr(), rec)

	readString(t, tt, "foobar")
	roundtrip(t, tt, "ping")

	require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, rec.Kinds())
	require.ErrorIs(t, rec.Events()[1].Err, io.EOF, "the Disconnected event's Err")
	require.Equal(t, uint64(2), tt.Generation(), "Generation()")
}

// testReconnectAfterRestart: the server goes away; the Tether's dials fail
// until it listens again, and then a Read that waited all along reads from
// the new connection.
func testReconnectAfterRestart(t *testing.T, tr Transport) {
	srv, rec, tt := greeted(t, tr)

	srv.Stop()
	read := make(chan string, 1)
	go func() {
		buf := make([]byte, 2)
		_, err := io.ReadFull(tt, buf)
		read <- fmt.Sprintf("%q %v", buf, err)
	}()
	ev := rec.WaitFor(t, tether.Unreachable, 1)
	require.False(t, tether.IsPermanent(ev.Err), "IsPermanent(%v), dialing a stopped server", ev.Err)
	srv.Restart()

	require.Equal(t, `"hi" <nil>`, recv(t, read, "the Read that waited for the restart"))
	roundtrip(t, tt, "ping")
	rec.WaitFor(t, tether.Reconnected, 1)
}

// testOneReconnectForReaderAndWriter: a reader blocked on the connection and
// a writer writing to it both meet its end; one reconnect serves both.
func testOneReconnectForReaderAndWriter(t *testing.T, tr Transport) {
	srv := StartServer(t, tr, func(_ context.Context, c net.Conn, n int) {
		io.WriteString(c, strconv.Itoa(n))
		io.Copy(io.Discard, c)
	})
	rec := NewRecorder(nil)
	tt := dial(t, tr, srv.Addr(), rec)
	require.NoError(t, tt.SetDeadline(time.Now().Add(waitTimeout)))
	readString(t, tt, "1")

	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 1)
		_, err := io.ReadFull(tt, buf)
		if err == nil && string(buf) != "2" {
			err = fmt.Errorf("Read = %q, want %q", buf, "2")
		}
		read <- err
	}()
	writing := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		p := make([]byte, 1024)
		cut := false
		for first := true; tt.Generation() < 2; first = false {
			n, err := tt.Write(p)
			if err != nil {
				// The writer may outrun the server's reads until the
				// socket's buffers are full (a loaded machine): the kill
				// then cuts the Write it is in, which WriteWhole reports
				// with the count the lost connection accepted and
				// ErrDropped. Only that one Write, and only cut.
				if cut || n <= 0 || n >= len(p) || !errors.Is(err, tether.ErrDropped) {
					wrote <- fmt.Errorf("Write = %d, %w", n, err)
					return
				}
				cut = true
			}
			if first {
				close(writing)
			}
		}
		_, err := tt.Write(p) // on the new connection
		wrote <- err
	}()
	recv(t, writing, "the writer's first Write")
	srv.KillConns()

	require.NoError(t, recv(t, read, "the reader"), "the reader, across the reconnect")
	require.NoError(t, recv(t, wrote, "the writer"), "the writer, across the reconnect")
	require.NoError(t, tt.Close())
	require.Equal(t, 1, rec.Count(tether.Disconnected), "Disconnected events; events: %v", rec.Kinds())
	require.Equal(t, 1, rec.Count(tether.Reconnected), "Reconnected events; events: %v", rec.Kinds())
	require.Equal(t, 2, srv.Accepted(), "connections the server accepted")
}

// testFullDuplex: a Read blocked on the connection does not block a Write,
// and bulk data flows both ways at once.
func testFullDuplex(t *testing.T, tr Transport) {
	t.Run("WriteWhileReadBlocked", func(t *testing.T) {
		t.Parallel()
		// The server answers only once it has read the Write's bytes, so
		// the Read is blocked until the Write is done.
		srv := StartServer(t, tr, func(_ context.Context, c net.Conn, _ int) {
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			c.Write(append([]byte("re: "), buf...))
			io.Copy(io.Discard, c)
		})
		tt := dial(t, tr, srv.Addr(), NewRecorder(nil))
		require.NoError(t, tt.SetDeadline(time.Now().Add(waitTimeout)))
		read := make(chan string, 1)
		go func() {
			buf := make([]byte, 9)
			_, err := io.ReadFull(tt, buf)
			read <- fmt.Sprintf("%q %v", buf, err)
		}()
		_, err := io.WriteString(tt, "hello")
		require.NoError(t, err, "Write while a Read is blocked")
		require.Equal(t, `"re: hello" <nil>`, recv(t, read, "the blocked Read"))
	})
	t.Run("Bulk", func(t *testing.T) {
		t.Parallel()
		// An echo server stops reading while its writes are blocked: the
		// exchange ends only if the Tether reads while it writes.
		srv := StartServer(t, tr, Echo)
		tt := dial(t, tr, srv.Addr(), NewRecorder(nil))
		require.NoError(t, tt.SetDeadline(time.Now().Add(4*waitTimeout)))
		want := make([]byte, 4<<20)
		rand.Read(want)
		wrote := make(chan error, 1)
		go func() {
			_, err := tt.Write(want)
			wrote <- err
		}()
		got := make([]byte, len(want))
		_, err := io.ReadFull(tt, got)
		require.NoError(t, err, "io.ReadFull of the echo")
		require.NoError(t, recv(t, wrote, "the Write"))
		require.True(t, bytes.Equal(want, got), "the echo differs from what was written")
	})
}

// testDeadlines: deadlines set on the Tether apply to operations waiting
// for a reconnect and to each new connection; a passed deadline is not a
// disconnect.
func testDeadlines(t *testing.T, tr Transport) {
	t.Run("WhileReconnecting", func(t *testing.T) {
		// Not parallel: it stops its server (see Run).
		srv, rec, tt := greeted(t, tr)

		srv.Stop()
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		_, err := tt.Read(make([]byte, 2))
		requireTimeout(t, err, "Read while the server is down")

		rec.WaitFor(t, tether.Unreachable, 1) // the connection is down
		require.NoError(t, tt.SetWriteDeadline(time.Now().Add(200*time.Millisecond)))
		n, err := tt.Write([]byte("lost"))
		requireTimeout(t, err, "Write while the server is down")
		require.Zero(t, n, "Write while the server is down")

		// The reconnect went on: once the server is back and the deadlines
		// are cleared, the Tether works.
		require.NoError(t, tt.SetDeadline(time.Time{}))
		srv.Restart()
		readString(t, tt, "hi")
		roundtrip(t, tt, "ping")
	})
	t.Run("NewConnectionGetsDeadline", func(t *testing.T) {
		t.Parallel()
		srv := StartServer(t, tr, func(_ context.Context, c net.Conn, _ int) {
			io.WriteString(c, "hi")
			io.Copy(io.Discard, c) // then silence
		})
		rec := NewRecorder(nil)
		tt := dial(t, tr, srv.Addr(), rec)
		readString(t, tt, "hi")

		require.NoError(t, tt.SetReadDeadline(time.Now().Add(2*time.Second)))
		srv.KillConns()
		readString(t, tt, "hi") // from the new connection
		require.Equal(t, uint64(2), tt.Generation(), "Generation() after the reconnect")
		_, err := tt.Read(make([]byte, 1))
		requireTimeout(t, err, "Read on the new connection")
		require.Equal(t, uint64(2), tt.Generation(), "Generation() after the timeout")
		require.NoError(t, tt.Close())
		require.Equal(t, 1, rec.Count(tether.Disconnected), "Disconnected events: the timeout is none; events: %v", rec.Kinds())
	})
	t.Run("MovedAfterTimeout", func(t *testing.T) {
		t.Parallel()
		// net.Conn lets one goroutine set a deadline while another reads:
		// a Read that timed out on the user's deadline is the user's
		// timeout even when the deadline moved on before the Tether looked
		// at it (a watchdog that extends deadlines does this). The hook
		// moves it in that instant, as such a goroutine may.
		tt, rec, hooks := startHooked(t, tr)

		require.NoError(t, tt.SetReadDeadline(time.Now().Add(-time.Second)))
		hooks.readTimeout <- func() { tt.SetReadDeadline(time.Now().Add(time.Hour)) }
		n, err := tt.Read(make([]byte, 1))
		require.Equal(t, []tether.EventKind{tether.Connected}, rec.Kinds(),
			"events after a Read timed out on the user's deadline, then the deadline moved (Read = %d, %v): the timeout is no disconnect", n, err)
		requireTimeout(t, err, "Read that timed out before its deadline moved")
		require.NoError(t, tt.SetReadDeadline(time.Time{}))
		roundtrip(t, tt, "ping")
	})
	t.Run("MovedDuringOperation", func(t *testing.T) {
		t.Parallel()
		// A Write that begins while SetWriteDeadline replaces a passed
		// deadline with a future one may meet the passed one: that
		// timeout is the user's too. The hook starts the Write in the
		// instant before the connection gets the new deadline.
		tt, rec, hooks := startHooked(t, tr)

		require.NoError(t, tt.SetWriteDeadline(time.Now().Add(-time.Second)))
		wrote := make(chan error, 1)
		hooks.setWriteDeadline <- func() {
			go func() {
				_, err := tt.Write([]byte("x"))
				wrote <- err
			}()
			// A Tether that makes the Write wait for SetWriteDeadline
			// meets no passed deadline: give up waiting for it then.
			timer := time.NewTimer(2 * time.Second)
			defer timer.Stop()
			select {
			case <-hooks.writeTimedOut:
			case <-timer.C:
			}
		}
		require.NoError(t, tt.SetWriteDeadline(time.Now().Add(time.Hour)))
		err := recv(t, wrote, "the Write that met the passed deadline")
		require.Equal(t, []tether.EventKind{tether.Connected}, rec.Kinds(),
			"events after a Write met the passed deadline while SetWriteDeadline set a future one (Write: %v): the timeout is no disconnect", err)
		if err != nil {
			requireTimeout(t, err, "Write that met the passed deadline")
		}
	})
	t.Run("PassedDeadlineIsNotDisconnect", func(t *testing.T) {
		t.Parallel()
		_, rec, tt := greeted(t, tr)

		require.NoError(t, tt.SetReadDeadline(time.Now().Add(-time.Second)))
		_, err := tt.Read(make([]byte, 1))
		requireTimeout(t, err, "Read past its deadline")
		require.NoError(t, tt.SetReadDeadline(time.Time{}))
		roundtrip(t, tt, "ping")
		require.Equal(t, uint64(1), tt.Generation(), "Generation()")
		require.Equal(t, []tether.EventKind{tether.Connected}, rec.Kinds())
	})
}

// testCloseDuringReconnect: Close interrupts a reconnect wherever it is,
// and every blocked operation returns net.ErrClosed.
func testCloseDuringReconnect(t *testing.T, tr Transport) {
	// closeAndCheck closes tt while read waits for a blocked Read's error.
	closeAndCheck := func(t *testing.T, tt *tether.Tether, read <-chan error) {
		t.Helper()
		closed := make(chan error, 1)
		go func() { closed <- tt.Close() }()
		require.NoError(t, recv(t, closed, "Close during a reconnect"))
		require.ErrorIs(t, recv(t, read, "the blocked Read"), net.ErrClosed, "the blocked Read")
		require.ErrorIs(t, tt.Err(), net.ErrClosed, "Err()")
		WaitClosed(t, tt.Done(), "Done after Close (once the reconnect's goroutine ended)")
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed, "Write after Close")
		if err := tt.Close(); err != nil {
			require.ErrorIs(t, err, net.ErrClosed, "a second Close")
		}
	}
	blockedRead := func(tt *tether.Tether) <-chan error {
		read := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			read <- err
		}()
		return read
	}

	t.Run("BackoffWait", func(t *testing.T) {
		// Not parallel: it stops its server (see Run).
		srv := StartServer(t, tr, Greet("hi"))
		rec := NewRecorder(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Unreachable {
				ev.Delay = time.Hour
			}
			return tether.Reconnect
		})
		tt := dial(t, tr, srv.Addr(), rec)
		readString(t, tt, "hi")
		srv.Stop()
		read := blockedRead(tt)
		rec.WaitFor(t, tether.Unreachable, 1)
		closeAndCheck(t, tt, read)
	})
	t.Run("OnConnect", func(t *testing.T) {
		t.Parallel()
		entered := make(chan struct{})
		secondEnded := make(chan struct{})
		srv := StartServer(t, tr, func(ctx context.Context, c net.Conn, n int) {
			io.WriteString(c, "hi")
			Echo(ctx, c, n)
			if n == 2 {
				close(secondEnded)
			}
		})
		calls := 0
		hook := func(ctx context.Context, _ net.Conn) error {
			if calls++; calls == 1 {
				return nil
			}
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		tt := dial(t, tr, srv.Addr(), NewRecorder(nil), tether.WithOnConnect(hook))
		readString(t, tt, "hi")
		srv.KillConns()
		read := blockedRead(tt)
		recv(t, entered, "OnConnect on the new connection")
		closeAndCheck(t, tt, read)
		// The connection in OnConnect was closed too.
		recv(t, secondEnded, "the server's end of the connection in OnConnect")
	})
}

// testGiveUp: after the handler gives up, operations fail with the cause,
// Done is closed and Err tells why.
func testGiveUp(t *testing.T, tr Transport) {
	requireDone := func(t *testing.T, tt *tether.Tether) {
		t.Helper()
		select {
		case <-tt.Done():
		default:
			t.Fatal("Done() is not closed after the give-up")
		}
	}
	t.Run("OnUnreachable", func(t *testing.T) {
		// Not parallel: it stops its server (see Run).
		srv := StartServer(t, tr, Greet("hi"))
		rec := NewRecorder(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Unreachable {
				return tether.GiveUp
			}
			return tether.Reconnect
		})
		tt := dial(t, tr, srv.Addr(), rec)
		readString(t, tt, "hi")
		srv.Stop()

		_, err := tt.Read(make([]byte, 1))
		dialErr := rec.WaitFor(t, tether.Unreachable, 1).Err
		require.Error(t, dialErr, "the Unreachable event's Err")
		require.ErrorIs(t, err, tether.ErrGaveUp, "Read after the give-up")
		require.ErrorIs(t, err, dialErr, "Read after the give-up")
		require.Equal(t, dialErr, tt.Err(), "Err()")
		requireDone(t, tt)
		_, err = tt.Write([]byte("x"))
		require.ErrorIs(t, err, tether.ErrGaveUp, "Write after the give-up")
		require.NotErrorIs(t, err, io.EOF, "Write after the give-up")
	})
	t.Run("OnEOF", func(t *testing.T) {
		t.Parallel()
		srv := StartServer(t, tr, func(_ context.Context, c net.Conn, _ int) {
			io.WriteString(c, "bye")
		})
		rec := NewRecorder(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected && errors.Is(ev.Err, io.EOF) {
				return tether.GiveUp
			}
			return Fast(ev)
		})
		tt := dial(t, tr, srv.Addr(), rec)

		got, err := io.ReadAll(tt)
		require.NoError(t, err, "io.ReadAll")
		require.Equal(t, "bye", string(got), "io.ReadAll")
		_, err = tt.Read(make([]byte, 1))
		require.Equal(t, io.EOF, err, "Read after the give-up")
		require.Equal(t, io.EOF, tt.Err(), "Err()")
		requireDone(t, tt)
		_, err = tt.Write([]byte("x"))
		require.ErrorIs(t, err, tether.ErrGaveUp, "Write after the give-up")
		require.ErrorIs(t, err, tether.ErrPeerClosed, "Write after the give-up")
		require.NotErrorIs(t, err, io.EOF, "Write after the give-up")
	})
	t.Run("CauseSetByHandler", func(t *testing.T) {
		t.Parallel()
		errBanned := errors.New("banned by the test")
		srv := StartServer(t, tr, func(context.Context, net.Conn, int) {})
		rec := NewRecorder(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				ev.Err = errBanned
				return tether.GiveUp
			}
			return Fast(ev)
		})
		tt := dial(t, tr, srv.Addr(), rec)

		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, tether.ErrGaveUp, "Read after the give-up")
		require.ErrorIs(t, err, errBanned, "Read after the give-up")
		require.Equal(t, errBanned, tt.Err(), "Err()")
		requireDone(t, tt)
	})
}

// hooks let a test act inside a connection's methods, at the instants
// where a Tether meets a race with its user.
type hooks struct {
	readTimeout      chan func()   // run once when a Read times out, before it returns
	setWriteDeadline chan func()   // run once by SetWriteDeadline, before it applies
	writeTimedOut    chan struct{} // a Write timed out
}

// startHooked starts a server that greets with "hi" and then echoes, dials
// it with each connection wrapped to run the hooks it returns, and reads
// the greeting.
func startHooked(t *testing.T, tr Transport) (*tether.Tether, *tethertest.Recorder, *hooks) {
	t.Helper()
	srv := StartServer(t, tr, Greet("hi"))
	rec := NewRecorder(nil)
	h := &hooks{
		readTimeout:      make(chan func(), 1),
		setWriteDeadline: make(chan func(), 1),
		writeTimedOut:    make(chan struct{}, 1),
	}
	d := tr.Dialer()
	tt := dialWith(t, tr, tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.Dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		return &hookConn{Conn: c, h: h}, nil
	}), srv.Addr(), rec)
	readString(t, tt, "hi")
	return tt, rec, h
}

// hookConn is a connection that runs hooks.
type hookConn struct {
	net.Conn
	h *hooks
}

func (c *hookConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		select {
		case f := <-c.h.readTimeout:
			f()
		default:
		}
	}
	return n, err
}

func (c *hookConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		select {
		case c.h.writeTimedOut <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (c *hookConn) SetWriteDeadline(t time.Time) error {
	select {
	case f := <-c.h.setWriteDeadline:
		f()
	default:
	}
	return c.Conn.SetWriteDeadline(t)
}
