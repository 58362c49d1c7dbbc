package tether_test

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// stateProbe is a handler that notes the state its Tether is in each time
// it decides (once watch has named the Tether), and lets decide answer.
type stateProbe struct {
	decide func(*tether.Event) tether.Action

	mu     sync.Mutex
	t      *tether.Tether
	states []tether.State
}

func (p *stateProbe) HandleDisconnect(_ context.Context, ev *tether.Event) tether.Action {
	p.mu.Lock()
	if p.t != nil {
		p.states = append(p.states, p.t.State())
	}
	p.mu.Unlock()
	return p.decide(ev)
}

func (p *stateProbe) snapshot() []tether.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tether.State(nil), p.states...)
}

func (p *stateProbe) watch(t *tether.Tether) {
	p.mu.Lock()
	p.t = t
	p.mu.Unlock()
}

// A lost connection goes Ready → Connecting (the handler decides) →
// TransientFailure (its delay) → Connecting (the dial) → Ready.
func TestStatesThroughAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &stateProbe{decide: func(ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				ev.Delay = time.Second
			}
			return tether.Reconnect
		}}
		tt, d := dialPipe(t, r)
		r.watch(tt)
		require.Equal(t, tether.Ready, tt.State())

		dialing := make(chan tether.State, 1)
		d.FailWhen(func(n int, _ string) error {
			if n == 1 {
				dialing <- tt.State()
			}
			return nil
		})
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		synctest.Wait()
		require.Equal(t, tether.TransientFailure, tt.State())
		require.Equal(t, []tether.State{tether.Connecting}, r.snapshot(), "while the handler decides")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, []tether.State{tether.Connecting, tether.Connecting}, r.snapshot())
		require.Equal(t, tether.Connecting, <-dialing, "while dialing")
		d.Server(t)
	})
}

// WaitForStateChange returns at once when the state is not from, waits for
// the change when it is, and returns false when ctx ends first.
func TestWaitForStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, _ := dialPipe(t, nil)
		require.True(t, tt.WaitForStateChange(t.Context(), tether.Idle))

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start := time.Now()
		require.False(t, tt.WaitForStateChange(ctx, tether.Ready))
		require.Equal(t, time.Minute, time.Since(start))

		changed := make(chan bool, 3)
		for i := range 3 { // any number of waiters
			ctx := t.Context()
			if i == 0 {
				ctx = nil // never ends, and no panic
			}
			go func() { changed <- tt.WaitForStateChange(ctx, tether.Ready) }()
		}
		synctest.Wait()
		require.Empty(t, changed)
		tt.Close()
		for range 3 {
			require.True(t, <-changed)
		}
		require.Equal(t, tether.Shutdown, tt.State())
	})
}

// Close and a give-up lead to Shutdown, which is final.
func TestStateShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := giveUpOn(tether.Disconnected)
		tt, d := dialPipe(t, r)
		d.Server(t).Close()
		tt.Read(make([]byte, 1))
		require.Equal(t, tether.Shutdown, tt.State())
		tt.Connect()
		tt.Reconnect()
		tt.ResetBackoff()
		require.Equal(t, tether.Shutdown, tt.State())
	})
}

// Ignore on Unreachable leaves the Tether Idle: down, and the next
// operation, or Connect, dials (Connecting). Ignore on Disconnected keeps
// the connection: Ready.
func TestStatesOnIgnore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ignoreOn(tether.Unreachable)
		tt, d := dialPipe(t, r)
		d.FailWhen(func(int, string) error { return errRefused })
		d.Server(t).Close()
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, errRefused)
		require.Equal(t, tether.Idle, tt.State())

		d.FailWhen(nil)
		tt.Connect()
		for s := tt.State(); s != tether.Ready; s = tt.State() {
			require.Equal(t, tether.Connecting, s, "Connect dials at once")
			require.True(t, tt.WaitForStateChange(t.Context(), s))
		}
		d.Server(t)
	})
	synctest.Test(t, func(t *testing.T) {
		d := wrapEach(failingRead(os.ErrPermission))
		r := &stateProbe{decide: func(*tether.Event) tether.Action { return tether.Ignore }}
		tt := tethertest.Dial(t, d, "a", r)
		r.watch(tt)
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrPermission)
		require.Equal(t, []tether.State{tether.Connecting}, r.snapshot())
		require.Equal(t, tether.Ready, tt.State())
	})
}

