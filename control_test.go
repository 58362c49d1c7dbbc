package tether_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// failOnce fails its next Read (failRead) or next Write (failWrite) with
// errRefused, once.
type failOnce struct {
	net.Conn
	failRead, failWrite atomic.Bool
}

func (c *failOnce) Read(p []byte) (int, error) {
	if c.failRead.CompareAndSwap(true, false) {
		return 0, errRefused
	}
	return c.Conn.Read(p)
}

func (c *failOnce) Write(p []byte) (int, error) {
	if c.failWrite.CompareAndSwap(true, false) {
		return 0, errRefused
	}
	return c.Conn.Write(p)
}

// A control call made as soon as the state it needs is seen is never lost:
// the recovery that led to the state is over when the state changes (it used
// to end a moment later, and a Reconnect, a Connect or a buffered Write in
// between found it still running and did nothing).
func TestControlRightAfterTheChange(t *testing.T) {
	const runs = 100
	t.Run("Reconnect when Ready", func(t *testing.T) {
		for range runs {
			synctest.Test(t, func(t *testing.T) {
				tt, d := dialPipe(t, &tethertest.Recorder{}) // no delay: the default policy's jitter would wait
				tt.Reconnect()                               // Connecting at once; Ready again once the reconnect is over
				for s := tt.State(); s != tether.Ready; s = tt.State() {
					tt.WaitForStateChange(t.Context(), s)
				}
				tt.Reconnect() // Ready: must reconnect
				synctest.Wait()
				require.Equal(t, 3, d.Dials())
			})
		}
	})
	idleAfterFailedDial := func(t *testing.T, opts ...tether.Option) (*tether.Tether, *tethertest.Dialer) {
		r := ignoreOn(tether.Unreachable)
		tt, d := dialPipe(t, r, append(opts, tether.WithLazy())...)
		d.FailWhen(func(n int, _ string) error {
			if n == 0 {
				return errRefused
			}
			return nil
		})
		tt.Connect()
		for s := tt.State(); s != tether.Idle; s = tt.State() {
			tt.WaitForStateChange(t.Context(), s)
		}
		return tt, d
	}
	t.Run("Connect when Idle", func(t *testing.T) {
		for range runs {
			synctest.Test(t, func(t *testing.T) {
				tt, d := idleAfterFailedDial(t)
				tt.Connect()
				synctest.Wait()
				require.Equal(t, 2, d.Dials())
			})
		}
	})
	t.Run("buffered Write when Idle", func(t *testing.T) {
		for range runs {
			synctest.Test(t, func(t *testing.T) {
				tt, d := idleAfterFailedDial(t, tether.WithWriteBuffer(10))
				_, err := tt.Write([]byte("x"))
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, 2, d.Dials())
			})
		}
	})
}

// A lazy, fail-fast Tether dials on its first Write, which fails fast.
func TestLazyFailFastDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithLazy(), tether.WithFailFast())
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, tether.ErrBufferFull)
		d.Server(t)
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, 1, d.Dials())
	})
}

// The watchdog on a connection kept by Ignore: it starts again after it
// fired, and a kept connection keeps the deadline of a Read waiting on it.
func TestReadIdleTimeoutIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ignoreOn(tether.Disconnected)
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(time.Second))
		s := d.Server(t)
		buf := make([]byte, 10)
		_, err := tt.Read(buf)
		require.ErrorIs(t, err, tether.ErrIdleTimeout)
		go s.Write([]byte("hello"))
		n, err := tt.Read(buf)
		require.NoError(t, err, "the bytes waiting on the kept connection")
		require.Equal(t, "hello", string(buf[:n]))
	})
	synctest.Test(t, func(t *testing.T) {
		var fc *failOnce
		d := wrapEach(func(c net.Conn) net.Conn { fc = &failOnce{Conn: c}; return fc })
		r := ignoreOn(tether.Disconnected)
		tt := tethertest.Dial(t, d, "a", r, tether.WithReadIdleTimeout(time.Second))
		d.Server(t) // a silent peer
		got := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			got <- err
		}()
		synctest.Wait()
		fc.failWrite.Store(true)
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, errRefused, "Ignore: the Write gets its error, the connection is kept")
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case err := <-got:
			require.ErrorIs(t, err, tether.ErrIdleTimeout)
		default:
			t.Fatal("the watchdog never fired on the kept connection")
		}
	})
}

// Close while the write buffer is written to a connection that Ignore kept
// closes that connection and ends the reconnect at once.
func TestCloseDuringFlushToKeptConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fc *failOnce
		d := wrapEach(func(c net.Conn) net.Conn { fc = &failOnce{Conn: c}; return fc })
		release := make(chan struct{})
		h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				<-release
				return tether.Ignore
			}
			return tether.Reconnect
		})
		tt, err := tether.Dial(t.Context(), d, "a", h, tether.WithWriteBuffer(100))
		require.NoError(t, err)
		s := d.Server(t)
		fc.failRead.Store(true)
		go tt.Read(make([]byte, 1)) // meets the error: the handler holds the decision
		synctest.Wait()
		_, err = tt.Write([]byte("hello"))
		require.NoError(t, err)
		close(release)
		synctest.Wait() // the buffer is being written: the peer reads nothing
		require.NoError(t, tt.Close())
		synctest.Wait()
		require.Zero(t, tetherGoroutines(), "the reconnect goroutine outlived Close")
		require.True(t, peerSeesClose(s), "the kept connection is closed")
	})
}
