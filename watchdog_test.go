package tether_test

import (
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// The read watchdog turns a silent peer into a disconnect after the idle
// timeout, and only then.
func TestReadIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(5*time.Second))
		s1 := d.Server(t)

		// A peer that sends every 3 s keeps the connection.
		go func() {
			for range 10 {
				time.Sleep(3 * time.Second)
				if _, err := s1.Write([]byte("h")); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		buf := make([]byte, 10)
		_, err := io.ReadFull(tt, buf)
		require.NoError(t, err)
		require.Equal(t, 30*time.Second, time.Since(start))
		require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())

		// Then it goes silent (a blackhole): 5 s later the watchdog reports it.
		start = time.Now()
		got := readAsync(tt, 1)
		s2 := d.Server(t)
		require.Equal(t, 5*time.Second, time.Since(start))
		go s2.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		evs := r.Events()
		require.Equal(t, tether.Disconnected, evs[1].Kind)
		require.ErrorIs(t, evs[1].Err, tether.ErrIdleTimeout)
		require.ErrorIs(t, evs[1].Err, os.ErrDeadlineExceeded)

		// The user's sooner deadline still applies, and is no disconnect.
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(2*time.Second)))
		start = time.Now()
		_, err = tt.Read(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.NotErrorIs(t, err, tether.ErrIdleTimeout)
		require.Equal(t, 2*time.Second, time.Since(start))
		require.Len(t, r.Kinds(), 3)

		// A later user deadline does not hide the watchdog, and the 2 s
		// of silence already waited count: it fires 3 s later.
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Hour)))
		start = time.Now()
		got = readAsync(tt, 1)
		s3 := d.Server(t)
		require.Equal(t, 3*time.Second, time.Since(start))
		go s3.Write([]byte("y"))
		require.NoError(t, (<-got).err)
	})
}

// The watchdog measures the connection's silence across Read calls: an
// application that polls with read deadlines far shorter than the idle
// timeout does not defeat it (it used to restart at every Read, so a frozen
// peer was never detected).
func TestReadIdleTimeoutWithPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(2*time.Second))
		s1 := d.Server(t)

		// Bytes every second keep it alive, polled every 100 ms.
		go func() {
			for range 5 {
				time.Sleep(time.Second)
				s1.Write([]byte("h"))
			}
		}()
		buf := make([]byte, 1)
		start := time.Now()
		timeouts := 0
		for got := 0; got < 5; {
			require.NoError(t, tt.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
			n, err := tt.Read(buf)
			if err != nil {
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				timeouts++
				continue
			}
			got += n
		}
		require.Equal(t, 5*time.Second, time.Since(start))
		require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())
		require.Greater(t, timeouts, 40)

		// Then the peer freezes. The poller sees only its own timeouts,
		// until 2 s of silence have passed in its Reads: a disconnect.
		start = time.Now()
		polls := 0
		for len(r.Kinds()) < 2 {
			require.NoError(t, tt.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
			_, err := tt.Read(buf)
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			polls++
			require.Less(t, polls, 100, "the watchdog never fired")
		}
		evs := r.Events()
		require.Equal(t, tether.Disconnected, evs[1].Kind)
		require.ErrorIs(t, evs[1].Err, tether.ErrIdleTimeout)
		require.Equal(t, 2*time.Second, evs[1].Since.Sub(start), "the loss is noticed after 2 s of silence")
		d.Server(t)
	})
}

// Time when no Read is pending is not silence: bytes may be waiting unread.
func TestReadIdleTimeoutCountsOnlyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(2*time.Second))
		s1 := d.Server(t)

		buf := make([]byte, 1)
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(1500*time.Millisecond)))
		_, err := tt.Read(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		time.Sleep(time.Minute) // nobody reads
		require.NoError(t, tt.SetReadDeadline(time.Time{}))
		start := time.Now()
		got := readAsync(tt, 1)
		d.Server(t)
		require.Equal(t, 500*time.Millisecond, time.Since(start), "1.5 s + 0.5 s of silence in Reads")
		_ = s1
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
		tt.Close()
		<-got
	})
}

func TestReadIdleTimeoutNegative(t *testing.T) {
	_, err := tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithReadIdleTimeout(-1))
	require.EqualError(t, err, "tether: negative read idle timeout")
}

// connTimeoutConn fails Reads with a timeout of the connection's own (a
// dead peer), not a deadline.
type connTimeoutConn struct{ net.Conn }

type deadPeerError struct{}

func (deadPeerError) Error() string { return "timeout: no recent network activity" }
func (deadPeerError) Timeout() bool { return true }

func (connTimeoutConn) Read([]byte) (int, error) { return 0, deadPeerError{} }

// The watchdog claims only its own deadline: a connection's own timeout
// keeps its error.
func TestReadIdleTimeoutKeepsOtherTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapFirst(func(c net.Conn) net.Conn { return connTimeoutConn{c} })
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r, tether.WithReadIdleTimeout(time.Hour))
		got := readAsync(tt, 1)
		d.Server(t)
		go d.Server(t).Write([]byte("x"))
		require.NoError(t, (<-got).err)
		ev := r.Events()[1]
		require.Equal(t, tether.Disconnected, ev.Kind)
		require.Equal(t, deadPeerError{}, ev.Err)
	})
}
