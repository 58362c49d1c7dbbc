package tether_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// Semantics 1: a reconnect between two reads is invisible to the reader.
func TestTransparentReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r)

		got := readAsync(tt, 6)
		s1 := d.Server(t)
		_, err := s1.Write([]byte("foo"))
		require.NoError(t, err)
		s1.Close()
		s2 := d.Server(t)
		_, err = s2.Write([]byte("bar"))
		require.NoError(t, err)

		requireRead(t, got, "foobar")
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
		require.Equal(t, io.EOF, r.Events()[1].Err, "a clean close is reported as io.EOF")
		require.Equal(t, uint64(2), tt.Generation())
	})
}

// Semantics 2: a reader and a writer that both see the loss cause one
// reconnect sequence.
func TestOneReconnectPerLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r)
		s1 := d.Server(t)

		got := readAsync(tt, 4)
		wrote := writeAsync(tt, "ping")
		synctest.Wait() // both blocked on the pipe
		s1.Close()

		s2 := d.Server(t)
		require.Equal(t, "ping", readString(t, s2, 4), "the write that failed goes to the new connection")
		require.NoError(t, (<-wrote).err)
		_, err := s2.Write([]byte("pong"))
		require.NoError(t, err)
		requireRead(t, got, "pong")

		synctest.Wait()
		require.Equal(t, 2, d.Dials())
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
	})
}

// stuckConn is a connection whose Read ignores Close and returns only when
// released: it stands for an error that arrives late.
type stuckConn struct {
	net.Conn
	release chan error
}

func (c *stuckConn) Read(p []byte) (int, error) { return 0, <-c.release }

// Semantics 2: an error from connection N that arrives once N+1 is up
// triggers nothing (generations).
func TestStaleErrorTriggersNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := &stuckConn{release: make(chan error)}
		d := wrapFirst(func(c net.Conn) net.Conn {
			stuck.Conn = c
			return stuck
		})
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r)
		s1 := d.Server(t)

		got := readAsync(tt, 3)
		synctest.Wait()
		s1.Close()
		wrote := writeAsync(tt, "x") // fails on generation 1, reconnects
		s2 := d.Server(t)
		buf := make([]byte, 1)
		_, err := io.ReadFull(s2, buf)
		require.NoError(t, err)
		require.NoError(t, (<-wrote).err)
		synctest.Wait()
		require.Equal(t, uint64(2), tt.Generation())

		stuck.release <- errors.New("late error from generation 1")
		_, err = s2.Write([]byte("abc"))
		require.NoError(t, err)
		requireRead(t, got, "abc")
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
		require.Equal(t, 2, d.Dials())
	})
}

// Semantics 3: a Read blocked on the connection does not block a Write, and a
// Write queued behind another honours its own deadline and Close.
func TestFullDuplex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil)
		s := d.Server(t)

		got := readAsync(tt, 1)
		synctest.Wait()
		// The read is blocked; a write goes through.
		go func() { io.ReadFull(s, make([]byte, 5)) }()
		n, err := tt.Write([]byte("hello"))
		require.NoError(t, err)
		require.Equal(t, 5, n)

		// A write blocked on the connection (nobody reads), and one queued
		// behind it: the queued one returns at its deadline.
		first := writeAsync(tt, "blocked")
		synctest.Wait()
		start := time.Now()
		require.NoError(t, tt.SetWriteDeadline(start.Add(time.Second)))
		_, err = tt.Write([]byte("queued"))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))
		require.ErrorIs(t, (<-first).err, os.ErrDeadlineExceeded)

		// A queued write returns net.ErrClosed on Close.
		require.NoError(t, tt.SetWriteDeadline(time.Time{}))
		first = writeAsync(tt, "blocked again")
		synctest.Wait()
		queued := writeAsync(tt, "queued")
		synctest.Wait()
		require.NoError(t, tt.Close())
		require.ErrorIs(t, (<-queued).err, net.ErrClosed)
		require.ErrorIs(t, (<-first).err, net.ErrClosed)
		require.ErrorIs(t, (<-got).err, net.ErrClosed)
	})
}

// scriptConn returns scripted results from Read, then behaves as its Conn.
type scriptConn struct {
	net.Conn
	reads []result
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if len(c.reads) > 0 {
		r := c.reads[0]
		c.reads = c.reads[1:]
		return copy(p, r.s), r.err
	}
	return c.Conn.Read(p)
}

// Semantics 4: a Read that got bytes with an error delivers the bytes first.
func TestReadBytesWithError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapFirst(func(c net.Conn) net.Conn { return &scriptConn{Conn: c, reads: []result{{s: "abc", err: io.EOF}}} })
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r)
		buf := make([]byte, 10)
		m, err := tt.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "abc", string(buf[:m]))
		require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds(), "no reconnect before the bytes are delivered")

		got := readAsync(tt, 3)
		d.Server(t)
		s2 := d.Server(t)
		_, err = s2.Write([]byte("def"))
		require.NoError(t, err)
		requireRead(t, got, "def")
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
		require.Equal(t, io.EOF, r.Events()[1].Err)
	})
}

