package faultmatrix

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/e2e/internal/e2etest"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// The server exits and comes back on the same port; behind the proxy, the
// client sees a clean close, then connections that the proxy accepts and
// resets while the server is down, then service again.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	forEachTransport(t, func(t *testing.T, tr transport) {
		e := newEnv(t, tr, envConfig{handle: echo})
		e.startReader()

		e.srv.Stop()
		time.Sleep(200 * time.Millisecond) // the server is down for a while
		e.srv.Restart()
		e.r.WaitRead(t, "hello 2\n", 1)

		_, err := e.tt.Write([]byte("ping\n"))
		require.NoError(t, err)
		e.r.WaitRead(t, "ping\n", 1)
		require.Nil(t, e.tt.Err())
		require.GreaterOrEqual(t, e.rec.Count(tether.Disconnected), 1)
		require.GreaterOrEqual(t, e.rec.Count(tether.Reconnected), 1)
		require.GreaterOrEqual(t, e.tt.Generation(), uint64(2))
		e.closeAndCheck()
	})
}

// A reset mid-stream is invisible to a reader, to a writer, and to both at
// once, and costs one reconnect.
func TestResetMidStream(t *testing.T) {
	t.Parallel()
	t.Run("reader", func(t *testing.T) {
		t.Parallel()
		testBreakUnderReader(t, func(e *env) int { return e.proxy.ResetAll() }, requireReset)
	})
	t.Run("writer", func(t *testing.T) {
		t.Parallel()
		forEachTransport(t, func(t *testing.T, tr transport) {
			var received atomic.Int64
			e := newEnv(t, tr, envConfig{handle: sink(&received)})
			werr := make(chan error, 1)
			stop := make(chan struct{})
			go func() {
				chunk := bytes.Repeat([]byte("w"), 1024)
				for {
					select {
					case <-stop:
						werr <- nil
						return
					case <-time.After(time.Millisecond):
					}
					if _, err := e.tt.Write(chunk); err != nil {
						werr <- err
						return
					}
				}
			}()
			waitFor(t, func() bool { return received.Load() >= 16<<10 }, "the server received 16 KiB")
			require.Equal(t, 1, e.proxy.ResetAll())
			e.rec.WaitAt(t, tether.Reconnected, 1)
			after := received.Load()
			waitFor(t, func() bool { return received.Load() >= after+16<<10 }, "the server received 16 KiB more")
			close(stop)
			require.NoError(t, <-werr, "the writer saw the reset")
			ev, _ := e.rec.WaitAt(t, tether.Disconnected, 1)
			requireReset(t, ev.Err)
			requireOneReconnect(t, e)
			e.closeAndCheck()
		})
	})
	t.Run("both", func(t *testing.T) {
		t.Parallel()
		forEachTransport(t, func(t *testing.T, tr transport) {
			e := newEnv(t, tr, envConfig{handle: echo})
			e.startReader()
			werr := make(chan error, 1)
			stop := make(chan struct{})
			var sent atomic.Int64
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						werr <- nil
						return
					case <-time.After(time.Millisecond):
					}
					if _, err := fmt.Fprintf(e.tt, "line %d\n", i); err != nil {
						werr <- err
						return
					}
					sent.Store(int64(i))
				}
			}()
			e.r.WaitRead(t, "line", 20)
			require.Equal(t, 1, e.proxy.ResetAll())
			e.rec.WaitAt(t, tether.Reconnected, 1)
			e.r.WaitRead(t, "hello 1\n", 2)
			e.r.WaitRead(t, "line", e.r.Count("line")+20) // echoes from the new connection
			close(stop)
			require.NoError(t, <-werr, "the writer saw the reset")
			require.Nil(t, e.r.Err(), "the reader saw the reset")
			requireOneReconnect(t, e)
			e.closeAndCheck()
		})
	})
}

// requireReset checks that err is a connection reset (or a broken pipe, when
// a write met it), as the transports report it.
func requireReset(t *testing.T, err error) {
	t.Helper()
	require.True(t, faultproxy.IsReset(err), "Disconnected.Err = %v, want a reset", err)
}