// WithLazy: Dial returns at once in Idle without dialing; the first Read
// (or Write, or Connect) dials, and the connection is Connected.
func TestLazy(t *testing.T) {
	for name, start := range map[string]func(tt *tether.Tether){
		"read":    func(tt *tether.Tether) { go tt.Read(make([]byte, 1)) },
		"write":   func(tt *tether.Tether) { go tt.Write([]byte("x")) },
		"connect": func(tt *tether.Tether) { tt.Connect() },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &tethertest.Dialer{}
				r := &tethertest.Recorder{}
				ctx, cancel := context.WithCancel(t.Context())
				tt, err := tether.Dial(ctx, d, "a", r, tether.WithLazy())
				cancel() // lazy dials do not run on Dial's ctx
				require.NoError(t, err)
				defer tt.Close()
				time.Sleep(time.Hour)
				require.Equal(t, tether.Idle, tt.State())
				require.Equal(t, 0, d.Dials())
				require.Equal(t, "a", tt.RemoteAddr().String(), "the address to dial, before the first connection")
				require.Equal(t, "tether", tt.LocalAddr().Network())
				tt.ResetBackoff()
				tt.Reconnect()
				require.Equal(t, tether.Idle, tt.State(), "ResetBackoff and Reconnect do not dial")

				start(tt)
				d.Server(t)
				synctest.Wait()
				require.Equal(t, tether.Ready, tt.State())
				require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())
				require.Equal(t, uint64(1), tt.Generation())
				tt.Connect() // a no-op now
				synctest.Wait()
				require.Equal(t, 1, d.Dials())
			})
		})
	}
}

// A lazy Tether's operations wait as during an outage: bounded by their
// deadline and by Close.
func TestLazyOperationsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithLazy())
		d.FailWhen(func(int, string) error { return errRefused })
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Second)))
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		got := writeAsync(tt, "x")
		synctest.Wait()
		tt.Close()
		require.ErrorIs(t, (<-got).err, net.ErrClosed)
	})
}

// ResetBackoff cuts the delay of a TransientFailure Tether short and dials
// now; anywhere else it does nothing.
func TestResetBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := delayed(time.Hour)
		tt, d := dialPipe(t, r)
		tt.ResetBackoff() // Ready: nothing to cut
		d.FailNext(1, errRefused)
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		synctest.Wait()
		require.Equal(t, tether.TransientFailure, tt.State())
		start := time.Now()
		tt.ResetBackoff()
		synctest.Wait()
		require.Equal(t, 2, d.Dials(), "the dial after the reset")
		require.Equal(t, tether.TransientFailure, tt.State(), "the dial failed: the next delay")
		time.Sleep(time.Minute)
		tt.ResetBackoff()
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, time.Minute, time.Since(start), "no delay was waited")
		d.Server(t)
	})
}

// Reconnect drops a Ready connection and reconnects as after a loss: a
// Disconnected event with ErrForcedReconnect, not counted as a failed
// attempt however young the connection; the boundary is raised.
func TestForcedReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithStabilityPeriod(time.Hour),
			tether.WithReconnectBoundary())
		s1 := d.Server(t)
		got := readAsync(tt, 1)
		synctest.Wait()
		tt.Reconnect()
		d.Server(t)
		res := <-got
		require.ErrorIs(t, res.err, tether.ErrReconnected, "the Read blocked on the old connection")
		require.True(t, peerSeesClose(s1))
		evs := r.Events()
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
		require.ErrorIs(t, evs[1].Err, tether.ErrForcedReconnect)
		require.Equal(t, 0, evs[1].Attempt)
		require.Equal(t, 0, evs[2].Attempt)
		require.Equal(t, 0, evs[2].Total)
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, uint64(2), tt.Generation())
	})
}

// Every method of a nil or zero Tether is safe: Shutdown, no-op controls.
func TestNilTetherStates(t *testing.T) {
	for _, tt := range []*tether.Tether{nil, new(tether.Tether)} {
		require.Equal(t, tether.Shutdown, tt.State())
		tt.Connect()
		tt.ResetBackoff()
		tt.Reconnect()
		require.True(t, tt.WaitForStateChange(t.Context(), tether.Ready))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.False(t, tt.WaitForStateChange(ctx, tether.Shutdown))
		require.Zero(t, tt.Buffered())
		require.Zero(t, tt.Dropped())
	}
}

