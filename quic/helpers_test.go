package quic_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/io-tether/tether/internal/transporttest"
)

func TestMain(m *testing.M) { transporttest.Main(m) }

// wait bounds every wait of the tests: generous, so that a slow machine does
// not fail them, and short enough that a hang fails rather than stalls.
const wait = 10 * time.Second

// reader reads a net.Conn in a goroutine of its own, so that a test can wait
// for a reconnect while a Read is pending (as a real client does).
type reader struct {
	data chan []byte
	err  chan error
	buf  []byte
}

func startReader(c net.Conn) *reader {
	r := &reader{data: make(chan []byte, 64), err: make(chan error, 1)}
	go func() {
		for {
			b := make([]byte, 4096)
			n, err := c.Read(b)
			if n > 0 {
				r.data <- b[:n]
			}
			if err != nil {
				r.err <- err
				return
			}
		}
	}()
	return r
}

// expect waits until the reader has read want, and consumes it.
func (r *reader) expect(t *testing.T, want string) {
	t.Helper()
	r.fill(t, func() bool { return len(r.buf) >= len(want) }, strconv.Quote(want))
	got := string(r.buf[:len(want)])
	r.buf = r.buf[len(want):]
	if got != want {
		t.Fatalf("Read() = %q, want %q", got, want)
	}
}

// until waits until what the reader read ends with suffix, and returns and
// consumes all of it.
func (r *reader) until(t *testing.T, suffix string) string {
	t.Helper()
	r.fill(t, func() bool { return strings.HasSuffix(string(r.buf), suffix) }, "a suffix "+strconv.Quote(suffix))
	got := string(r.buf)
	r.buf = nil
	return got
}

// fill reads into r.buf until enough reports true, failing the test with
// want in its message if Read fails or it takes too long.
func (r *reader) fill(t *testing.T, enough func() bool, want string) {
	t.Helper()
	timeout := time.After(wait)
	for !enough() {
		select {
		case b := <-r.data:
			r.buf = append(r.buf, b...)
		case err := <-r.err:
			t.Fatalf("Read() = %v after %q, want %s", err, r.buf, want)
		case <-timeout:
			t.Fatalf("Read: got %q within %v, want %s", r.buf, wait, want)
		}
	}
}

// end waits for the reader's final error.
func (r *reader) end(t *testing.T) error {
	t.Helper()
	return recv(t, r.err, "the reader's Read")
}

// recv receives from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s: nothing within %v", what, wait)
		panic("unreachable")
	}
}