// requireOneReconnect checks that one loss made one reconnect sequence.
func requireOneReconnect(t *testing.T, e *env) {
	t.Helper()
	kinds := e.rec.String()
	require.Equal(t, 1, e.rec.Count(tether.Disconnected), "events: %v", kinds)
	require.Equal(t, 1, e.rec.Count(tether.Reconnected), "events: %v", kinds)
	require.Equal(t, 2, e.numDials())
	require.Equal(t, uint64(2), e.tt.Generation())
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", long, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The server closes the connection cleanly: the Tether sees io.EOF and
// reconnects.
func TestCleanClose(t *testing.T) {
	t.Parallel()
	testBreakUnderReader(t, func(e *env) int { return e.srv.KillConns() }, func(t *testing.T, err error) {
		require.Equal(t, io.EOF, err, "a clean close is reported as io.EOF")
	})
}

// testBreakUnderReader breaks the connection under a reader of a ticking
// server, over each transport, and checks what Disconnected says, that the
// reader goes on with the next connection's bytes, and that it took one
// reconnect.
func testBreakUnderReader(t *testing.T, fault func(*env) int, check func(t *testing.T, err error)) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		e := newEnv(t, tr, envConfig{handle: e2etest.Ticker(10 * time.Millisecond)})
		e.startReader()
		e.r.WaitRead(t, "tick\n", 5)
		require.Equal(t, 1, fault(e), "connections broken")
		ev, _ := e.rec.WaitAt(t, tether.Disconnected, 1)
		check(t, ev.Err)
		before := e.r.Count("tick\n")
		e.r.WaitRead(t, "hello 1\n", 2) // the new connection's greeting
		e.r.WaitRead(t, "tick\n", before+5)
		requireOneReconnect(t, e)
		e.closeAndCheck()
	})
}

// A server that accepts and closes at once does not make the default policy
// spin: the stability period makes each short-lived connection a failed
// attempt, and the backoff grows.
func TestAcceptCloseFlapping(t *testing.T) {
	t.Parallel()
	forEachTransport(t, func(t *testing.T, tr transport) {
		e := newEnv(t, tr, envConfig{handle: echo, policy: tether.DefaultHandler()})
		e.startReader()
		require.NoError(t, e.proxy.SetMode(faultproxy.ModeAcceptClose))
		start := time.Now()
		e.proxy.ResetAll()

		// The default policy waits 1 s ±20 %, then 1.6 s ±20 %, then
		// 2.56 s ±20 %: within 4 s, two dials (three at most, with any
		// slack), where a tight loop would make thousands.
		const window = 4 * time.Second
		time.Sleep(window) // the measure is the number of dials in the window
		n := 0
		for _, at := range e.dialTimes() {
			if at.After(start) && at.Sub(start) < window {
				n++
			}
		}
		t.Logf("%s: %d dials in %v against a server that accepts and closes", tr.name, n, window)
		require.GreaterOrEqual(t, n, 1, "it still retries")
		require.LessOrEqual(t, n, 3, "the default policy spins")
		// Each short-lived connection counts as a failed attempt.
		last := 0
		for _, ev := range e.rec.Events() {
			if ev.Kind == tether.Disconnected || ev.Kind == tether.Unreachable {
				require.Greater(t, ev.Attempt, last, "events: %v", e.rec)
				last = ev.Attempt
			}
		}
		require.Nil(t, e.tt.Err(), "the default policy gave up")
		e.closeAndCheck()
	})
}

