package tether_test

import (
	"context"
	"io"
	"net"
	"os"
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

// lostConnSetup dials a Tether whose first connection fails its first Read
// with a reset while a Write is blocked on it (the peer reads nothing), and
// whose handler blocks on Disconnected until release is closed or its ctx
// ends, then returns decide.
func lostConnSetup(t *testing.T, decide tether.Action, ignoreCtx bool) (tt *tether.Tether, s1 net.Conn, wrote chan result, release chan struct{}) {
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
	tt, err := tether.Dial(t.Context(), d, "a", h)
	require.NoError(t, err)
	s1 = d.Server(t)
	wrote = make(chan result, 1)
	go func() {
		n, err := tt.Write([]byte("stuck"))
		wrote <- result{n: n, err: err}
	}()
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
		d := &tethertest.Dialer{}
		release := make(chan struct{})
		h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Reconnected {
				<-release
			}
			return tether.Reconnect
		})
		tt, err := tether.Dial(t.Context(), d, "a", h)
		require.NoError(t, err)
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		s2 := d.Server(t)
		synctest.Wait() // the handler holds the Reconnected event
		require.NoError(t, tt.Close())
		require.True(t, peerSeesClose(s2))
		close(release)
	})
}

// Every time.Time keeps its meaning as a deadline: time.Unix(0, 0) is long
// past (the context.AfterFunc idiom that interrupts a Read), not "no
// deadline"; a deadline after the year 2262 is far away, not an overflow.
func TestExtremeDeadlines(t *testing.T) {
	for _, idle := range []time.Duration{0, time.Minute} {
		t.Run("watchdog="+idle.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &tethertest.Recorder{}
				var opts []tether.Option
				if idle > 0 {
					opts = append(opts, tether.WithReadIdleTimeout(idle))
				}
				tt, d := dialPipe(t, r, opts...)
				s := d.Server(t)

				// Interrupt a pending Read with the epoch.
				got := readAsync(tt, 1)
				synctest.Wait()
				require.NoError(t, tt.SetReadDeadline(time.Unix(0, 0)))
				res := <-got
				require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)
				require.NoError(t, tt.SetWriteDeadline(time.Unix(0, 0)))
				_, err := tt.Write([]byte("x"))
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)

				// The year 3000: Reads and Writes work.
				far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
				require.NoError(t, tt.SetDeadline(far))
				go s.Write([]byte("y"))
				res = <-readAsync(tt, 1)
				require.NoError(t, res.err)
				require.Equal(t, "y", res.s)
				go io.ReadFull(s, make([]byte, 1))
				_, err = tt.Write([]byte("z"))
				require.NoError(t, err)
				require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds(), "no deadline passed for a loss")
			})
		})
	}
}

// With a deadline after 2262, a timeout from the connection itself (a dead
// peer) is a disconnect, not the user's deadline.
func TestFarDeadlineDeadPeerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapFirst(func(c net.Conn) net.Conn { return timeoutConn{c} })
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r)
		require.NoError(t, tt.SetReadDeadline(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)))
		got := readAsync(tt, 1)
		d.Server(t)
		s2 := d.Server(t)
		go s2.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
	})
}

// Semantics 5: a middleware that gives up on a clean EOF with an error of
// its own around it still lets io.ReadAll end normally.
func TestGiveUpWrappedEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := tether.Chain(nil, middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 1}))
		tt, d := dialPipe(t, h, tether.WithStabilityPeriod(time.Hour))
		s := d.Server(t)
		go func() {
			s.Write([]byte("all of it"))
			s.Close()
		}()
		b, err := io.ReadAll(tt)
		require.NoError(t, err)
		require.Equal(t, "all of it", string(b))
		require.ErrorIs(t, tt.Err(), middleware.ErrMaxAttempts)
		require.ErrorIs(t, tt.Err(), io.EOF)
		_, err = tt.Write([]byte("x"))
		require.ErrorIs(t, err, tether.ErrGaveUp)
		require.ErrorIs(t, err, tether.ErrPeerClosed)
		require.NotEqual(t, io.EOF, err)
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
