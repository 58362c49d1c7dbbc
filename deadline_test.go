package tether_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// Semantics 6 for writes: the new connection gets the write deadline too.
func TestWriteDeadlineAcrossReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(2*time.Second))
		require.NoError(t, tt.SetWriteDeadline(time.Now().Add(time.Second)))
		d.Server(t).Close()
		go tt.Read(make([]byte, 1)) // notices the loss
		s2 := d.Server(t)
		synctest.Wait()
		require.Equal(t, uint64(2), tt.Generation())
		go io.Copy(io.Discard, s2) // a peer that reads: only the deadline can fail the Write
		_, err := tt.Write([]byte("late"))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the new connection has the passed write deadline")
		require.Equal(t, uint64(2), tt.Generation(), "a user timeout is not a disconnect")
	})
}

// Semantics 6: an operation waiting for a reconnect returns a timeout when
// its deadline passes; the reconnect goes on, and the new connection gets the
// deadlines.
func TestDeadlineAcrossReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := delayed(2 * time.Second)
		tt, d := dialPipe(t, r)
		d.Server(t).Close()

		start := time.Now()
		require.NoError(t, tt.SetReadDeadline(start.Add(500*time.Millisecond)))
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.Equal(t, 500*time.Millisecond, time.Since(start))

		// The reconnect went on without a reader.
		s2 := d.Server(t)
		require.Equal(t, 2*time.Second, time.Since(start))
		synctest.Wait()
		require.Equal(t, uint64(2), tt.Generation())

		// The new connection has the deadline too: it has passed, so a Read
		// returns a timeout at once, without a reconnect.
		_, err = tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Equal(t, uint64(2), tt.Generation())

		// A deadline in the future, crossed on the new connection itself.
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Second)))
		start = time.Now()
		_, err = tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))
		require.Len(t, r.Kinds(), 3, "a user timeout is not a disconnect")

		require.NoError(t, tt.SetReadDeadline(time.Time{}))
		go s2.Write([]byte("z"))
		n, err := tt.Read(make([]byte, 1))
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

// timeoutConn fails every Read with a timeout the user did not ask for, as a
// dead QUIC peer or TCP keep-alive does.
type timeoutConn struct{ net.Conn }

func (c timeoutConn) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// Traps: a timeout is the user's only while the user's deadline has passed;
// any other is a disconnect.
func TestTimeoutWithoutDeadlineIsDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapFirst(func(c net.Conn) net.Conn { return timeoutConn{c} })
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r)
		got := readAsync(tt, 2)
		d.Server(t)
		s2 := d.Server(t)
		s2.Write([]byte("ok"))
		requireRead(t, got, "ok")
		ev := r.Events()[1]
		require.Equal(t, tether.Disconnected, ev.Kind)
		require.ErrorIs(t, ev.Err, os.ErrDeadlineExceeded)
	})
}

// The read watchdog turns a silent peer into a disconnect after the idle
// timeout, and only then.
func TestReadIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(5*time.Second))
		s1 := d.Server(t)

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
		_, err := io.ReadFull(tt, buf)
		require.NoError(t, err)
		require.Equal(t, 30*time.Second, time.Since(start))
		require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())

		// Then it goes silent (a blackhole): 5 s later the watchdog reports it.
		start = time.Now()
		got := readAsync(tt, 1)
		s2 := d.Server(t)
		require.Equal(t, 5*time.Second, time.Since(start))
		go s2.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		evs := r.Events()
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
		require.Len(t, r.Kinds(), 3)

		// A later user deadline does not hide the watchdog, and the 2 s
		// of silence already waited count: it fires 3 s later.
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Hour)))
		start = time.Now()
		got = readAsync(tt, 1)
		s3 := d.Server(t)
		require.Equal(t, 3*time.Second, time.Since(start))
		go s3.Write([]byte("y"))
		require.NoError(t, (<-got).err)
	})
}