// Semantics 5: after a give-up on a clean EOF, Read returns io.EOF so that
// io.ReadAll ends normally, Write returns an error that is not io.EOF, Done
// is closed and Err says why.
func TestGiveUpOnCleanEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := giveUpOn(tether.Disconnected)
		tt, d := dialPipe(t, r)
		requireReadAllOfLastWords(t, tt, d.Server(t))

		select {
		case <-tt.Done():
		default:
			t.Fatal("Done() is not closed after a give-up")
		}
		require.Equal(t, io.EOF, tt.Err())
		_, err := tt.Write([]byte("x"))
		require.Error(t, err)
		require.NotEqual(t, io.EOF, err)
		require.ErrorIs(t, err, tether.ErrGaveUp)
		n, err := tt.Read(make([]byte, 1))
		require.Equal(t, 0, n)
		require.Equal(t, io.EOF, err)
		require.Equal(t, 1, d.Dials())
	})
}

// Semantics 5: a handler that gives up may set the error reported, and the
// propagation option picks what operations return.
func TestGiveUpErrorPropagation(t *testing.T) {
	custom := errors.New("policy says stop")
	for _, tc := range []struct {
		name      string
		prop      tether.Propagation
		setErr    bool
		wantErr   error // what Err reports
		wantRead  error // errors.Is target of Read's error (nil: io.EOF exactly)
		wantWrite error
	}{
		{"cause", tether.PropagateCause, false, errRefused, errRefused, errRefused},
		{"handler's error", tether.PropagateCause, true, custom, custom, custom},
		{"io", tether.PropagateIO, false, errRefused, nil, tether.ErrPeerClosed},
		{"none", tether.PropagateNone, false, errRefused, nil, tether.ErrGaveUp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := decide(func(ev *tether.Event) tether.Action {
					if ev.Kind == tether.Unreachable {
						if tc.setErr {
							ev.Err = custom
						}
						return tether.GiveUp
					}
					return tether.Reconnect
				})
				tt, d := dialPipe(t, r, tether.WithErrorPropagation(tc.prop))
				d.FailWhen(func(int, string) error { return errRefused })
				d.Server(t).Close() // the peer closes: io.EOF, then the dial fails

				_, rerr := tt.Read(make([]byte, 1))
				_, werr := tt.Write([]byte("x"))
				<-tt.Done()
				require.Equal(t, tc.wantErr, tt.Err())
				if tc.wantRead == nil {
					require.Equal(t, io.EOF, rerr)
				} else {
					require.ErrorIs(t, rerr, tc.wantRead)
					require.ErrorIs(t, rerr, tether.ErrGaveUp)
				}
				require.ErrorIs(t, werr, tc.wantWrite)
				require.ErrorIs(t, werr, tether.ErrGaveUp)
				require.NotEqual(t, io.EOF, werr)
			})
		})
	}
}

// Semantics 7: Close returns at once during a backoff wait, and blocked
// operations return net.ErrClosed.
func TestCloseDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(time.Hour))
		d.Server(t).Close()
		got := readAsync(tt, 1)
		synctest.Wait()
		start := time.Now()
		require.NoError(t, tt.Close())
		require.ErrorIs(t, (<-got).err, net.ErrClosed)
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
		synctest.Wait() // the outage's goroutine is gone
		require.Zero(t, time.Since(start))
		require.Equal(t, 1, d.Dials())
		require.ErrorIs(t, tt.Err(), net.ErrClosed)
	})
}

// Done is closed once no handler runs: a handler that winds down for a
// second after Close cancelled its ctx delays Done (not Close), so that once
// Done is closed no event reaches the handler, and a channel that Notify
// sends to may be closed. (Close closed Done, and the handler's event came
// after it: the consumer's close of the channel made Notify panic.) Done
// asked for before Close and after it behave alike.
func TestDoneWaitsForHandler(t *testing.T) {
	for _, early := range []bool{true, false} {
		t.Run(fmt.Sprintf("asked-before-close=%v", early), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var running atomic.Bool
				tt, d := dialPipe(t, tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
					if ev.Kind == tether.Disconnected {
						running.Store(true)
						defer running.Store(false)
						<-ctx.Done()
						time.Sleep(time.Second)
					}
					return tether.Reconnect
				}))
				var done <-chan struct{}
				if early {
					done = tt.Done()
				}
				d.Server(t).Close()
				got := readAsync(tt, 1)
				synctest.Wait()
				require.True(t, running.Load(), "the handler runs")
				start := time.Now()
				require.NoError(t, tt.Close())
				require.ErrorIs(t, (<-got).err, net.ErrClosed)
				require.Zero(t, time.Since(start), "the Read waited for the handler")
				if !early {
					done = tt.Done()
				}
				synctest.Wait()
				select {
				case <-done:
					t.Fatal("Done is closed while the handler runs")
				default:
				}
				<-done
				require.False(t, running.Load(), "the handler runs after Done")
				require.Equal(t, time.Second, time.Since(start))
			})
		})
	}
}

// Semantics 7: Close interrupts a slow dial.
func TestCloseDuringSlowDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, tether.DisconnectHandlerFunc(
			func(context.Context, *tether.Event) tether.Action { return tether.Reconnect }))
		d.Hold() // never released
		d.Server(t).Close()
		got := readAsync(tt, 1)
		synctest.Wait()
		require.Equal(t, 2, d.Dials(), "the redial is in progress")
		require.NoError(t, tt.Close())
		require.ErrorIs(t, (<-got).err, net.ErrClosed)
		synctest.Wait()
	})
}