func TestStateStrings(t *testing.T) {
	for s, want := range map[tether.State]string{
		tether.Idle: "idle", tether.Connecting: "connecting", tether.Ready: "ready",
		tether.TransientFailure: "transient-failure", tether.Shutdown: "shutdown", tether.State(9): "state(9)",
	} {
		require.Equal(t, want, s.String())
	}
	for p, want := range map[tether.WritePolicy]string{
		tether.WriteWhole: "whole", tether.WriteResume: "resume", tether.WriteDrop: "drop",
	} {
		require.Equal(t, want, p.String())
	}
}

// NextState names the state each decision leads to, as the Tether enters it.
func TestEventNextState(t *testing.T) {
	for _, tc := range []struct {
		kind  tether.EventKind
		delay time.Duration
		a     tether.Action
		want  tether.State
	}{
		{tether.Connected, 0, tether.Reconnect, tether.Ready},
		{tether.Connected, 0, tether.Ignore, tether.Ready},
		{tether.Connected, 0, tether.GiveUp, tether.Shutdown},
		{tether.Reconnected, time.Second, tether.Reconnect, tether.Ready},
		{tether.Disconnected, 0, tether.Reconnect, tether.Connecting},
		{tether.Disconnected, time.Second, tether.Reconnect, tether.TransientFailure},
		{tether.Disconnected, 0, tether.Ignore, tether.Ready},
		{tether.Disconnected, 0, tether.GiveUp, tether.Shutdown},
		{tether.Unreachable, 0, tether.Reconnect, tether.Connecting},
		{tether.Unreachable, time.Second, tether.Reconnect, tether.TransientFailure},
		{tether.Unreachable, 0, tether.Ignore, tether.Idle},
		{tether.Unreachable, time.Second, tether.GiveUp, tether.Shutdown},
	} {
		ev := tether.Event{Kind: tc.kind, Delay: tc.delay}
		require.Equal(t, tc.want, ev.NextState(tc.a), "Event{%v, Delay %v}.NextState(%v)", tc.kind, tc.delay, tc.a)
	}
}

type stateChange struct {
	from, to tether.State
	in       time.Duration
}

// WithStateObserver is told of every change, in order, with the time spent
// in the state left; first of the initial state, last of Shutdown.
func TestStateObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []stateChange // one call at a time per Tether
		tt, d := dialPipe(t, delayed(3*time.Second), tether.WithStateObserver(func(from, to tether.State, in time.Duration) {
			changes = append(changes, stateChange{from, to, in})
		}))
		time.Sleep(10 * time.Second)
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		d.Server(t)
		synctest.Wait()
		tt.Close()
		require.Equal(t, []stateChange{
			{tether.Connecting, tether.Connecting, 0},
			{tether.Connecting, tether.Ready, 0},
			{tether.Ready, tether.Connecting, 10 * time.Second},
			{tether.Connecting, tether.TransientFailure, 0},
			{tether.TransientFailure, tether.Connecting, 3 * time.Second},
			{tether.Connecting, tether.Ready, 0},
			{tether.Ready, tether.Shutdown, 0},
		}, changes)
	})
	var first []tether.State
	tt, err := tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithLazy(),
		tether.WithStateObserver(func(from, to tether.State, _ time.Duration) { first = append(first, from, to) }))
	require.NoError(t, err)
	tt.Close()
	require.Equal(t, []tether.State{tether.Idle, tether.Idle, tether.Idle, tether.Shutdown}, first)
	_, err = tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithStateObserver(nil))
	require.ErrorContains(t, err, "nil state observer")
}

// A Dial that fails tells the observer of Shutdown last, whichever way it
// failed, so that a count of Tethers per state (otel's tether.count) drops
// the Tether it never returned.
func TestStateObserverFailedDial(t *testing.T) {
	for name, h := range map[string]tether.DisconnectHandler{
		"give-up": giveUpOn(tether.Unreachable),
		"ignore":  ignoreOn(tether.Unreachable),
		"ctx":     delayed(time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &tethertest.Dialer{}
				d.Down("a")
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				var last []tether.State
				_, err := tether.Dial(ctx, d, "a", h,
					tether.WithStateObserver(func(_, to tether.State, _ time.Duration) { last = append(last, to) }))
				require.Error(t, err)
				require.Equal(t, tether.Shutdown, last[len(last)-1], "states: %v", last)
			})
		})
	}
}