// A connection that the watchdog ends before it delivered a byte counts as
// a failed attempt, however long it was up: a frozen server, whose kernel
// still accepts connections, makes the attempt count (and the backoff)
// grow. One that delivered a byte before it went silent is an ordinary
// loss, Attempt 0 once stable. (Every such loss had Attempt 0: a trial's
// client redialed a frozen server every idle timeout, for ever, and piled
// its requests up in the server's socket queues.)
func TestReadIdleTimeoutSilentConnectionIsFailedAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(2*time.Second))
		d.Server(t) // never speaks
		got := readAsync(tt, 1)
		d.Server(t) // nor this one
		s3 := d.Server(t)
		go s3.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		got = readAsync(tt, 1) // s3 goes silent after its byte
		s4 := d.Server(t)
		go s4.Write([]byte("y"))
		require.NoError(t, (<-got).err)
		var attempts []int
		for _, ev := range r.Events() {
			if ev.Kind == tether.Disconnected {
				require.ErrorIs(t, ev.Err, tether.ErrIdleTimeout)
				require.GreaterOrEqual(t, ev.Uptime, 2*time.Second, "up for longer than the stability period")
				attempts = append(attempts, ev.Attempt)
			}
		}
		require.Equal(t, []int{1, 2, 0}, attempts)
	})
}

// The watchdog measures the connection's silence across Read calls: an
// application that polls with read deadlines far shorter than the idle
// timeout does not defeat it (it used to restart at every Read, so a frozen
// peer was never detected).
func TestReadIdleTimeoutWithPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(2*time.Second))
		s1 := d.Server(t)

		// Bytes every second keep it alive, polled every 100 ms.
		go func() {
			for range 5 {
				time.Sleep(time.Second)
				s1.Write([]byte("h"))
			}
		}()
		buf := make([]byte, 1)
		start := time.Now()
		timeouts := 0
		for got := 0; got < 5; {
			require.NoError(t, tt.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
			n, err := tt.Read(buf)
			if err != nil {
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				timeouts++
				continue
			}
			got += n
		}
		require.Equal(t, 5*time.Second, time.Since(start))
		require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds())
		require.Greater(t, timeouts, 40)

		// Then the peer freezes. The poller sees only its own timeouts,
		// until 2 s of silence have passed in its Reads: a disconnect.
		start = time.Now()
		polls := 0
		for len(r.Kinds()) < 2 {
			require.NoError(t, tt.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
			_, err := tt.Read(buf)
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			polls++
			require.Less(t, polls, 100, "the watchdog never fired")
		}
		evs := r.Events()
		require.Equal(t, tether.Disconnected, evs[1].Kind)
		require.ErrorIs(t, evs[1].Err, tether.ErrIdleTimeout)
		require.Equal(t, 2*time.Second, evs[1].Since.Sub(start), "the loss is noticed after 2 s of silence")
		d.Server(t)
	})
}

// Time when no Read is pending is not silence: bytes may be waiting unread.
func TestReadIdleTimeoutCountsOnlyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReadIdleTimeout(2*time.Second))
		s1 := d.Server(t)

		buf := make([]byte, 1)
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(1500*time.Millisecond)))
		_, err := tt.Read(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		time.Sleep(time.Minute) // nobody reads
		require.NoError(t, tt.SetReadDeadline(time.Time{}))
		start := time.Now()
		got := readAsync(tt, 1)
		d.Server(t)
		synctest.Wait() // the dial has returned; Reconnected is next
		require.Equal(t, 500*time.Millisecond, time.Since(start), "1.5 s + 0.5 s of silence in Reads")
		_ = s1
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
		tt.Close()
		<-got
	})
}

func TestReadIdleTimeoutNegative(t *testing.T) {
	_, err := tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithReadIdleTimeout(-1))
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
		d := wrapFirst(func(c net.Conn) net.Conn { return connTimeoutConn{c} })
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r, tether.WithReadIdleTimeout(time.Hour))
		got := readAsync(tt, 1)
		d.Server(t)
		go d.Server(t).Write([]byte("x"))
		require.NoError(t, (<-got).err)
		ev := r.Events()[1]
		require.Equal(t, tether.Disconnected, ev.Kind)
		require.Equal(t, deadPeerError{}, ev.Err)
	})
}