// A peer that vanishes without a word is detected by the read idle timeout,
// within its bound, and the Tether reconnects.
func TestBlackholedPeer(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		fault func(p *faultproxy.Proxy)
		heal  func(p *faultproxy.Proxy)
	}{
		// The live connection goes silent; new connections work (a
		// half-open connection after a middlebox lost its state).
		{"strand", func(p *faultproxy.Proxy) { p.Strand() }, func(*faultproxy.Proxy) {}},
		// Every connection goes silent for a while.
		{"blackhole", func(p *faultproxy.Proxy) { p.Blackhole(true) }, func(p *faultproxy.Proxy) {
			time.Sleep(time.Second) // the blackhole lasts a second
			p.Blackhole(false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachTransport(t, func(t *testing.T, tr transport) {
				e := newEnv(t, tr, envConfig{handle: e2etest.Ticker(20 * time.Millisecond),
					opts: []tether.Option{tether.WithReadIdleTimeout(idle)}})
				e.startReader()
				e.r.WaitRead(t, "tick\n", 3)
				// The watchdog counts from the last byte read, which came
				// at this read or after it: a tick that a busy machine
				// delayed before the fault moves it earlier than start.
				quiet := e.r.LastRead()
				start := time.Now()
				tc.fault(e.proxy)
				ev, at := e.rec.WaitAt(t, tether.Disconnected, 1)
				detected := at.Sub(start)
				t.Logf("%s/%s: detected after %v (idle timeout %v; %v after the last read before the fault)",
					tc.name, tr.name, detected, idle, at.Sub(quiet))
				require.ErrorIs(t, ev.Err, tether.ErrIdleTimeout)
				require.GreaterOrEqual(t, at.Sub(quiet), idle-20*time.Millisecond, "before the idle timeout")
				require.Less(t, detected, idle+2*time.Second, "long after the idle timeout")
				tc.heal(e.proxy)
				e.r.WaitRead(t, "tick\n", e.r.Count("tick\n")+3)
				require.Nil(t, e.tt.Err())
				e.closeAndCheck()
			})
		})
	}
}

// The dials fail for a while, as each kind of failure does in production,
// then the server answers again: the Tether reports each failed dial, as one
// more attempt, and comes back.
//
//   - refused: the port refuses connections;
//   - hold: a dial hangs (the kernel drops the SYNs) and fails at the
//     per-attempt timeout;
//   - unresolved: the name the Tether dials stops resolving, which is
//     transient, not a reason to give up.
func TestDialsFailThenBack(t *testing.T) {
	t.Parallel()
	const holdTimeout = 300 * time.Millisecond
	setMode := func(m faultproxy.Mode) func(*env) {
		return func(e *env) { require.NoError(e.t, e.proxy.SetMode(m)) }
	}
	tests := []struct {
		name       string
		timeout    time.Duration // per dial attempt; 0: the default
		fail, back func(*env)
		check      func(t *testing.T, ev tether.Event)
	}{
		{"refused", 0, setMode(faultproxy.ModeRefuse), setMode(faultproxy.ModeForward),
			func(t *testing.T, ev tether.Event) {
				require.True(t, faultproxy.IsRefused(ev.Err), "Unreachable.Err = %v, want refused", ev.Err)
			}},
		{"hold", holdTimeout, setMode(faultproxy.ModeHold), setMode(faultproxy.ModeForward),
			func(t *testing.T, ev tether.Event) {
				require.True(t, e2etest.IsTimeout(ev.Err), "Unreachable.Err = %v, want a timeout", ev.Err)
				require.GreaterOrEqual(t, ev.DialTime, holdTimeout-20*time.Millisecond)
				require.Less(t, ev.DialTime, holdTimeout+2*time.Second)
			}},
		{"unresolved", 0,
			func(e *env) { e.target.Store(nil) },
			func(e *env) { addr := e.proxy.Addr(); e.target.Store(&addr) },
			func(t *testing.T, ev tether.Event) {
				var dnsErr *net.DNSError
				require.ErrorAs(t, ev.Err, &dnsErr)
				require.True(t, dnsErr.IsNotFound)
				require.False(t, tether.IsPermanent(ev.Err), "a name that does not resolve now is transient")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "hold" && !slices.Contains(faultproxy.AllFaults(), faultproxy.FaultHold) {
				t.Skip("faultproxy.ModeHold needs Linux")
			}
			forEachTransport(t, func(t *testing.T, tr transport) {
				e := newEnv(t, tr, envConfig{handle: echo, timeout: tc.timeout})
				e.startReader()
				tc.fail(e)
				e.proxy.ResetAll()
				lost, _ := e.rec.WaitAt(t, tether.Disconnected, 1)
				for i := 1; i <= 3; i++ {
					ev, _ := e.rec.WaitAt(t, tether.Unreachable, i)
					tc.check(t, ev)
					require.Equal(t, lost.Attempt+i, ev.Attempt, "each failed dial is one more attempt")
				}
				tc.back(e)
				e.r.WaitRead(t, "hello 1\n", 2)
				require.Nil(t, e.tt.Err())
				e.closeAndCheck()
			})
		})
	}
}