// Semantics 7: Close interrupts OnConnect, closing the fresh connection.
func TestCloseDuringOnConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		hookErr := make(chan error, 1)
		tt, d := dialPipe(t, nil,
			tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
				if calls.Add(1) == 1 {
					return nil
				}
				_, err := c.Read(make([]byte, 1)) // waits for a hello that never comes
				hookErr <- err
				return err
			}))
		d.Server(t).Close()
		got := readAsync(tt, 1)
		d.Server(t) // the second connection, in OnConnect
		synctest.Wait()
		require.NoError(t, tt.Close())
		require.ErrorIs(t, (<-got).err, net.ErrClosed)
		require.Error(t, <-hookErr, "the hook's connection was closed")
		synctest.Wait()
	})
}

// Semantics 7: a second Close returns net.ErrClosed; Close after a give-up
// returns nil and Err keeps the cause.
func TestCloseIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil)
		require.NoError(t, tt.Close())
		require.ErrorIs(t, tt.Close(), net.ErrClosed)
		require.ErrorIs(t, tt.Err(), net.ErrClosed)

		tt = tethertest.Dial(t, d, "a", giveUpOn(tether.Disconnected))
		d.Server(t)
		s := d.Server(t)
		s.Close()
		_, err := tt.Read(make([]byte, 1))
		require.Equal(t, io.EOF, err)
		require.NoError(t, tt.Close())
		require.Equal(t, io.EOF, tt.Err(), "Err keeps the first cause")
		_, err = tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

// Semantics 8: a healthy Tether has no goroutine; a reconnect's goroutine
// ends with the outage.
func TestNoGoroutineWhenHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		var ts []*tether.Tether
		for range 50 {
			ts = append(ts, tethertest.Dial(t, d, "a", nil))
		}
		synctest.Wait()
		require.Zero(t, tetherGoroutines(), "healthy Tethers")

		d.Server(t).Close()
		got := readAsync(ts[0], 1)
		synctest.Wait()
		require.Equal(t, 1, tetherGoroutines(), "the outage's")
		for range 49 {
			d.Server(t)
		}
		go d.Server(t).Write([]byte("x"))
		require.NoError(t, (<-got).err)
		synctest.Wait()
		require.Zero(t, tetherGoroutines(), "after the outage")
	})
}

// Semantics 9: a server that accepts and closes at once, or refuses, does not
// make the default policy spin.
func TestDefaultPolicyDoesNotSpin(t *testing.T) {
	for _, fault := range []string{"accept-and-close", "refuse"} {
		t.Run(fault, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt, d := dialPipe(t, nil)
				if fault == "refuse" {
					d.FailWhen(func(int, string) error { return errRefused })
				}
				go d.Serve(t.Context(), func(*tethertest.Conn) {}) // the server closes each connection at once
				tt.SetReadDeadline(time.Now().Add(10 * time.Minute))
				_, err := tt.Read(make([]byte, 1))
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				n := d.Dials()
				// 10 minutes of backoff from 1 s ×1.6 capped at 120 s:
				// about a dozen dials; a spinning policy makes millions.
				require.Greater(t, n, 5)
				require.Less(t, n, 25, "dials in 10 minutes")
				dials := d.History()
				for i := 3; i < len(dials); i++ {
					gap := dials[i].At.Sub(dials[i-1].At)
					require.GreaterOrEqual(t, gap, 800*time.Millisecond, "gap before dial %d", i)
				}
			})
		})
	}
}

// Semantics 10: bad input gets a clear error, never a panic.
func TestBadInput(t *testing.T) {
	d := &tethertest.Dialer{}
	for _, tc := range []struct {
		name string
		dial func() (*tether.Tether, error)
		want string
	}{
		{"nil dialer", func() (*tether.Tether, error) { return tether.Dial(t.Context(), nil, "a", nil) }, "tether: nil Dialer"},
		{"empty address", func() (*tether.Tether, error) { return tether.Dial(t.Context(), d, "", nil) }, "tether: empty address"},
		{"nil context", func() (*tether.Tether, error) {
			var ctx context.Context
			return tether.Dial(ctx, d, "a", nil)
		}, "tether: nil Context"},
		{"nil DialerFunc", func() (*tether.Tether, error) {
			return tether.Dial(t.Context(), tether.DialerFunc(nil), "a", nil)
		}, "tether: nil DialerFunc"},
		{"nil DisconnectHandlerFunc", func() (*tether.Tether, error) {
			return tether.Dial(t.Context(), d, "a", tether.DisconnectHandlerFunc(nil))
		}, "tether: nil DisconnectHandlerFunc"},
		{"nil DisconnectHandlerFunc in a chain", func() (*tether.Tether, error) {
			h := tether.Chain(tether.DisconnectHandlerFunc(nil), func(next tether.DisconnectHandler) tether.DisconnectHandler {
				return tether.DisconnectHandlerFunc(next.HandleDisconnect)
			})
			return tether.Dial(t.Context(), d, "a", h)
		}, "tether: nil DisconnectHandlerFunc"},
		{"unknown action", func() (*tether.Tether, error) {
			return tether.Dial(t.Context(), d, "a", tether.DisconnectHandlerFunc(
				func(context.Context, *tether.Event) tether.Action { return 42 }))
		}, "tether: handler returned an unknown Action 42"},
		{"empty address from handler", func() (*tether.Tether, error) {
			d.FailWhen(func(int, string) error { return errRefused })
			defer d.FailWhen(nil)
			return tether.Dial(t.Context(), d, "a", tether.DisconnectHandlerFunc(
				func(_ context.Context, ev *tether.Event) tether.Action { ev.Addr = ""; return tether.Reconnect }))
		}, "tether: handler set an empty address"},
		{"negative stability", func() (*tether.Tether, error) {
			return tether.Dial(t.Context(), d, "a", nil, tether.WithStabilityPeriod(-1))
		}, "tether: negative stability period"},
		{"zero OnConnect timeout", func() (*tether.Tether, error) {
			return tether.Dial(t.Context(), d, "a", nil, tether.WithOnConnectTimeout(0))
		}, "tether: OnConnect timeout must be positive"},
		{"middleware returning nil", func() (*tether.Tether, error) {
			h := tether.Chain(nil, func(tether.DisconnectHandler) tether.DisconnectHandler { return nil })
			return tether.Dial(t.Context(), d, "a", h)
		}, "tether: a Middleware returned a nil DisconnectHandler"},
		{"nil dialer in New", func() (*tether.Tether, error) {
			c, _ := net.Pipe()
			return tether.New(c, nil, "a", nil)
		}, "tether: nil Dialer"},
		{"nil conn in New", func() (*tether.Tether, error) { return tether.New(nil, d, "a", nil) }, "tether: nil net.Conn"},
		{"WithLazy in New", func() (*tether.Tether, error) {
			c, _ := net.Pipe()
			return tether.New(c, d, "a", nil, tether.WithLazy())
		}, "tether: WithLazy given to New, whose connection is up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt, err := tc.dial()
			require.Nil(t, tt)
			require.EqualError(t, err, tc.want)
		})
	}
}

