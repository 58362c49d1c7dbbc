package tethertest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// writeAsync writes s on c from a goroutine (a pipe's Write waits for the
// reader) and reports the error.
func writeAsync(c net.Conn, s string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte(s))
		ch <- err
	}()
	return ch
}

func readString(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	require.NoError(t, err)
	return string(buf)
}

// connect dials addr over d and returns both ends of the connection.
func connect(t *testing.T, d *tethertest.Dialer, addr string) (net.Conn, *tethertest.Conn) {
	t.Helper()
	c, err := d.Dial(t.Context(), addr)
	require.NoError(t, err)
	return c, d.Server(t)
}

func TestDialerAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer

		// Dial first: the server end waits in the backlog.
		c1, s1 := connect(t, &d, "a:1")
		require.Equal(t, "a:1", s1.Addr())
		require.Equal(t, 0, s1.Index())
		require.Same(t, c1, s1.Client())
		require.Equal(t, "a:1", c1.RemoteAddr().String())
		require.Equal(t, "a:1", s1.LocalAddr().String())
		require.Equal(t, c1.LocalAddr().String(), s1.RemoteAddr().String())
		require.Equal(t, "tethertest", c1.RemoteAddr().Network())

		// Accept first: it waits for the Dial.
		got := make(chan *tethertest.Conn, 1)
		go func() {
			s, err := d.Accept(t.Context())
			if err != nil {
				t.Errorf("Accept = %v", err)
			}
			got <- s
		}()
		synctest.Wait()
		c2, err := d.Dial(t.Context(), "b:2")
		require.NoError(t, err)
		s2 := <-got
		require.Equal(t, 1, s2.Index())
		require.Same(t, c2, s2.Client())

		done := writeAsync(c2, "ping")
		require.Equal(t, "ping", readString(t, s2, 4))
		require.NoError(t, <-done)

		// An Accept whose ctx ends returns its error and takes nothing.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err = d.Accept(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))
		_, err = d.Dial(t.Context(), "c:3")
		require.NoError(t, err)
		require.Equal(t, 2, d.Server(t).Index(), "the connection went to the next Accept")

		require.Equal(t, 3, d.Dials())
		require.Len(t, d.Conns(), 3)
	})
}

func TestDialerReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		c, s := connect(t, &d, "a:1")

		reading := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			reading <- err
		}()
		synctest.Wait()
		s.Reset()
		for _, err := range []error{<-reading, write(c, "x"), write(s, "x"), read(s)} {
			require.ErrorIs(t, err, syscall.ECONNRESET)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
		}
		// The end that the client closes itself reports that, not a reset.
		require.NoError(t, c.Close())
		require.NotErrorIs(t, read(c), syscall.ECONNRESET)
	})
}

func write(c net.Conn, s string) error {
	_, err := c.Write([]byte(s))
	return err
}

func read(c net.Conn) error {
	_, err := c.Read(make([]byte, 1))
	return err
}

func TestDialerCloseAndBlackhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		c, s := connect(t, &d, "a:1")
		done := writeAsync(s, "last")
		require.Equal(t, "last", readString(t, c, 4))
		require.NoError(t, <-done)
		require.NoError(t, s.Close())
		require.Equal(t, io.EOF, read(c), "a clean close reads as io.EOF")

		c, s = connect(t, &d, "a:1")
		s.Blackhole()
		require.NoError(t, write(c, "lost"), "a write into a blackhole succeeds")
		require.NoError(t, write(s, "lost"))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
		start := time.Now()
		require.ErrorIs(t, read(c), os.ErrDeadlineExceeded)
		require.Equal(t, 3*time.Second, time.Since(start), "nothing arrives before the deadline")
		for _, e := range []net.Conn{c, s} { // a Write past its deadline fails, as on any net.Conn
			require.NoError(t, e.SetWriteDeadline(time.Now().Add(-time.Second)))
			require.ErrorIs(t, write(e, "late"), os.ErrDeadlineExceeded)
			require.NoError(t, e.SetDeadline(time.Time{}))
			require.NoError(t, write(e, "lost"))
		}

		// A Write already blocked when the blackhole begins is swallowed too.
		c, s = connect(t, &d, "a:1")
		done = writeAsync(c, "pending")
		synctest.Wait()
		s.Blackhole()
		require.NoError(t, s.SetReadDeadline(time.Now().Add(time.Second)))
		require.ErrorIs(t, read(s), os.ErrDeadlineExceeded)
		require.NoError(t, <-done)

		// A Close of either end reaches the other: its Writes fail, as
		// on net.Pipe, so that a goroutine writing to it ends.
		for _, closeServer := range []bool{false, true} {
			c, s = connect(t, &d, "a:1")
			s.Blackhole()
			closing, other := c, net.Conn(s)
			if closeServer {
				closing, other = s, c
			}
			require.NoError(t, closing.Close())
			require.ErrorIs(t, write(other, "x"), io.ErrClosedPipe, "Write after the peer's Close (server closed: %v)", closeServer)
			require.Equal(t, io.EOF, read(other), "Read after the peer's Close (server closed: %v)", closeServer)
			require.NoError(t, other.Close())
		}
	})
}

func TestDialerFailNextAndHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		d.FailNext(1, nil)
		boom := errors.New("boom")
		d.FailNext(1, boom)
		_, err := d.Dial(t.Context(), "a:1")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.EqualError(t, err, "dial tethertest a:1: connect: connection refused")
		require.False(t, tether.IsPermanent(err), "a refused dial is transient")
		_, err = d.Dial(t.Context(), "a:1")
		require.Equal(t, boom, err)
		_, err = d.Dial(t.Context(), "a:1")
		require.NoError(t, err)
		require.Len(t, d.Conns(), 1, "failed dials make no connection")

		d.Hold()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err = d.Dial(ctx, "a:1")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 5*time.Second, time.Since(start), "a held dial waits for its ctx")

		dialed := make(chan error, 1)
		go func() {
			_, err := d.Dial(t.Context(), "a:1")
			dialed <- err
		}()
		synctest.Wait()
		require.Empty(t, dialed, "the dial is held")
		d.Release()
		require.NoError(t, <-dialed)
		require.Equal(t, 5, d.Dials())
	})
}

// The Dialer drives a Tether through each fault, inside synctest.
func TestDialerWithTether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		h := &tethertest.Recorder{}
		tt := tethertest.Dial(t, &d, "srv:1", h, tether.WithReadIdleTimeout(10*time.Second))

		// Reset: the reader sees nothing of it.
		s := d.Server(t)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 6)
			_, err := io.ReadFull(tt, buf)
			if err != nil {
				t.Errorf("ReadFull = %v", err)
			}
			got <- string(buf)
		}()
		synctest.Wait()
		s.Reset()
		d.FailNext(1, nil) // and the first redial is refused
		s = d.Server(t)
		require.NoError(t, write(s, "foobar"))
		require.Equal(t, "foobar", <-got)

		// Blackhole: the read idle timeout notices it.
		s.Blackhole()
		start := time.Now()
		reading := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			reading <- err
		}()
		s = d.Server(t)
		require.Equal(t, 10*time.Second, time.Since(start))
		require.NoError(t, write(s, "x"))
		require.NoError(t, <-reading)

		// Clean close.
		require.NoError(t, s.Close())
		wrote := writeAsync(tt, "hi")
		s = d.Server(t)
		require.Equal(t, "hi", readString(t, s, 2), "the Write that met the close goes to the new connection")
		require.NoError(t, <-wrote)

		evs := h.Events()
		require.Equal(t, []tether.EventKind{
			tether.Connected,
			tether.Disconnected, tether.Unreachable, tether.Reconnected, // reset, refused
			tether.Disconnected, tether.Reconnected, // blackhole
			tether.Disconnected, tether.Reconnected, // clean close
		}, h.Kinds())
		require.ErrorIs(t, evs[1].Err, syscall.ECONNRESET)
		require.ErrorIs(t, evs[2].Err, syscall.ECONNREFUSED)
		require.ErrorIs(t, evs[4].Err, tether.ErrIdleTimeout)
		require.True(t, evs[6].Err == io.EOF || errors.Is(evs[6].Err, io.ErrClosedPipe),
			"Disconnected after a clean close: Err = %v", evs[6].Err)
		require.Equal(t, 5, d.Dials())
	})
}

// Close ends a dial that Hold made hang, at once.
func TestDialerCloseDuringHeldDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		tt := tethertest.Dial(t, &d, "srv:1", &tethertest.Recorder{})
		s := d.Server(t)
		d.Hold()
		s.Reset()
		reading := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			reading <- err
		}()
		synctest.Wait()
		require.Equal(t, 2, d.Dials(), "the redial is held")
		start := time.Now()
		require.NoError(t, tt.Close())
		require.ErrorIs(t, <-reading, net.ErrClosed)
		require.Zero(t, time.Since(start))
		synctest.Wait() // the held dial returned: nothing is left in the bubble
	})
}

// FailWhen fails dials by their number or address, after FailNext's; Wrap
// hands out the test's conn; History lists every dial.
func TestDialerFailWhenWrapHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		boom := errors.New("boom")
		d.FailWhen(func(n int, addr string) error {
			if n == 2 || addr == "bad:1" {
				return boom
			}
			return nil
		})
		type wrapped struct{ net.Conn }
		d.Wrap(func(c *tethertest.Conn) net.Conn {
			if c.Index() == 1 {
				return wrapped{c.Client()}
			}
			return c.Client()
		})
		d.FailNext(1, nil)
		start := time.Now()
		dial := func(addr string) (net.Conn, error) {
			time.Sleep(time.Second)
			return d.Dial(t.Context(), addr)
		}
		_, err := dial("a:1") // 0: FailNext
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		c0, err := dial("a:1") // 1: the first connection
		require.NoError(t, err)
		require.IsType(t, c0, d.Server(t).Client())
		_, err = dial("a:1") // 2: FailWhen by number
		require.Equal(t, boom, err)
		_, err = dial("bad:1") // 3: FailWhen by address
		require.Equal(t, boom, err)
		c1, err := dial("b:2") // 4: the second connection, wrapped
		require.NoError(t, err)
		require.IsType(t, wrapped{}, c1)
		s1 := d.Server(t)
		require.Equal(t, 1, s1.Index())
		require.NotEqual(t, c1, s1.Client(), "Client is the end before Wrap")

		d.FailWhen(nil)
		d.Wrap(nil)
		_, err = dial("bad:1") // 5
		require.NoError(t, err)

		hist := d.History()
		require.Len(t, hist, 6)
		var addrs []string
		for i, h := range hist {
			addrs = append(addrs, h.Addr)
			require.Equal(t, start.Add(time.Duration(i+1)*time.Second), h.At, "dial %d", i)
			require.Equal(t, i == 0 || i == 2 || i == 3, h.Err != nil, "dial %d: Err = %v", i, h.Err)
		}
		require.Equal(t, []string{"a:1", "a:1", "a:1", "bad:1", "b:2", "bad:1"}, addrs)
		require.Equal(t, boom, hist[3].Err)
		require.Equal(t, 6, d.Dials())
	})
}