// Close returns promptly whatever the Tether is doing, and every operation
// blocked on it returns net.ErrClosed.
func TestCloseDuring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   envConfig
		fault func(t *testing.T, e *env) // returns once the Tether is in the state
	}{
		{"restart", envConfig{}, func(t *testing.T, e *env) {
			e.srv.Stop() // the proxy resets every connection while it is down
			e.rec.WaitAt(t, tether.Disconnected, 1)
			e.rec.WaitAny(t, 2, tether.Disconnected, tether.Unreachable)
		}},
		{"backoff-after-reset", envConfig{}, func(t *testing.T, e *env) {
			e.proxy.ResetAll()
			e.rec.WaitAt(t, tether.Disconnected, 1)
		}},
		{"clean-close", envConfig{}, func(t *testing.T, e *env) {
			e.srv.KillConns()
			e.rec.WaitAt(t, tether.Disconnected, 1)
		}},
		{"refused", envConfig{}, func(t *testing.T, e *env) {
			require.NoError(t, e.proxy.SetMode(faultproxy.ModeRefuse))
			e.proxy.ResetAll()
			e.rec.WaitAt(t, tether.Unreachable, 1)
		}},
		{"accept-close", envConfig{}, func(t *testing.T, e *env) {
			require.NoError(t, e.proxy.SetMode(faultproxy.ModeAcceptClose))
			e.proxy.ResetAll()
			e.rec.WaitAny(t, 2, tether.Disconnected, tether.Unreachable) // tls: the handshake fails
		}},
		{"slow-dial", envConfig{timeout: time.Hour}, func(t *testing.T, e *env) {
			require.NoError(t, e.proxy.SetMode(faultproxy.ModeHold))
			e.proxy.ResetAll()
			waitFor(t, func() bool { return e.numDials() == 2 }, "the redial began")
		}},
		{"blackhole-read", envConfig{}, func(t *testing.T, e *env) {
			e.proxy.Strand()
		}},
		{"blackhole-handshake", envConfig{timeout: time.Hour}, func(t *testing.T, e *env) {
			e.proxy.Blackhole(true) // new connections forward nothing: a TLS handshake hangs
			e.proxy.ResetAll()
			waitFor(t, func() bool { return e.numDials() == 2 }, "the redial began")
		}},
		{"unresolvable", envConfig{}, func(t *testing.T, e *env) {
			e.target.Store(nil)
			e.proxy.ResetAll()
			e.rec.WaitAt(t, tether.Unreachable, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachTransport(t, func(t *testing.T, tr transport) {
				cfg := tc.cfg
				cfg.handle = echo
				cfg.policy = tether.DefaultHandler() // real backoff waits: Close must cut them
				e := newEnv(t, tr, cfg)
				e.startReader()
				tc.fault(t, e)

				// A Write blocked behind the fault (it waits for the
				// reconnect, or for a connection that carries nothing).
				werr := make(chan error, 1)
				go func() {
					big := make([]byte, 8<<20)
					_, err := e.tt.Write(big)
					werr <- err
				}()
				time.Sleep(50 * time.Millisecond) // let the Write block; if it has not yet, it meets the Close instead
				took := e.closeAndCheck()
				t.Logf("%s/%s: Close took %v", tc.name, tr.name, took)
				e2etest.RequireClosed(t, e.tt, werr)
			})
		})
	}
}