// Semantics 12: CloseWrite on a connection without it says so, and never
// reconnects.
func TestCloseWriteUnsupported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil)
		require.ErrorIs(t, tt.CloseWrite(), errors.ErrUnsupported)
		require.Equal(t, 1, d.Dials())
	})
}

// The Ignore action on Disconnected: the error goes to the operation, the
// connection is kept, nothing loops.
func TestIgnoreKeepsConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		glitch := errors.New("glitch")
		d := wrapEach(failingRead(glitch))
		r := ignoreOn(tether.Disconnected)
		tt := tethertest.Dial(t, d, "a", r)
		_, err := tt.Read(make([]byte, 1))
		require.Equal(t, glitch, err)
		s := d.Server(t)
		go s.Write([]byte("y"))
		n, err := tt.Read(make([]byte, 1))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, 1, d.Dials())
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected}, r.Kinds())
	})
}

// The Ignore action on Unreachable: the waiting operation gets the dial error,
// and the next operation dials again.
func TestIgnoreUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ignoreOn(tether.Unreachable)
		tt, d := dialPipe(t, r)
		d.FailNext(1, errRefused)
		d.Server(t).Close()
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, errRefused)
		synctest.Wait()
		require.Equal(t, 2, d.Dials(), "no redial by itself")

		got := readAsync(tt, 1)
		s := d.Server(t)
		s.Write([]byte("k"))
		require.NoError(t, (<-got).err)
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Unreachable, tether.Reconnected}, r.Kinds())
	})
}

// Counting attempts, as DESIGN.md's table says.
func TestAttemptCounting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		d.FailWhen(func(n int, _ string) error {
			switch n {
			case 0, 1, 3: // two failures inside Dial, one after the stable loss
				return errRefused
			}
			return nil
		})
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r)
		s := d.Server(t)

		time.Sleep(2 * time.Second) // stable
		s.Close()
		got := readAsync(tt, 1)
		s = d.Server(t)
		synctest.Wait()
		time.Sleep(100 * time.Millisecond) // dies within the stability period
		s.Close()
		s = d.Server(t)
		go s.Write([]byte("x"))
		require.NoError(t, (<-got).err)

		type row struct {
			kind    tether.EventKind
			attempt int
			total   int
		}
		var rows []row
		for _, ev := range r.Events() {
			rows = append(rows, row{ev.Kind, ev.Attempt, ev.Total})
		}
		require.Equal(t, []row{
			{tether.Unreachable, 1, 1},
			{tether.Unreachable, 2, 2},
			{tether.Connected, 2, 2},
			{tether.Disconnected, 0, 2}, // after a stable connection
			{tether.Unreachable, 1, 3},  // previous + 1
			{tether.Reconnected, 1, 3},  // the failed dials it took
			{tether.Disconnected, 2, 4}, // died young: failures so far + 1
			{tether.Reconnected, 2, 4},
		}, rows)
	})
}

// A connection that the handler keeps (Ignore on Disconnected) did not fail:
// the loss it reported does not count as a failed dial in the next events'
// Attempt and Total. (Three ignored idle timeouts made a later loss
// Attempt 4, and Backoff's MaxAttempts gave up after a single dial.)
func TestIgnoredLossIsNoFailedDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		r := decide(func(ev *tether.Event) tether.Action {
			if errors.Is(ev.Err, tether.ErrIdleTimeout) {
				return tether.Ignore
			}
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, d, "a", r, tether.WithReadIdleTimeout(100*time.Millisecond))
		s := d.Server(t)
		for range 3 {
			_, err := tt.Read(make([]byte, 1))
			require.ErrorIs(t, err, tether.ErrIdleTimeout) // kept
		}
		s.Close() // a loss within the stability period
		got := readAsync(tt, 1)
		go d.Server(t).Write([]byte("x"))
		require.NoError(t, (<-got).err)
		evs := r.Events()
		last := evs[len(evs)-2:]
		require.Equal(t, tether.Disconnected, last[0].Kind)
		require.Equal(t, 1, last[0].Attempt, "the loss after three kept connections: %v", evs)
		require.Equal(t, 1, last[0].Total)
		require.Equal(t, tether.Reconnected, last[1].Kind)
		require.Equal(t, 1, last[1].Attempt)
	})
}