// Every time.Time keeps its meaning as a deadline: time.Unix(0, 0) is long
// past (the context.AfterFunc idiom that interrupts a Read), not "no
// deadline"; a deadline after the year 2262 is far away, not an overflow.
func TestExtremeDeadlines(t *testing.T) {
	for _, idle := range []time.Duration{0, time.Minute} {
		t.Run("watchdog="+idle.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &tethertest.Recorder{}
				var opts []tether.Option
				if idle > 0 {
					opts = append(opts, tether.WithReadIdleTimeout(idle))
				}
				tt, d := dialPipe(t, r, opts...)
				s := d.Server(t)

				// Interrupt a pending Read with the epoch.
				got := readAsync(tt, 1)
				synctest.Wait()
				require.NoError(t, tt.SetReadDeadline(time.Unix(0, 0)))
				res := <-got
				require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)
				require.NoError(t, tt.SetWriteDeadline(time.Unix(0, 0)))
				_, err := tt.Write([]byte("x"))
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)

				// The year 3000: Reads and Writes work.
				far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
				require.NoError(t, tt.SetDeadline(far))
				go s.Write([]byte("y"))
				res = <-readAsync(tt, 1)
				require.NoError(t, res.err)
				require.Equal(t, "y", res.s)
				go io.ReadFull(s, make([]byte, 1))
				_, err = tt.Write([]byte("z"))
				require.NoError(t, err)
				require.Equal(t, []tether.EventKind{tether.Connected}, r.Kinds(), "no deadline passed for a loss")
			})
		})
	}
}

// With a deadline after 2262, a timeout from the connection itself (a dead
// peer) is a disconnect, not the user's deadline.
func TestFarDeadlineDeadPeerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapFirst(func(c net.Conn) net.Conn { return timeoutConn{c} })
		r := &tethertest.Recorder{}
		tt := tethertest.Dial(t, d, "a", r)
		require.NoError(t, tt.SetReadDeadline(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)))
		got := readAsync(tt, 1)
		d.Server(t)
		s2 := d.Server(t)
		go s2.Write([]byte("x"))
		require.NoError(t, (<-got).err)
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
	})
}

// Semantics 6, while the handler decides: a deadline set then reaches the
// lost connection, on which a Read (Reconnect took the link down under it)
// or a Write (to a peer that does not read) may still be blocked, so that
// the operation returns at its deadline, not when the handler returns.
func TestDeadlineWhileHandlerDecides(t *testing.T) {
	for _, dir := range []string{"read", "write"} {
		t.Run(dir, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
					if ev.Kind == tether.Disconnected {
						select {
						case <-release:
						case <-ctx.Done():
						}
					}
					return tether.Reconnect
				})
				tt, d := dialPipe(t, h)
				d.Server(t) // reads nothing, writes nothing
				var got <-chan result
				if dir == "read" {
					got = readAsync(tt, 1)
				} else {
					got = writeAsync(tt, "hello")
				}
				synctest.Wait()
				tt.Reconnect()
				synctest.Wait() // the handler holds the decision
				set := tt.SetReadDeadline
				if dir == "write" {
					set = tt.SetWriteDeadline
				}
				require.NoError(t, set(time.Now().Add(100*time.Millisecond)))
				time.Sleep(time.Second)
				synctest.Wait()
				select {
				case res := <-got:
					require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)
					close(release)
				default:
					t.Errorf("the %s is still blocked 900 ms after its deadline", dir)
					close(release)
					<-got
				}
			})
		})
	}
}

// A TLS connection behind a peer that reads nothing more (its buffers
// full: a net.Pipe whose other end never reads), on which a Write failed
// at its deadline, is closed at once: when the watchdog found it dead, when
// Close comes while the handler decides about it, when Close or Reconnect
// comes before the watchdog. crypto/tls's Close would first write a
// close_notify alert, for up to 5 s, and the reconnect or Close would wait
// for it.
func TestLostTLSConnectionClosesAtOnce(t *testing.T) {
	for _, tc := range []string{"Watchdog", "CloseWhileDeciding", "Close", "Reconnect"} {
		t.Run(tc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &tethertest.Dialer{}
				d.Wrap(func(c *tethertest.Conn) net.Conn { return tls.Client(c.Client(), tethertest.TLSClientConfig()) })
				go d.Serve(t.Context(), func(c *tethertest.Conn) {
					s := tls.Server(c, tethertest.TLSServerConfig())
					io.WriteString(s, "hi") // then it reads nothing
					<-t.Context().Done()
				})
				deciding := make(chan struct{})
				h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
					if ev.Kind == tether.Disconnected && tc == "CloseWhileDeciding" {
						close(deciding)
						<-ctx.Done() // until Close
					}
					return tether.Reconnect
				})
				tt := tethertest.Dial(t, d, "a", h, tether.WithReadIdleTimeout(time.Second))
				buf := make([]byte, 2)
				_, err := io.ReadFull(tt, buf)
				require.NoError(t, err)

				// A Write that the peer never reads fails at its deadline.
				require.NoError(t, tt.SetWriteDeadline(time.Now().Add(100*time.Millisecond)))
				_, err = tt.Write([]byte("request"))
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				require.NoError(t, tt.SetWriteDeadline(time.Time{}))

				start := time.Now()
				switch tc {
				case "Watchdog":
					_, err = io.ReadFull(tt, buf) // the watchdog ends the first connection
					require.NoError(t, err)
					require.Equal(t, time.Second, time.Since(start), "the idle timeout, then at once the new connection's greeting")
				case "CloseWhileDeciding":
					go tt.Read(buf)
					<-deciding
					require.NoError(t, tt.Close())
					require.Equal(t, time.Second, time.Since(start), "the idle timeout, then at once Close")
				case "Close":
					require.NoError(t, tt.Close())
					require.Zero(t, time.Since(start))
				case "Reconnect":
					tt.Reconnect()
					_, err = io.ReadFull(tt, buf)
					require.NoError(t, err)
					require.Zero(t, time.Since(start), "the new connection's greeting, at once")
				}
			})
		})
	}
}

