package tether_test

import (
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
)

// The read watchdog turns a silent peer into a disconnect after the idle
// timeout, and only then.
func TestReadIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newPipeDialer()
		r := &recorder{}
		tt, err := tether.Dial(t.Context(), d, "a", r, tether.WithReadIdleTimeout(5*time.Second))
		require.NoError(t, err)
		defer tt.Close()
		s1 := d.server(t)

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
		_, err = readFull(tt, buf)
		require.NoError(t, err)
		require.Equal(t, 30*time.Second, time.Since(start))
		require.Equal(t, []tether.EventKind{tether.Connected}, r.kinds())

		// Then it goes silent (a blackhole): 5 s later the watchdog reports it.
		start = time.Now()
		got := readAsync(tt, 1)
		s2 := d.server(t)
		require.Equal(t, 5*time.Second, time.Since(start))
		go s2.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		evs := r.all()
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
		require.Len(t, r.kinds(), 3)

		// A later user deadline does not hide the watchdog.
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Hour)))
		start = time.Now()
		got = readAsync(tt, 1)
		s3 := d.server(t)
		require.Equal(t, 5*time.Second, time.Since(start))
		go s3.Write([]byte("y"))
		require.NoError(t, (<-got).err)
	})
}

func TestReadIdleTimeoutNegative(t *testing.T) {
	_, err := tether.Dial(t.Context(), newPipeDialer(), "a", nil, tether.WithReadIdleTimeout(-1))
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
		d := newPipeDialer()
		d.wrap = func(n int, c net.Conn) net.Conn {
			if n == 0 {
				return connTimeoutConn{c}
			}
			return c
		}
		r := &recorder{}
		tt, err := tether.Dial(t.Context(), d, "a", r, tether.WithReadIdleTimeout(time.Hour))
		require.NoError(t, err)
		defer tt.Close()
		got := readAsync(tt, 1)
		d.server(t)
		go d.server(t).Write([]byte("x"))
		require.NoError(t, (<-got).err)
		ev := r.all()[1]
		require.Equal(t, tether.Disconnected, ev.Kind)
		require.Equal(t, deadPeerError{}, ev.Err)
	})
}