// A failed OnConnect counts as a failed dial.
func TestOnConnectFailureCountsAsFailedDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hello := errors.New("hello rejected")
		var calls atomic.Int32
		r := &tethertest.Recorder{}
		dialPipe(t, r, tether.WithOnConnect(func(context.Context, net.Conn) error {
			if calls.Add(1) == 1 {
				return hello
			}
			return nil
		}))
		evs := r.Events()
		require.Len(t, evs, 2)
		require.Equal(t, tether.Unreachable, evs[0].Kind)
		require.ErrorIs(t, evs[0].Err, hello)
		require.EqualError(t, evs[0].Err, "tether: OnConnect: hello rejected", "the user's hook is named")
		require.Equal(t, 1, evs[0].Attempt)
		require.Equal(t, tether.Connected, evs[1].Kind)
		require.Equal(t, 1, evs[1].Attempt)
	})
}

// OnConnect runs within its timeout (WithOnConnectTimeout): a hook that
// waits for ever fails at it, as a failed dial.
func TestOnConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		r := &tethertest.Recorder{}
		start := time.Now()
		dialPipe(t, r, tether.WithOnConnectTimeout(3*time.Second),
			tether.WithOnConnect(func(ctx context.Context, _ net.Conn) error {
				if calls.Add(1) == 1 {
					<-ctx.Done() // a server that never answers the hello
					return ctx.Err()
				}
				return nil
			}))
		evs := r.Events()
		require.Len(t, evs, 2)
		require.Equal(t, tether.Unreachable, evs[0].Kind)
		require.ErrorIs(t, evs[0].Err, context.DeadlineExceeded)
		require.Equal(t, 3*time.Second, evs[0].DialTime)
		require.Equal(t, tether.Connected, evs[1].Kind)
		require.Equal(t, 1, evs[1].Attempt)
		require.Equal(t, 3*time.Second, time.Since(start))
	})
}

// The fields beyond the fixed ones.
func TestEventFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := decide(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				ev.Addr = "b"
				ev.Delay = 3 * time.Second
			}
			return tether.Reconnect
		})
		start := time.Now()
		tt, d := dialPipe(t, r)
		time.Sleep(5 * time.Second)
		d.Server(t).Close()
		got := readAsync(tt, 1)
		s := d.Server(t)
		go s.Write([]byte("x"))
		require.NoError(t, (<-got).err)

		evs := r.Events()
		require.Len(t, evs, 3)
		c, lost, back := evs[0], evs[1], evs[2]
		require.Equal(t, "a", c.Dialed)
		require.Equal(t, uint64(1), c.Generation)
		require.Equal(t, start, c.Since)
		require.NotNil(t, c.Conn)

		require.Equal(t, "a", lost.Dialed)
		require.Equal(t, "b", lost.Addr, "the handler's change is visible in the copy")
		require.Equal(t, 5*time.Second, lost.Uptime)
		require.Equal(t, start.Add(5*time.Second), lost.Since)
		require.Equal(t, uint64(1), lost.Generation)
		require.Nil(t, lost.Conn)

		require.Equal(t, "b", back.Dialed)
		require.Equal(t, uint64(2), back.Generation)
		require.Equal(t, lost.Since, back.Since)
		require.Equal(t, 8*time.Second, time.Since(start), "Delay was waited")
		require.NotNil(t, back.Conn)
		hist := d.History()
		require.Len(t, hist, 2)
		require.Equal(t, "a", hist[0].Addr)
		require.Equal(t, "b", hist[1].Addr)
		require.Equal(t, "b", tt.Addr())
	})
}

// Dial's ctx bounds the first connection: Dial stops retrying when it is
// done, whatever the handler says, and the handler gets it.
func TestDialContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		d.FailWhen(func(int, string) error { return errRefused })
		type key struct{}
		ctx, cancel := context.WithTimeout(context.WithValue(t.Context(), key{}, "v"), 30*time.Second)
		defer cancel()
		var sawValue atomic.Bool
		h := tether.Chain(nil, func(next tether.DisconnectHandler) tether.DisconnectHandler {
			return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
				sawValue.Store(ctx.Value(key{}) == "v")
				return next.HandleDisconnect(ctx, ev)
			})
		})
		start := time.Now()
		tt, err := tether.Dial(ctx, d, "a", h)
		require.Nil(t, tt)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, errRefused, "the last dial error is kept")
		require.Equal(t, 30*time.Second, time.Since(start))
		require.True(t, sawValue.Load())
	})
}

// WithNoInitialRetry returns the first dial's error at once.
func TestNoInitialRetry(t *testing.T) {
	d := &tethertest.Dialer{}
	d.FailWhen(func(int, string) error { return errRefused })
	r := &tethertest.Recorder{}
	tt, err := tether.Dial(t.Context(), d, "a", r, tether.WithNoInitialRetry())
	require.Nil(t, tt)
	require.ErrorIs(t, err, errRefused)
	require.Equal(t, 1, d.Dials())
	require.Empty(t, r.Kinds())
}

// New adopts a connection: no Connected event, and a reconnect on its loss.
func TestNewAdoptsConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := net.Pipe()
		d := &tethertest.Dialer{}
		r := &tethertest.Recorder{}
		tt, err := tether.New(c, d, "a", r)
		require.NoError(t, err)
		defer tt.Close()
		require.Equal(t, uint64(1), tt.Generation())
		require.Equal(t, c, tt.Conn())
		s.Close()
		got := readAsync(tt, 1)
		s2 := d.Server(t)
		go s2.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		require.Equal(t, []tether.EventKind{tether.Disconnected, tether.Reconnected}, r.Kinds())
	})
}