// Semantics 6 and 14: a watchdog's firing is a disconnect, also when the
// application pushes the read deadline forward while the Read is pending (a
// heartbeat); the deadline moved, but it has not passed. (The firing was
// returned to the Read as the user's timeout.)
func TestReadIdleTimeoutWithMovingDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		giveUp := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				return tether.GiveUp // the Read ends with the watchdog's error
			}
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, d, "a", giveUp, tether.WithReadIdleTimeout(10*time.Second))
		d.Server(t) // a silent peer
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				tt.SetReadDeadline(time.Now().Add(time.Hour))
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
			}
		}()
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, tether.ErrIdleTimeout)
		require.ErrorIs(t, tt.Err(), tether.ErrIdleTimeout)
	})
}

// Semantics 6: a timeout of a deadline that the user moved while the Read
// was pending is the user's, also when the deadline is now none (the
// deadline fired as it was cleared): the Read returns it, and there is no
// reconnect.
func TestReadTimeoutOfClearedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fire := make(chan struct{})
		d := &tethertest.Dialer{}
		d.Wrap(func(c *tethertest.Conn) net.Conn { return &timeoutOnCue{Conn: c.Client(), fire: fire} })
		tt := tethertest.Dial(t, d, "a", nil)
		d.Server(t)
		require.NoError(t, tt.SetReadDeadline(time.Now().Add(time.Hour)))
		readErr := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		require.NoError(t, tt.SetReadDeadline(time.Time{}))
		close(fire) // the old deadline's timeout reaches the Read
		select {
		case err := <-readErr:
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		case <-time.After(time.Minute):
			t.Fatal("the Read did not return the timeout")
		}
		require.Equal(t, 1, d.Dials(), "no reconnect")
		require.Equal(t, tether.Ready, tt.State())
	})
}

// timeoutOnCue is a connection whose Read waits for fire, then fails with a
// deadline's timeout once.
type timeoutOnCue struct {
	net.Conn
	fire  chan struct{}
	fired bool
}

func (c *timeoutOnCue) Read(p []byte) (int, error) {
	if !c.fired {
		c.fired = true
		<-c.fire
		return 0, &net.OpError{Op: "read", Net: "pipe", Err: os.ErrDeadlineExceeded}
	}
	return c.Conn.Read(p)
}

// Semantics 6: a Read blocked on a connection that the handler keeps
// (Ignore on Disconnected) gets a read deadline set while the write buffer
// is written to that connection (it stayed blocked, against a peer that
// reads nothing, until Close).
func TestReadDeadlineDuringFlushToKeptConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		d.Wrap(func(c *tethertest.Conn) net.Conn {
			fc := &failOnce{Conn: c.Client()}
			fc.failWrite.Store(true)
			return fc
		})
		release := make(chan struct{})
		h := decide(ignoreWhenReleased(release))
		tt := tethertest.Dial(t, d, "a", h, tether.WithWriteBuffer(64))
		d.Server(t) // a peer that reads and sends nothing
		readErr := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait()
		n, err := tt.Write([]byte("x")) // meets the loss: buffered while the handler decides
		require.NoError(t, err)
		require.Equal(t, 1, n)
		close(release) // Ignore: the buffer goes to the kept connection, and waits for a reader
		synctest.Wait()
		require.Equal(t, tether.Connecting, tt.State(), "the flush is under way")
		require.NoError(t, tt.SetReadDeadline(time.Now()))
		synctest.Wait()
		select {
		case err := <-readErr:
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		default:
			t.Fatal("the Read is still blocked after its deadline passed")
		}
	})
}