// answerOnce serves the next connection of d: it reads a request of 3
// bytes, answers "re:" and the request, and closes.
func answerOnce(t *testing.T, d *tethertest.Dialer) {
	s := d.Server(t)
	go func() {
		buf := make([]byte, 3)
		io.ReadFull(s, buf)
		s.Write([]byte("re:" + string(buf)))
		s.Close()
	}()
}

// A connection that the peer closed cleanly after bytes went both ways
// ended an exchange (a server that answers one request per connection): it
// is no flap, and Attempt stays 0 however short it lived. One that carried
// bytes one way only still counts.
func TestCleanEndAfterExchangeIsNoFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithStabilityPeriod(time.Hour))
		// noticeEnd reads until the close of the current connection is seen
		// and the Tether has reconnected, then times out on the new one.
		noticeEnd := func() {
			require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Second)))
			_, err := tt.Read(make([]byte, 1))
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			require.NoError(t, tt.SetReadDeadline(time.Time{}))
		}
		for i := range 3 {
			answerOnce(t, d)
			_, err := tt.Write([]byte("req"))
			require.NoError(t, err, "request %d", i)
			require.Equal(t, "re:req", readString(t, tt, 6))
			noticeEnd()
		}
		for _, ev := range r.Events() {
			if ev.Kind == tether.Disconnected {
				require.Zero(t, ev.Attempt, "Disconnected after an exchange")
			}
		}
		// The peer speaks and closes, the client never wrote: a flap.
		s := d.Server(t)
		go func() {
			s.Write([]byte("bye"))
			s.Close()
		}()
		require.Equal(t, "bye", readString(t, tt, 3))
		noticeEnd()
		evs := r.Events()
		last := evs[len(evs)-2]
		require.Equal(t, tether.Disconnected, last.Kind)
		require.Equal(t, 1, last.Attempt)
	})
}

// The same with each request written through the write buffer (made
// while the Tether reconnects): the flush marks the connection written.
func TestBufferedExchangeIsNoFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := delayed(time.Second)
		tt, d := dialPipe(t, r, tether.WithStabilityPeriod(time.Hour), tether.WithWriteBuffer(64))
		answerOnce(t, d)
		_, err := tt.Write([]byte("req"))
		require.NoError(t, err)
		require.Equal(t, "re:req", readString(t, tt, 6))
		for i := range 3 {
			// The Read meets the end of the exchange; the next request
			// is written during the reconnect's delay: buffered.
			got := readAsync(tt, 6)
			synctest.Wait()
			require.Equal(t, tether.TransientFailure, tt.State())
			_, err := tt.Write([]byte("req"))
			require.NoError(t, err, "request %d", i)
			require.Equal(t, 3, tt.Buffered())
			answerOnce(t, d)
			requireRead(t, got, "re:req")
		}
		n := 0
		for _, ev := range r.Events() {
			if ev.Kind == tether.Disconnected {
				require.Zero(t, ev.Attempt, "Disconnected after an exchange")
				n++
			}
		}
		require.Equal(t, 3, n)
	})
}

// failOnce fails its next Read (failRead) or next Write (failWrite) with
// errRefused, once.
type failOnce struct {
	net.Conn
	failRead, failWrite atomic.Bool
}

func (c *failOnce) Read(p []byte) (int, error) {
	if c.failRead.CompareAndSwap(true, false) {
		return 0, errRefused
	}
	return c.Conn.Read(p)
}

func (c *failOnce) Write(p []byte) (int, error) {
	if c.failWrite.CompareAndSwap(true, false) {
		return 0, errRefused
	}
	return c.Conn.Write(p)
}

