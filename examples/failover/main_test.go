package main

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestScript checks the sequence of the demo: which server answers each
// request, and the events in between.
func TestScript(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	require.NoError(t, run(context.Background(), config{}, &stdout, &stderr))
	require.Empty(t, stderr.String())
	got := regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(stdout.String(), "ADDR")
	require.Equal(t, `servers: A ADDR, B ADDR, C ADDR
policy: Logging, Notify, Backoff, StickyFailover(A, B, C)
connected to A
request 1: answered by A
request 2: answered by A
request 3: answered by A
server A goes down
  lost A: EOF
  dial A: connection refused
  reconnected to B
request 4: answered by B
request 5: answered by B
request 6: answered by B
server B goes down
  lost B: EOF
  dial A: connection refused
  dial B: connection refused
  reconnected to C
request 7: answered by C
request 8: answered by C
request 9: answered by C
server A comes back: the client stays on C while C works
request 10: answered by C
request 11: answered by C
request 12: answered by C
server C goes down
  lost C: EOF
  reconnected to A
request 13: answered by A
request 14: answered by A
request 15: answered by A
server A goes down: all three are down
  lost A: EOF
  dial A: connection refused
  dial B: connection refused
  dial C: connection refused
server B comes back
  dial A: connection refused
  reconnected to B
request 16: answered by B
request 17: answered by B
request 18: answered by B
18 requests: A answered 6, B 6, C 6
`, got)
}

// TestServeAndClient runs the hand-driven modes: two servers, and a client
// that moves from the first to the second when the first stops.
func TestServeAndClient(t *testing.T) {
	t.Parallel()
	x := runLines(t, "-serve", "127.0.0.1:0", "-name", "X")
	y := runLines(t, "-serve", "127.0.0.1:0", "-name", "Y")
	xAddr := x.expect(t, `^serving as X on (\S+)$`)[1]
	yAddr := y.expect(t, `^serving as Y on (\S+)$`)[1]

	c := runLines(t, "-servers", xAddr+","+yAddr, "-d", "2s", "-every", "50ms")
	c.expect(t, `^request \d+: answered by X$`)
	x.cancel()
	require.ErrorIs(t, <-x.done, context.Canceled)
	c.expect(t, `^  lost `+regexp.QuoteMeta(xAddr)+`: (EOF|connection reset by peer)$`)
	c.expect(t, `^  reconnected to `+regexp.QuoteMeta(yAddr)+`$`)
	c.expect(t, `^request \d+: answered by Y$`)
	c.expect(t, `^\d+ requests, \d+ answered$`)
	require.NoError(t, c.end(t))
}

// TestClientRequestsOnTicksOnly: the client sends a request every -every
// and no more often: the events of an outage are printed, but send no
// request of their own.
func TestClientRequestsOnTicksOnly(t *testing.T) {
	t.Parallel()
	x := runLines(t, "-serve", "127.0.0.1:0", "-name", "X")
	xAddr := x.expect(t, `^serving as X on (\S+)$`)[1]

	c := runLines(t, "-servers", xAddr, "-d", "3s", "-every", "1h")
	c.expect(t, `^request 1: answered by X$`)
	x.cancel()
	require.ErrorIs(t, <-x.done, context.Canceled)
	c.expect(t, `^  lost `+regexp.QuoteMeta(xAddr)+`: (EOF|connection reset by peer)$`)
	c.expect(t, `^  dial `+regexp.QuoteMeta(xAddr)+`: connection refused$`)
	c.expect(t, `^  dial `+regexp.QuoteMeta(xAddr)+`: connection refused$`)
	require.Equal(t, "1 requests, 1 answered", c.expect(t, `^\d+ requests, \d+ answered$`)[0])
	require.NoError(t, c.end(t))
}

// TestUsage: a bad command line is an error, reported on stderr with the
// usage.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-serve", "a:1", "-servers", "b:1"}, {"-name", "x"}, {"-d", "0"}, {"extra"}, {"-nosuchflag"}} {
		var stderr strings.Builder
		_, err := parseFlags(args, &stderr)
		require.Error(t, err, "parseFlags(%q)", args)
		require.Contains(t, stderr.String(), "usage: failover", "parseFlags(%q)", args)
	}
	cfg, err := parseFlags([]string{"-servers", "a:1,b:2", "-every", "1s"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{servers: []string{"a:1", "b:2"}, d: time.Minute, every: time.Second}, cfg)
}

// wait bounds each wait of the tests: generous, for a loaded machine.
const wait = 20 * time.Second

// A running is a run in a goroutine whose stdout the test reads line by
// line.
type running struct {
	lines  chan string
	done   chan error
	cancel context.CancelFunc
}

// runLines runs args until the test ends.
func runLines(t *testing.T, args ...string) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	rn := &running{lines: make(chan string, 1000), done: make(chan error, 1), cancel: cancel}
	cfg, err := parseFlags(args, io.Discard)
	require.NoError(t, err)
	go func() {
		err := run(ctx, cfg, w, io.Discard)
		w.Close()
		rn.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			rn.lines <- sc.Text()
		}
		close(rn.lines)
	}()
	t.Cleanup(cancel)
	return rn
}

// end waits for the run to return, and returns its error.
func (rn *running) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rn.done:
		return err
	case <-time.After(wait):
		t.Fatalf("the run did not end within %v", wait)
		return nil
	}
}

// expect consumes lines up to the first that matches re, and returns its
// submatches.
func (rn *running) expect(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(wait)
	var seen []string
	for {
		select {
		case line, ok := <-rn.lines:
			if !ok {
				t.Fatalf("no line matches %q; lines:\n%s", re, strings.Join(seen, "\n"))
			}
			if m := rx.FindStringSubmatch(line); m != nil {
				return m
			}
			seen = append(seen, line)
		case <-timeout:
			t.Fatalf("no line matches %q within %v; lines:\n%s", re, wait, strings.Join(seen, "\n"))
		}
	}
}