// During an outage the addresses are the last known ones, never nil.
func TestAddrsDuringOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := delayed(time.Hour)
		tt, d := dialPipe(t, r)
		d.Server(t).Close()
		wrote := writeAsync(tt, "x")
		synctest.Wait()
		require.NotNil(t, tt.LocalAddr())
		require.NotNil(t, tt.RemoteAddr())
		require.Nil(t, tt.Conn(), "no connection during the outage")
		tt.Close()
		require.ErrorIs(t, (<-wrote).err, net.ErrClosed)
	})
}

// halfOpenConn reads EOF at once but accepts writes, as a TCP connection
// after the peer's FIN does.
type halfOpenConn struct {
	net.Conn
	mu    sync.Mutex
	wrote []byte
}

func (c *halfOpenConn) Read([]byte) (int, error) { return 0, io.EOF }

func (c *halfOpenConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrote = append(c.wrote, p...)
	return len(p), nil
}

// While the handler decides about a loss, no operation uses the failed
// connection: a Write waits for the new one instead of losing its bytes.
func TestNoWriteToLostConnectionDuringHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := &halfOpenConn{}
		d := wrapFirst(func(c net.Conn) net.Conn {
			first.Conn = c
			return first
		})
		slow := decide(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				time.Sleep(10 * time.Second) // a slow resolver
			}
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, d, "a", slow)
		got := readAsync(tt, 1) // meets EOF: the handler starts
		synctest.Wait()
		wrote := writeAsync(tt, "kept")
		d.Server(t)
		s2 := d.Server(t)
		require.Equal(t, "kept", readString(t, s2, 4))
		require.NoError(t, (<-wrote).err)
		first.mu.Lock()
		require.Empty(t, first.wrote, "nothing went to the lost connection")
		first.mu.Unlock()
		go s2.Write([]byte("z"))
		require.NoError(t, (<-got).err)
	})
}

// With Ignore, operations that waited while the handler decided go on with
// the connection that was put back.
func TestIgnorePutsConnectionBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		glitch := errors.New("glitch")
		d := wrapEach(failingRead(glitch))
		r := decide(func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				time.Sleep(time.Second)
				return tether.Ignore
			}
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, d, "a", r)
		s := d.Server(t)
		got := readAsync(tt, 1)
		synctest.Wait()
		wrote := writeAsync(tt, "w")
		buf := make([]byte, 1)
		_, err := io.ReadFull(s, buf)
		require.NoError(t, err)
		require.NoError(t, (<-wrote).err)
		require.Equal(t, glitch, (<-got).err)
		require.Equal(t, 1, d.Dials())
	})
}

// ReadGeneration names the connection that served the bytes, and returns 0
// with an error.
func TestReadGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil)
		s1 := d.Server(t)
		go s1.Write([]byte("one"))
		buf := make([]byte, 3)
		n, gen, err := tt.ReadGeneration(buf)
		require.NoError(t, err)
		require.Equal(t, "one", string(buf[:n]))
		require.Equal(t, uint64(1), gen)

		s1.Close()
		got := make(chan result, 1)
		go func() {
			n, gen, err := tt.ReadGeneration(buf)
			got <- result{s: string(buf[:n]), n: int(gen), err: err}
		}()
		s2 := d.Server(t)
		go s2.Write([]byte("two"))
		r := <-got
		require.NoError(t, r.err)
		require.Equal(t, "two", r.s)
		require.Equal(t, 2, r.n, "the generation of the bytes' connection")

		tt.Close()
		n, gen, err = tt.ReadGeneration(buf)
		require.ErrorIs(t, err, net.ErrClosed)
		require.Zero(t, n)
		require.Zero(t, gen)
	})
}

// lostConnSetup dials a Tether whose first connection fails its first Read
// with a reset while a Write is blocked on it (the peer reads nothing), and
// whose handler blocks on Disconnected until release is closed or its ctx
// ends, then returns decide.
func lostConnSetup(t *testing.T, decide tether.Action, ignoreCtx bool) (tt *tether.Tether, s1 net.Conn, wrote <-chan result, release chan struct{}) {
	d := wrapFirst(failingRead(syscall.ECONNRESET))
	release = make(chan struct{})
	h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		if ev.Kind != tether.Disconnected {
			return tether.Reconnect
		}
		if ignoreCtx {
			<-release
		} else {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return decide
	})
	tt = tethertest.Dial(t, d, "a", h)
	s1 = d.Server(t)
	wrote = writeAsync(tt, "stuck")
	synctest.Wait()
	go tt.Read(make([]byte, 1)) // meets the reset: the handler runs
	synctest.Wait()
	return tt, s1, wrote, release
}

// The lost connection is closed on every path that leaves it, so that an
// operation blocked on it wakes (and a QUIC stream is not leaked).
func TestLostConnectionClosed(t *testing.T) {
	t.Run("give-up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tt, s1, wrote, release := lostConnSetup(t, tether.GiveUp, false)
			close(release)
			<-tt.Done()
			w := <-wrote
			require.ErrorIs(t, w.err, tether.ErrGaveUp)
			require.True(t, peerSeesClose(s1))
		})
	})
	t.Run("close during the handler", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tt, s1, wrote, release := lostConnSetup(t, tether.Reconnect, true)
			require.NoError(t, tt.Close())
			w := <-wrote // before the handler returns
			require.ErrorIs(t, w.err, net.ErrClosed)
			require.True(t, peerSeesClose(s1))
			close(release)
		})
	})
	t.Run("ignore after close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tt, s1, wrote, _ := lostConnSetup(t, tether.Ignore, false)
			require.NoError(t, tt.Close())
			w := <-wrote
			require.ErrorIs(t, w.err, net.ErrClosed)
			synctest.Wait()
			require.True(t, peerSeesClose(s1))
		})
	})
}

