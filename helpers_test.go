package tether_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"

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
