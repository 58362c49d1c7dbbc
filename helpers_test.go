package tether_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// decide returns a Recorder whose decisions f makes.
func decide(f func(ev *tether.Event) tether.Action) *tethertest.Recorder {
	return &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(
		func(_ context.Context, ev *tether.Event) tether.Action { return f(ev) })}
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