// Close during a Reconnected event that ignores its ctx closes the new
// connection at once, not when the handler returns.
func TestCloseDuringReconnectedClosesNewConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		tt, d := dialPipe(t, tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Reconnected {
				<-release
			}
			return tether.Reconnect
		}))
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		s2 := d.Server(t)
		synctest.Wait() // the handler holds the Reconnected event
		require.NoError(t, tt.Close())
		require.True(t, peerSeesClose(s2))
		close(release)
	})
}

// Semantics 5: a middleware that gives up on a clean EOF with an error of
// its own around it still lets io.ReadAll end normally.
func TestGiveUpWrappedEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tether.Chain(nil, middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 1}))
		tt, d := dialPipe(t, h, tether.WithStabilityPeriod(time.Hour))
		requireReadAllOfLastWords(t, tt, d.Server(t))
		require.ErrorIs(t, tt.Err(), middleware.ErrMaxAttempts)
		require.ErrorIs(t, tt.Err(), io.EOF)
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, tether.ErrGaveUp)
		require.ErrorIs(t, err, tether.ErrPeerClosed)
		require.ErrorIs(t, err, middleware.ErrMaxAttempts) // the middleware's cause stays
		require.NotErrorIs(t, err, io.EOF)                 // but the Write does not end normally
		require.Contains(t, err.Error(), "EOF")
	})
}

// A handler that changes Event.Generation changes nothing: the Tether
// numbers its connections itself.
func TestHandlerCannotRewriteGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			ev.Generation = 0
			return tether.Reconnect
		})
		tt, d := dialPipe(t, h)
		require.Equal(t, uint64(1), tt.Generation())
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		d.Server(t)
		synctest.Wait()
		require.Equal(t, uint64(2), tt.Generation())
	})
}

// Every method of a nil or zero Tether returns a clear error or a zero
// value, never a panic.
func TestNilAndZeroTether(t *testing.T) {
	for name, tt := range map[string]*tether.Tether{"nil": nil, "zero": new(tether.Tether)} {
		t.Run(name, func(t *testing.T) {
			_, err := tt.Read(make([]byte, 1))
			require.ErrorContains(t, err, "nil or zero Tether")
			_, _, err = tt.ReadGeneration(make([]byte, 1))
			require.Error(t, err)
			_, err = tt.Write([]byte("x"))
			require.Error(t, err)
			require.Error(t, tt.CloseWrite())
			require.Error(t, tt.SetDeadline(time.Now()))
			require.Error(t, tt.SetReadDeadline(time.Now()))
			require.Error(t, tt.SetWriteDeadline(time.Now()))
			require.Error(t, tt.Err())
			require.Error(t, tt.Close())
			<-tt.Done()
			require.Zero(t, tt.Generation())
			require.Nil(t, tt.Conn())
			require.Empty(t, tt.LocalAddr().String())
			require.Empty(t, tt.RemoteAddr().String())
			require.Empty(t, tt.Addr())
		})
	}
}

// halfCloser is a pipe end with a CloseWrite that records the call.
type halfCloser struct {
	net.Conn
	closedWrite atomic.Bool
}

func (c *halfCloser) CloseWrite() error {
	c.closedWrite.Store(true)
	return nil
}

// Semantics 12 (revised): a loss after CloseWrite is final. The request
// went on the lost connection; a new one would never carry it, and a Read
// waiting there for the reply would wait for ever.
func TestLossAfterCloseWriteIsFinal(t *testing.T) {
	for name, kill := range map[string]func(s net.Conn){
		"clean EOF": func(s net.Conn) { s.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := wrapEach(func(c net.Conn) net.Conn { return &halfCloser{Conn: c} })
				r := &tethertest.Recorder{}
				tt := tethertest.Dial(t, d, "a", r)
				s := d.Server(t)
				require.NoError(t, tt.CloseWrite())
				got := readAsync(tt, 1)
				synctest.Wait()
				kill(s)
				require.ErrorIs(t, (<-got).err, io.EOF)
				require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())
				require.Equal(t, 1, d.Dials())
			})
		})
	}
	t.Run("reset", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := wrapEach(func(c net.Conn) net.Conn { return &halfCloser{Conn: failingRead(syscall.ECONNRESET)(c)} })
			r := &tethertest.Recorder{}
			tt := tethertest.Dial(t, d, "a", r)
			d.Server(t)
			require.NoError(t, tt.CloseWrite())
			_, err := tt.Read(make([]byte, 1))
			require.ErrorIs(t, err, syscall.ECONNRESET)
			require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())
			require.Equal(t, 1, d.Dials())
		})
	})
}

