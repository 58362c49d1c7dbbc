package transporttest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
)

// waitState waits until tt is in state want, failing the test after a
// generous timeout or if it shuts down first.
func waitState(t *testing.T, tt *tether.Tether, want tether.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for s := tt.State(); s != want; s = tt.State() {
		if s == tether.Shutdown || !tt.WaitForStateChange(ctx, s) {
			t.Fatalf("State() = %v, want %v (Err: %v)", tt.State(), want, tt.Err())
		}
	}
}

// downPolicy reconnects at once after a loss, and waits an hour after a
// failed dial: only ResetBackoff (or Close) ends that wait.
func downPolicy(ev *tether.Event) tether.Action {
	if ev.Kind == tether.Unreachable {
		ev.Delay = time.Hour
	}
	return tether.Reconnect
}

// takeDown stops srv and waits until tt, which a Read keeps watching, has
// noticed and failed a dial: TransientFailure for an hour.
func takeDown(t *testing.T, srv *Server, tt *tether.Tether) {
	t.Helper()
	srv.Stop()
	go tt.Read(make([]byte, 1)) // notices the loss; ends with Close
	waitState(t, tt, tether.TransientFailure)
}

// testStates runs the state machine's methods and options over a real
// transport: lazy dial, Connect, WaitForStateChange, Reconnect,
// ResetBackoff, the write buffer, fail-fast, and the reconnect boundary.
func testStates(t *testing.T, tr Transport) {
	t.Run("Lazy", func(t *testing.T) {
		t.Parallel()
		srv := StartServer(t, tr, Echo)
		rec := NewRecorder(nil)
		tt := dial(t, tr, srv.Addr(), rec, tether.WithLazy())
		require.Equal(t, tether.Idle, tt.State())
		require.Equal(t, 0, srv.Accepted(), "a lazy Dial dials nothing")
		roundtrip(t, tt, "first")
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, []tether.EventKind{tether.Connected}, rec.Kinds())
	})
	t.Run("Connect", func(t *testing.T) {
		t.Parallel()
		srv := StartServer(t, tr, Echo)
		tt := dial(t, tr, srv.Addr(), NewRecorder(nil), tether.WithLazy())
		tt.Connect()
		waitState(t, tt, tether.Ready)
		roundtrip(t, tt, "ping")
	})
	t.Run("Reconnect", func(t *testing.T) {
		t.Parallel()
		srv := StartServer(t, tr, Echo)
		rec := NewRecorder(nil)
		tt := dial(t, tr, srv.Addr(), rec)
		roundtrip(t, tt, "one")
		tt.Reconnect()
		rec.WaitFor(t, tether.Reconnected, 1)
		require.ErrorIs(t, rec.Events()[1].Err, tether.ErrForcedReconnect)
		waitState(t, tt, tether.Ready)
		roundtrip(t, tt, "two")
		require.Equal(t, uint64(2), tt.Generation())
	})
	t.Run("ResetBackoff", func(t *testing.T) {
		// Not parallel: it stops its server (see Run).
		srv := StartServer(t, tr, Echo)
		tt := dial(t, tr, srv.Addr(), NewRecorder(downPolicy))
		takeDown(t, srv, tt)
		srv.Restart()
		start := time.Now()
		tt.ResetBackoff()
		waitState(t, tt, tether.Ready)
		require.Less(t, time.Since(start), waitTimeout)
	})
	t.Run("WriteBuffer", func(t *testing.T) {
		// Not parallel: it stops its server (see Run).
		srv := StartServer(t, tr, Echo)
		tt := dial(t, tr, srv.Addr(), NewRecorder(downPolicy), tether.WithWriteBuffer(64))
		takeDown(t, srv, tt)
		for _, w := range []string{"buffered ", "while ", "down"} {
			n, err := io.WriteString(tt, w)
			require.NoError(t, err, "Write(%q) while down", w)
			require.Equal(t, len(w), n)
		}
		require.Equal(t, 19, tt.Buffered())
		srv.Restart()
		tt.ResetBackoff()
		waitState(t, tt, tether.Ready)
		require.Zero(t, tt.Buffered())
		_, err := io.WriteString(tt, "!")
		require.NoError(t, err)
		// The Read that takeDown left pending took the first echoed byte.
		readString(t, tt, "uffered while down!")
	})
	t.Run("FailFast", func(t *testing.T) {
		// Not parallel: it stops its server (see Run).
		srv := StartServer(t, tr, Echo)
		tt := dial(t, tr, srv.Addr(), NewRecorder(downPolicy), tether.WithFailFast())
		takeDown(t, srv, tt)
		n, err := io.WriteString(tt, "x")
		require.ErrorIs(t, err, tether.ErrBufferFull)
		require.Zero(t, n)
	})
	t.Run("Boundary", func(t *testing.T) {
		t.Parallel()
		srv := StartServer(t, tr, Echo)
		rec := NewRecorder(nil)
		tt := dial(t, tr, srv.Addr(), rec, tether.WithReconnectBoundary())
		roundtrip(t, tt, "request")
		got := make(chan error, 1)
		go func() { // waits for a reply that dies with the connection
			_, err := tt.Read(make([]byte, 1))
			got <- err
		}()
		srv.KillConns()
		err := recv(t, got, "the Read waiting for a reply")
		var re *tether.ReconnectedError
		require.True(t, errors.As(err, &re), "Read error = %v, want a *ReconnectedError", err)
		require.Equal(t, uint64(1), re.Old)
		_, err = io.WriteString(tt, "again")
		require.ErrorIs(t, err, tether.ErrReconnected, "the first Write after the reconnect")
		roundtrip(t, tt, "again")
	})
}