// Down refuses dials to an address and closes its connections; Up brings
// it back; the other addresses are not touched.
func TestDialerDownUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		a, err := d.Dial(t.Context(), "a:1")
		require.NoError(t, err)
		b, err := d.Dial(t.Context(), "b:1")
		require.NoError(t, err)
		d.Server(t)
		sb := d.Server(t)
		d.Down("a:1")
		require.Equal(t, io.EOF, read(a), "a's connection is closed")
		_, err = d.Dial(t.Context(), "a:1")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.False(t, tether.IsPermanent(err))
		require.Contains(t, err.Error(), "a:1")
		_, err = d.Dial(t.Context(), "b:1")
		require.NoError(t, err, "b is up")
		done := writeAsync(sb, "b")
		require.Equal(t, "b", readString(t, b, 1), "b's connection is open")
		require.NoError(t, <-done)

		d.Up("a:1")
		_, err = d.Dial(t.Context(), "a:1")
		require.NoError(t, err)
		require.Len(t, d.Conns(), 4)
	})
}

// A Down that comes while a dial to the address is under way (here, from
// FailWhen's function) refuses that dial too: no connection to a down
// address is left open.
func TestDialerDownDuringDial(t *testing.T) {
	var d tethertest.Dialer
	d.FailWhen(func(n int, addr string) error {
		d.Down(addr)
		return nil
	})
	_, err := d.Dial(t.Context(), "a:1")
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.Empty(t, d.Conns())
}

// Serve plays every server, by address, until its ctx ends; then it closes
// the connections and returns once the handlers have. Dial closes its
// Tether when the test ends.
func TestDialAndServe(t *testing.T) {
	var tt *tether.Tether
	t.Run("test", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var d tethertest.Dialer
			ctx, cancel := context.WithCancel(t.Context())
			served := make(chan struct{})
			var handlers atomic.Int32
			go func() {
				defer close(served)
				d.Serve(ctx, func(c *tethertest.Conn) {
					handlers.Add(1)
					defer handlers.Add(-1)
					if c.Addr() == "greeter:1" {
						c.Write([]byte("hi from " + c.Addr()))
					}
					io.Copy(io.Discard, c) // hold the connection until Serve ends
				})
			}()
			tt = tethertest.Dial(t, &d, "greeter:1", &tethertest.Recorder{})
			require.Equal(t, "hi from greeter:1", readString(t, tt, 17))

			d.Down("greeter:1") // its connection ends; dials to it are refused
			tt2 := tethertest.Dial(t, &d, "quiet:1", &tethertest.Recorder{})
			require.NoError(t, write(tt2, "x"), "the other server reads")
			synctest.Wait()
			require.Equal(t, int32(1), handlers.Load(), "quiet:1's handler")

			cancel()
			<-served
			require.Zero(t, handlers.Load(), "Serve returned before its handlers")
			require.Equal(t, io.EOF, read(tt2.Conn()), "Serve closed the connection")
		})
	})
	select {
	case <-tt.Done():
	default:
		t.Fatal("the Tether is open after its test")
	}
}

// fatalTB is a testing.TB whose Fatalf records the message and ends the
// goroutine, as a test's does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runFatal runs f with a fatalTB over t in a goroutine of its own and
// returns what f reported with Fatalf ("" if nothing).
func runFatal(t *testing.T, f func(tb testing.TB)) string {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb.msg
}

// Server and Dial fail the test, with a message that says why, when
// nothing is dialed or the dial fails.
func TestServerAndDialFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		start := time.Now()
		msg := runFatal(t, func(tb testing.TB) { d.Server(tb) })
		require.Equal(t, tethertest.WaitTimeout, time.Since(start))
		require.Equal(t, "tethertest: no connection was dialed within 30s (0 dials so far)", msg)

		d.FailNext(1, errors.New("boom"))
		msg = runFatal(t, func(tb testing.TB) {
			tethertest.Dial(tb, &d, "a:1", nil, tether.WithNoInitialRetry())
		})
		require.Equal(t, `tethertest: tether.Dial("a:1") = boom`, msg)
	})
}
