package middleware_test

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Loopback addresses of the fake servers. Nothing listens on them: the
// Dialer of servers hands out in-memory connections.
const (
	addrA = "127.0.0.1:7001"
	addrB = "127.0.0.1:7002"
	addrC = "127.0.0.1:7003"
)

// errRefused is the dial error of an address with no server, as the tcp
// dialer reports it: transient.
var errRefused error = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

// servers returns a Dialer whose dials to the addresses in serve connect,
// and run the address's function on the server's end (closed when it
// returns), until the test ends; dials to any other address fail with
// errRefused. Down and Up take an address of serve down and back.
func servers(t *testing.T, serve map[string]func(net.Conn)) *tethertest.Dialer {
	d := &tethertest.Dialer{}
	d.FailWhen(func(_ int, addr string) error {
		if serve[addr] == nil {
			return errRefused
		}
		return nil
	})
	go d.Serve(t.Context(), func(c *tethertest.Conn) { serve[c.Addr()](c) })
	return d
}

// dialsTo counts d's dials to addr since at.
func dialsTo(d *tethertest.Dialer, addr string, since time.Time) int {
	k := 0
	for _, r := range d.History() {
		if r.Addr == addr && !r.At.Before(since) {
			k++
		}
	}
	return k
}

// loseServer dials addrA, where a server holds each connection, with h;
// once the connection has lived for age, it takes the server down while a
// Read waits on the Tether. It returns the Tether, its Dialer, the time of
// the loss, and the Read's error when it comes.
func loseServer(t *testing.T, h tether.DisconnectHandler, age time.Duration) (*tether.Tether, *tethertest.Dialer, time.Time, <-chan error) {
	t.Helper()
	n := servers(t, map[string]func(net.Conn){addrA: hold})
	tt := tethertest.Dial(t, n, addrA, h)
	time.Sleep(age)
	read := make(chan error, 1)
	go func() {
		_, err := tt.Read(make([]byte, 1))
		read <- err
	}()
	synctest.Wait()
	lost := time.Now()
	n.Down(addrA)
	return tt, n, lost, read
}

// closeAtOnce closes tt, which waits in its handler (a loseServer's Tether,
// whose read reports the blocked Read): Close, and the Read, return with
// no time passed.
func closeAtOnce(t *testing.T, tt *tether.Tether, read <-chan error) {
	t.Helper()
	start := time.Now()
	require.NoError(t, tt.Close())
	synctest.Wait() // every goroutine that can run has run; no time passed
	require.Equal(t, start, time.Now())
	select {
	case err := <-read:
		require.ErrorIs(t, err, net.ErrClosed)
	default:
		t.Fatal("the Read blocked in the handler's wait did not return at Close")
	}
}

// hold is a serve function that keeps the connection until the client or
// the test closes it.
func hold(c net.Conn) { io.Copy(io.Discard, c) }

// sendAndClose returns a serve function that writes s and closes.
func sendAndClose(s string) func(net.Conn) {
	return func(c net.Conn) { c.Write([]byte(s)) }
}

// drain reads t until it fails, so that the Tether notices losses, and
// closes the returned channel then.
func drain(t *tether.Tether) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, t)
	}()
	return done
}

// reconnect is the innermost handler of most tests: it always reconnects.
var reconnect = tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action {
	return tether.Reconnect
})

// handle calls h on a copy of ev and returns the action and the event after
// the call.
func handle(h tether.DisconnectHandler, ev tether.Event) (tether.Action, tether.Event) {
	a := h.HandleDisconnect(context.Background(), &ev)
	return a, ev
}

// answer returns the innermost handler of a test that looks at what its
// middleware passes on: a Recorder that answers a, after change (when not
// nil) changed the event.
func answer(a tether.Action, change func(ev *tether.Event)) *tethertest.Recorder {
	return &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if change != nil {
			change(ev)
		}
		return a
	})}
}

// probe returns a Middleware that appends "name in" to *log on the event's
// way to next, and "name out" on its way back, each followed by what show
// says of the event then (nothing when show is nil).
func probe(log *[]string, name string, show func(ev *tether.Event) string) tether.Middleware {
	note := func(dir string, ev *tether.Event) {
		if show != nil {
			dir += " " + show(ev)
		}
		*log = append(*log, name+" "+dir)
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			note("in", ev)
			a := next.HandleDisconnect(ctx, ev)
			note("out", ev)
			return a
		})
	}
}
