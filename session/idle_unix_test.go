//go:build unix

package session_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
)

// cpuTime returns the CPU time the process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Detached sessions cost no CPU while they wait for their clients: their
// senders sleep until a transport comes (a ping or an ack falls due only
// on one), and so do their liveness checks, rather than waking every
// millisecond for the detached lifetime (50 of them took 100 to 200 ms of
// CPU a second when they did), or once a keep-alive period (with this
// test's 50 ms period, 1,000 wake-ups a second, about 50 ms of CPU under
// -race).
func TestDetachedSessionsIdle(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t), session.WithKeepAlive(20*time.Millisecond, 30*time.Millisecond), session.WithLinger(0))
	defer sl.Close()
	var ss []*session.Conn
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil,
			session.WithKeepAlive(time.Hour, time.Hour), session.WithLinger(0))
		cancel()
		require.NoError(t, err)
		s, err := sl.AcceptSession()
		require.NoError(t, err)
		ss = append(ss, s)
		c.Tether().Close() // the client goes away without a close frame
		c.Close()
	}
	for _, s := range ss {
		waitNotReady(t, s)
	}
	time.Sleep(100 * time.Millisecond) // past the keep-alive interval and its timeout
	before := cpuTime(t)
	time.Sleep(time.Second)
	used := cpuTime(t) - before
	t.Logf("50 detached sessions used %v of CPU in a second", used)
	require.Less(t, used, 15*time.Millisecond, "50 detached sessions in a second")
}