// A control call made as soon as the state it needs is seen is never lost:
// the recovery that led to the state is over when the state changes (it used
// to end a moment later, and a Reconnect, a Connect or a buffered Write in
// between found it still running and did nothing).
func TestControlRightAfterTheChange(t *testing.T) {
	const runs = 100
	t.Run("Reconnect when Ready", func(t *testing.T) {
		for range runs {
			synctest.Test(t, func(t *testing.T) {
				tt, d := dialPipe(t, &tethertest.Recorder{}) // no delay: the default policy's jitter would wait
				tt.Reconnect()                               // Connecting at once; Ready again once the reconnect is over
				for s := tt.State(); s != tether.Ready; s = tt.State() {
					tt.WaitForStateChange(t.Context(), s)
				}
				tt.Reconnect() // Ready: must reconnect
				synctest.Wait()
				require.Equal(t, 3, d.Dials())
			})
		}
	})
	idleAfterFailedDial := func(t *testing.T, opts ...tether.Option) (*tether.Tether, *tethertest.Dialer) {
		r := ignoreOn(tether.Unreachable)
		tt, d := dialPipe(t, r, append(opts, tether.WithLazy())...)
		d.FailNext(1, errRefused)
		tt.Connect()
		for s := tt.State(); s != tether.Idle; s = tt.State() {
			tt.WaitForStateChange(t.Context(), s)
		}
		return tt, d
	}
	t.Run("Connect when Idle", func(t *testing.T) {
		for range runs {
			synctest.Test(t, func(t *testing.T) {
				tt, d := idleAfterFailedDial(t)
				tt.Connect()
				synctest.Wait()
				require.Equal(t, 2, d.Dials())
			})
		}
	})
	t.Run("buffered Write when Idle", func(t *testing.T) {
		for range runs {
			synctest.Test(t, func(t *testing.T) {
				tt, d := idleAfterFailedDial(t, tether.WithWriteBuffer(10))
				_, err := tt.Write([]byte("x"))
				require.NoError(t, err)
				synctest.Wait()
				require.Equal(t, 2, d.Dials())
			})
		}
	})
}

// A lazy, fail-fast Tether dials on its first Write, which fails fast.
func TestLazyFailFastDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithLazy(), tether.WithFailFast())
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, tether.ErrBufferFull)
		d.Server(t)
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, 1, d.Dials())
	})
}

// The watchdog on a connection kept by Ignore: it starts again after it
// fired, and a kept connection keeps the deadline of a Read waiting on it.
func TestReadIdleTimeoutIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ignoreOn(tether.Disconnected)
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(time.Second))
		s := d.Server(t)
		buf := make([]byte, 10)
		_, err := tt.Read(buf)
		require.ErrorIs(t, err, tether.ErrIdleTimeout)
		go s.Write([]byte("hello"))
		n, err := tt.Read(buf)
		require.NoError(t, err, "the bytes waiting on the kept connection")
		require.Equal(t, "hello", string(buf[:n]))
	})
	synctest.Test(t, func(t *testing.T) {
		var fc *failOnce
		d := wrapEach(func(c net.Conn) net.Conn { fc = &failOnce{Conn: c}; return fc })
		r := ignoreOn(tether.Disconnected)
		tt := tethertest.Dial(t, d, "a", r, tether.WithReadIdleTimeout(time.Second))
		d.Server(t) // a silent peer
		got := readAsync(tt, 1)
		synctest.Wait()
		fc.failWrite.Store(true)
		_, err := tt.Write([]byte("x"))
		require.ErrorIs(t, err, errRefused, "Ignore: the Write gets its error, the connection is kept")
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case res := <-got:
			require.ErrorIs(t, res.err, tether.ErrIdleTimeout)
		default:
			t.Fatal("the watchdog never fired on the kept connection")
		}
	})
}

// Close while the write buffer is written to a connection that Ignore kept
// closes that connection and ends the reconnect at once.
func TestCloseDuringFlushToKeptConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fc *failOnce
		d := wrapEach(func(c net.Conn) net.Conn { fc = &failOnce{Conn: c}; return fc })
		release := make(chan struct{})
		h := decide(ignoreWhenReleased(release))
		tt := tethertest.Dial(t, d, "a", h, tether.WithWriteBuffer(100))
		s := d.Server(t)
		fc.failRead.Store(true)
		go tt.Read(make([]byte, 1)) // meets the error: the handler holds the decision
		synctest.Wait()
		_, err := tt.Write([]byte("hello"))
		require.NoError(t, err)
		close(release)
		synctest.Wait() // the buffer is being written: the peer reads nothing
		require.NoError(t, tt.Close())
		synctest.Wait()
		require.Zero(t, tetherGoroutines(), "the reconnect goroutine outlived Close")
		require.True(t, peerSeesClose(s), "the kept connection is closed")
	})
}