// Semantics 12 and Reconnect: after CloseWrite, a Reconnect the user asks
// for replaces the half-closed connection, and a Read waiting on it goes on
// with the new one, as after any reconnect: it does not return the error
// of the connection the Tether closed (which reads as the user's Close).
func TestReconnectAfterCloseWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapEach(func(c net.Conn) net.Conn { return &halfCloser{Conn: c} })
		tt := tethertest.Dial(t, d, "a", nil)
		d.Server(t)
		require.NoError(t, tt.CloseWrite())
		got := readAsync(tt, 1)
		synctest.Wait()
		tt.Reconnect()
		s2 := d.Server(t)
		go s2.Write([]byte("x"))
		res := <-got
		require.NoError(t, res.err)
		require.Equal(t, "x", res.s)
		require.NoError(t, tt.Err())
	})
}

// requireReadAllOfLastWords has the server end s write its last words and
// close, and requires that io.ReadAll of tt reads them and ends normally.
func requireReadAllOfLastWords(t *testing.T, tt *tether.Tether, s net.Conn) {
	t.Helper()
	go func() {
		s.Write([]byte("all of it"))
		s.Close()
	}()
	b, err := io.ReadAll(tt)
	require.NoError(t, err)
	require.Equal(t, "all of it", string(b))
}

// decide returns a Recorder whose decisions f makes.
func decide(f func(ev *tether.Event) tether.Action) *tethertest.Recorder {
	return &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(
		func(_ context.Context, ev *tether.Event) tether.Action { return f(ev) })}
}

// ignoreWhenReleased is a decision for decide: on a loss it waits until
// release is closed, then keeps the connection (Ignore); otherwise it
// reconnects.
func ignoreWhenReleased(release <-chan struct{}) func(*tether.Event) tether.Action {
	return func(ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected {
			<-release
			return tether.Ignore
		}
		return tether.Reconnect
	}
}

var errRefused = errors.New("refused (test)")

// readAsync reads exactly n bytes from c in a goroutine and reports them.
func readAsync(c net.Conn, n int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		buf := make([]byte, n)
		m, err := io.ReadFull(c, buf)
		ch <- result{string(buf[:m]), m, err}
	}()
	return ch
}

// requireRead waits for the read that got reports and requires that it
// read want.
func requireRead(t *testing.T, got <-chan result, want string) {
	t.Helper()
	res := <-got
	require.NoError(t, res.err)
	require.Equal(t, want, res.s)
}

// writeAsync writes s on c in a goroutine and reports the count and error.
func writeAsync(c net.Conn, s string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := c.Write([]byte(s))
		ch <- result{n: n, err: err}
	}()
	return ch
}

type result struct {
	s   string
	n   int
	err error
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

// dialPipe dials a Tether at "a" over a new tethertest.Dialer, with h (nil:
// the default policy) and opts, and closes it when the test ends.
func dialPipe(t *testing.T, h tether.DisconnectHandler, opts ...tether.Option) (*tether.Tether, *tethertest.Dialer) {
	t.Helper()
	d := &tethertest.Dialer{}
	return tethertest.Dial(t, d, "a", h, opts...), d
}

// wrapFirst returns a Dialer that hands out the client end of its first
// connection wrapped by wrap, and those of the others as they are.
func wrapFirst(wrap func(net.Conn) net.Conn) *tethertest.Dialer {
	d := &tethertest.Dialer{}
	d.Wrap(func(c *tethertest.Conn) net.Conn {
		if c.Index() == 0 {
			return wrap(c.Client())
		}
		return c.Client()
	})
	return d
}

// wrapEach returns a Dialer that hands out the client end of each
// connection wrapped by wrap.
func wrapEach(wrap func(net.Conn) net.Conn) *tethertest.Dialer {
	d := &tethertest.Dialer{}
	d.Wrap(func(c *tethertest.Conn) net.Conn { return wrap(c.Client()) })
	return d
}

// failingRead is a wrap whose connection fails its first Read with err, and
// then reads as before: a loss that the reader sees first.
func failingRead(err error) func(net.Conn) net.Conn {
	return func(c net.Conn) net.Conn { return &scriptConn{Conn: c, reads: []result{{err: err}}} }
}

// giveUpOn returns a Recorder that gives up on events of the kinds, and
// reconnects on the others.
func giveUpOn(kinds ...tether.EventKind) *tethertest.Recorder {
	return decide(func(ev *tether.Event) tether.Action {
		if slices.Contains(kinds, ev.Kind) {
			return tether.GiveUp
		}
		return tether.Reconnect
	})
}

// ignoreOn returns a Recorder that ignores events of kind k, and reconnects
// on the others.
func ignoreOn(k tether.EventKind) *tethertest.Recorder {
	return decide(func(ev *tether.Event) tether.Action {
		if ev.Kind == k {
			return tether.Ignore
		}
		return tether.Reconnect
	})
}

// startOutage takes the connection of server end s down and waits until the
// Tether has noticed (a Read meets the loss) and waits out its delay, in
// TransientFailure.
func startOutage(t *testing.T, tt *tether.Tether, s net.Conn) {
	t.Helper()
	s.Close()
	go tt.Read(make([]byte, 1))
	synctest.Wait()
	require.Equal(t, tether.TransientFailure, tt.State())
}

// delayed returns a Recorder that reconnects after d on each loss and
// failed dial.
func delayed(d time.Duration) *tethertest.Recorder {
	return decide(func(ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected || ev.Kind == tether.Unreachable {
			ev.Delay = d
		}
		return tether.Reconnect
	})
}

// readString reads exactly n bytes from s.
func readString(t *testing.T, s net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(s, buf)
	require.NoError(t, err)
	return string(buf)
}

// peerSeesClose reports whether the server end s saw its peer close.
func peerSeesClose(s net.Conn) bool {
	s.SetReadDeadline(time.Now())
	_, err := s.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}
