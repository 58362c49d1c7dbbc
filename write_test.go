package tether_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// Semantics 4: with WriteResume, the bytes a failed connection did not
// accept go first to the next one, before a later Write's bytes.
func TestWriteResumeRemainderGoesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil,
			tether.WithStabilityPeriod(0), tether.WithWritePolicy(tether.WriteResume))
		s1 := d.Server(t)

		first := writeAsync(tt, "hello")
		readString(t, s1, 2) // the first connection accepts "he"
		synctest.Wait()
		second := writeAsync(tt, "world") // queued behind the first
		synctest.Wait()
		s1.Close()

		s2 := d.Server(t)
		require.Equal(t, "lloworld", readString(t, s2, 8))
		for _, wrote := range []<-chan result{first, second} {
			w := <-wrote
			require.NoError(t, w.err)
			require.Equal(t, 5, w.n)
		}
	})
}

// cutWrite starts a Write of p on tt, lets the server end s take the first
// n bytes, and closes s: the connection is lost in the middle of the Write.
// It returns what the Write reports.
func cutWrite(t *testing.T, tt *tether.Tether, s net.Conn, p string, n int) <-chan result {
	t.Helper()
	wrote := writeAsync(tt, p)
	readString(t, s, n)
	synctest.Wait()
	s.Close()
	return wrote
}

// Semantics 4: with WriteDrop the Write returns at once with the count
// accepted and ErrDropped; later Writes go to the new connection.
func TestWriteDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithWritePolicy(tether.WriteDrop))
		s1 := d.Server(t)

		w := <-cutWrite(t, tt, s1, "hello", 2)
		require.Equal(t, 2, w.n)
		require.ErrorIs(t, w.err, tether.ErrDropped)
		require.ErrorIs(t, w.err, io.ErrClosedPipe, "the cause is kept")

		wrote := writeAsync(tt, "world")
		s2 := d.Server(t)
		require.Equal(t, "world", readString(t, s2, 5))
		w = <-wrote
		require.NoError(t, w.err)
		require.Equal(t, 5, w.n)
	})
}

// Semantics 4: by default a Write cut in the middle by a loss returns the
// count the lost connection accepted and ErrDropped, and its rest goes to
// no connection; the next Write goes whole to the new one.
func TestWriteWholeReportsCutWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithStabilityPeriod(0))
		s1 := d.Server(t)

		w := <-cutWrite(t, tt, s1, "SET k hello", 6) // "SET k " taken, then the loss
		require.Equal(t, 6, w.n)
		require.ErrorIs(t, w.err, tether.ErrDropped)
		require.NotErrorIs(t, w.err, tether.ErrReconnected)

		wrote := writeAsync(tt, "PING")
		s2 := d.Server(t)
		require.Equal(t, "PING", readString(t, s2, 4), "the cut Write's rest never reaches the new connection")
		require.NoError(t, (<-wrote).err)
	})
}

// Semantics 4: a Write of which the failed connection accepted nothing goes
// whole to the next connection, and returns len(p), nil.
func TestWriteWholeUntouchedWriteGoesWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil)
		s1 := d.Server(t)

		wrote := writeAsync(tt, "hello")
		synctest.Wait() // blocked: the peer reads nothing
		s1.Close()
		s2 := d.Server(t)
		require.Equal(t, "hello", readString(t, s2, 5))
		w := <-wrote
		require.NoError(t, w.err)
		require.Equal(t, 5, w.n)
	})
}

func TestWritePolicyBad(t *testing.T) {
	_, err := tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithWritePolicy(tether.WritePolicy(7)))
	require.ErrorContains(t, err, "unknown WritePolicy")
}

// Semantics 13: a Read waiting for a reply that died with its connection
// returns ErrReconnected once the new connection is up, instead of waiting
// for ever on a connection that never got the request; the first Write
// after the reconnect does too, and both then go on normally.
func TestReconnectBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &tethertest.Recorder{}
		tt, d := dialPipe(t, r, tether.WithReconnectBoundary())
		s1 := d.Server(t)

		// Request, reply: no boundary on the first connection.
		go s1.Write([]byte("pong"))
		buf := make([]byte, 4)
		n, err := tt.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf[:n]))

		// The next request dies with the connection.
		got := make(chan result, 1)
		go func() {
			n, err := tt.Read(buf)
			got <- result{n: n, err: err}
		}()
		synctest.Wait()
		s1.Close()
		s2 := d.Server(t)
		res := <-got
		require.Equal(t, 0, res.n)
		require.ErrorIs(t, res.err, tether.ErrReconnected)
		var re *tether.ReconnectedError
		require.ErrorAs(t, res.err, &re)
		require.Equal(t, tether.ReconnectedError{Old: 1, New: 2}, *re)
		require.NotErrorIs(t, res.err, tether.ErrDropped)

		// The first Write after it meets the boundary too, and sends nothing.
		n, err = tt.Write([]byte("ping"))
		require.Equal(t, 0, n)
		require.ErrorAs(t, err, &re)
		require.Equal(t, tether.ReconnectedError{Old: 1, New: 2}, *re)

		// Then both directions work on the new connection, once each.
		go s2.Write([]byte("pong"))
		n, err = tt.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf[:n]))
		wrote := writeAsync(tt, "ping")
		require.Equal(t, "ping", readString(t, s2, 4))
		require.NoError(t, (<-wrote).err)
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, r.Kinds())
	})
}

// Semantics 13 with 4: a Write cut by a loss returns, once the new
// connection is up, its count and an error matching both ErrReconnected and
// ErrDropped; it uses up the write side's boundary.
func TestReconnectBoundaryCutWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithReconnectBoundary(),
			tether.WithWritePolicy(tether.WriteResume)) // the boundary wins over resume
		s1 := d.Server(t)

		wrote := cutWrite(t, tt, s1, "hello", 2)
		s2 := d.Server(t)
		w := <-wrote
		require.Equal(t, 2, w.n)
		require.ErrorIs(t, w.err, tether.ErrReconnected)
		require.ErrorIs(t, w.err, tether.ErrDropped)
		var re *tether.ReconnectedError
		require.ErrorAs(t, w.err, &re)
		require.Equal(t, tether.ReconnectedError{Old: 1, New: 2, Dropped: 3}, *re)

		wrote = writeAsync(tt, "world")
		require.Equal(t, "world", readString(t, s2, 5), "no boundary left, and no rest of the cut Write")
		require.NoError(t, (<-wrote).err)
	})
}

// Several reconnects before the next operation make one boundary, from the
// last generation the direction used to the current one.
func TestReconnectBoundaryCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithReconnectBoundary(),
			tether.WithStabilityPeriod(0))
		d.Server(t).Close()
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, tether.ErrReconnected)
		d.Server(t).Close()
		_, err = tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, tether.ErrReconnected)
		d.Server(t)

		_, err = tt.Write([]byte("x"))
		var re *tether.ReconnectedError
		require.ErrorAs(t, err, &re)
		require.Equal(t, tether.ReconnectedError{Old: 1, New: 3}, *re)
	})
}

// A give-up while a cut Write waits for the boundary returns the give-up's
// error.
func TestReconnectBoundaryGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := giveUpOn(tether.Unreachable)
		tt, d := dialPipe(t, r, tether.WithReconnectBoundary())
		s1 := d.Server(t)
		d.FailWhen(func(int, string) error { return errRefused })

		got := readAsync(tt, 1)
		synctest.Wait()
		s1.Close()
		res := <-got
		require.ErrorIs(t, res.err, tether.ErrGaveUp)
		require.NotErrorIs(t, res.err, tether.ErrReconnected)
	})
}

// A handler's Ignore on Disconnected keeps the connection: no boundary.
func TestReconnectBoundaryIgnore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		oops := errors.New("oops")
		r := ignoreOn(tether.Disconnected)
		d := wrapEach(failingRead(oops))
		tt := tethertest.Dial(t, d, "a", r, tether.WithReconnectBoundary())
		s1 := d.Server(t)
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, oops)
		go s1.Write([]byte("x"))
		n, err := tt.Read(make([]byte, 1))
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

// Semantics 18: while not Ready, a Write that fits in the buffer returns at
// once; the buffer goes first, in order, to the next connection, before a
// Write that did not fit and waited.
func TestWriteBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(time.Second), tether.WithWriteBuffer(10))
		startOutage(t, tt, d.Server(t))

		start := time.Now()
		for _, w := range []string{"one ", "two ", "th"} {
			n, err := tt.Write([]byte(w))
			require.NoError(t, err)
			require.Equal(t, len(w), n)
		}
		require.Zero(t, time.Since(start), "buffered Writes return at once")
		require.Equal(t, 10, tt.Buffered())
		wrote := writeAsync(tt, "four") // does not fit: waits for the connection
		synctest.Wait()
		require.Empty(t, wrote)
		s2 := d.Server(t)
		require.Equal(t, "one two thfour", readString(t, s2, 14))
		require.NoError(t, (<-wrote).err)
		require.Zero(t, tt.Buffered())
		require.Zero(t, tt.Dropped())
		require.Equal(t, time.Second, time.Since(start))
	})
}

// Semantics 18: the buffer's flush runs under no deadline of OnConnect's
// (it ends with OnConnect): a peer that reads late still gets the buffer,
// on the first new connection.
func TestWriteBufferFlushAfterOnConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := delayed(time.Second)
		tt, d := dialPipe(t, rec, tether.WithWriteBuffer(64),
			tether.WithOnConnect(func(context.Context, net.Conn) error { return nil }),
			tether.WithOnConnectTimeout(time.Second))
		startOutage(t, tt, d.Server(t))
		_, err := tt.Write([]byte("hello")) // buffered
		require.NoError(t, err)
		s2 := d.Server(t)
		time.Sleep(2 * time.Second) // the peer reads after OnConnect's deadline
		require.Equal(t, "hello", readString(t, s2, 5))
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, rec.Kinds())
	})
}

// Semantics 18, with Ignore: the buffer goes to the kept connection under
// no deadline of the user's, which may have passed while the handler
// decided (the buffered Writes returned long ago).
func TestWriteBufferFlushToKeptConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		rec := decide(ignoreWhenReleased(release))
		d := wrapFirst(failingRead(errors.New("a hiccup")))
		tt := tethertest.Dial(t, d, "a", rec, tether.WithWriteBuffer(64))
		s := d.Server(t)
		go tt.Read(make([]byte, 1)) // meets the hiccup: the handler decides
		synctest.Wait()
		_, err := tt.Write([]byte("hello")) // buffered meanwhile
		require.NoError(t, err)
		require.NoError(t, tt.SetWriteDeadline(time.Now().Add(500*time.Millisecond)))
		time.Sleep(time.Second)
		close(release)
		synctest.Wait()
		require.Equal(t, "hello", readString(t, s, 5), "on the kept connection")
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected}, rec.Kinds())
		tt.Close()
	})
}

// Semantics 18 before Ignore's "the error goes to the operation that met
// it": with a buffer, the Write whose connection failed does not wait for
// the handler (a producer must not block in an outage); it is buffered,
// and on Ignore its bytes go to the kept connection.
func TestWriteBufferWriteThatMetIgnoredError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := wrapFirst(func(c net.Conn) net.Conn {
			fo := &failOnce{Conn: c}
			fo.failWrite.Store(true)
			return fo
		})
		r := ignoreOn(tether.Disconnected)
		tt := tethertest.Dial(t, d, "a", r, tether.WithWriteBuffer(64))
		s := d.Server(t)
		got := readAsync(s, 5)
		n, err := tt.Write([]byte("hello"))
		require.NoError(t, err)
		require.Equal(t, 5, n)
		requireRead(t, got, "hello")
		synctest.Wait() // the flush's Write has returned, and the install ended
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected}, r.Kinds())
		require.Zero(t, tt.Dropped())
		require.Equal(t, tether.Ready, tt.State())
	})
}

// Semantics 18 with WriteResume: the rest of a Write that a loss cut goes
// to the buffer, and the Write returns; later Writes are buffered behind
// it, at once, instead of waiting for the whole outage behind it.
func TestWriteBufferTakesRestOfCutWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(time.Hour), tether.WithWritePolicy(tether.WriteResume),
			tether.WithWriteBuffer(64), tether.WithFailFast(), tether.WithStabilityPeriod(0))
		cut := cutWrite(t, tt, d.Server(t), "hello", 2) // the loss cuts it after "he"
		w := <-cut
		require.NoError(t, w.err)
		require.Equal(t, 5, w.n)
		n, err := tt.Write([]byte("x"))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, 4, tt.Buffered())
		synctest.Wait()
		require.Equal(t, tether.TransientFailure, tt.State())
		tt.ResetBackoff()
		require.Equal(t, "llox", readString(t, d.Server(t), 4), "the rest first, then the later Write")
	})
}

// Semantics 4 with WriteDrop: a Write the lost connection took none of is
// dropped whole, and returns 0 and ErrDropped; the next Write alone
// reaches the new connection.
func TestWriteDropUntouchedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(time.Second), tether.WithWritePolicy(tether.WriteDrop))
		s1 := d.Server(t)
		wrote := writeAsync(tt, "hello") // the peer reads nothing: none of it is taken
		synctest.Wait()
		s1.Close()
		w := <-wrote
		require.Zero(t, w.n)
		require.ErrorIs(t, w.err, tether.ErrDropped)
		s2 := d.Server(t)
		got := writeAsync(tt, "next")
		require.Equal(t, "next", readString(t, s2, 4), "nothing of the dropped Write reached the new connection")
		require.NoError(t, (<-got).err)
	})
}

// Semantics 18: WithFailFast makes a Write that does not fit fail at once
// with ErrBufferFull, writing nothing; alone, it is a buffer of 0.
func TestFailFast(t *testing.T) {
	for name, opts := range map[string][]tether.Option{
		"with a buffer": {tether.WithWriteBuffer(4), tether.WithFailFast()},
		"alone":         {tether.WithFailFast()},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt, d := dialPipe(t, delayed(time.Second), opts...)
				startOutage(t, tt, d.Server(t))
				n, err := tt.Write([]byte("12345"))
				require.ErrorIs(t, err, tether.ErrBufferFull)
				require.Zero(t, n)
				require.Zero(t, tt.Buffered())
				s2 := d.Server(t)
				synctest.Wait()
				require.Equal(t, tether.Ready, tt.State())
				go tt.Write([]byte("ok"))
				require.Equal(t, "ok", readString(t, s2, 2), "nothing of the failed Write was sent")
			})
		})
	}
}

// Semantics 18: a Write of nothing while not Ready returns 0, nil and
// leaves nothing in the buffer: buffered, it would become a write of
// nothing to the new connection, which on a synchronous pipe waits for a
// reader and held the reconnect in Connecting (a server that speaks first
// then waited on the client for ever).
func TestEmptyWriteWhileDown(t *testing.T) {
	for name, opts := range map[string][]tether.Option{
		"buffer":    {tether.WithWriteBuffer(4)},
		"fail fast": {tether.WithFailFast()},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt, d := dialPipe(t, delayed(time.Second), opts...)
				startOutage(t, tt, d.Server(t))
				n, err := tt.Write(nil)
				require.NoError(t, err)
				require.Zero(t, n)
				require.Zero(t, tt.Buffered())
				s2 := d.Server(t)
				go s2.Write([]byte("hi")) // the server speaks first
				synctest.Wait()
				require.Equal(t, tether.Ready, tt.State())
				// startOutage's Read took the "h".
				require.Equal(t, "i", readString(t, tt, 1))
			})
		})
	}
}

// Semantics 18: Close keeps Buffered at the count never sent, and Dropped
// counts it; a give-up says it in Err's message, which still matches the
// cause.
func TestWriteBufferUnsent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(time.Hour), tether.WithWriteBuffer(100))
		startOutage(t, tt, d.Server(t))
		_, err := tt.Write([]byte("lost"))
		require.NoError(t, err)
		require.NoError(t, tt.Close())
		require.Equal(t, 4, tt.Buffered())
		require.Equal(t, int64(4), tt.Dropped())
		require.Equal(t, net.ErrClosed, tt.Err())
	})
	synctest.Test(t, func(t *testing.T) {
		r := giveUpOn(tether.Unreachable)
		tt, d := dialPipe(t, r, tether.WithWriteBuffer(100))
		d.FailWhen(func(int, string) error { return errRefused })
		d.Hold()
		d.Server(t).Close()
		go tt.Read(make([]byte, 1))
		synctest.Wait()
		_, err := tt.Write([]byte("never sent"))
		require.NoError(t, err)
		d.Release()
		<-tt.Done()
		require.ErrorIs(t, tt.Err(), errRefused)
		require.Contains(t, tt.Err().Error(), "10 buffered bytes never sent")
		require.Equal(t, 10, tt.Buffered())
		require.Equal(t, int64(10), tt.Dropped())
	})
}

// If the connection dies while the buffer is written to it, the write policy
// applies to the Write being written (by default its rest is dropped, and
// counted; under WriteResume it goes first to the next connection), and the
// rest of the buffer goes to the next connection.
func TestWriteBufferFlushCut(t *testing.T) {
	for _, tc := range []struct {
		policy  tether.WritePolicy
		s3      string // what the next connection gets
		dropped int64
	}{
		{tether.WriteWhole, "second ", 3}, // "st " dropped
		{tether.WriteResume, "st second ", 0},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := delayed(time.Second)
				tt, d := dialPipe(t, r, tether.WithWriteBuffer(100), tether.WithWritePolicy(tc.policy))
				startOutage(t, tt, d.Server(t))
				for _, w := range []string{"first ", "second "} {
					_, err := tt.Write([]byte(w))
					require.NoError(t, err)
				}
				s2 := d.Server(t)
				require.Equal(t, "fir", readString(t, s2, 3))
				synctest.Wait()
				s2.Close() // cuts "first " after 3 bytes
				s3 := d.Server(t)
				require.Equal(t, tc.s3, readString(t, s3, len(tc.s3)))
				synctest.Wait() // the flush accounts for its Write once the peer has read it
				require.Equal(t, tc.dropped, tt.Dropped())
				require.Zero(t, tt.Buffered())
				require.Equal(t, tether.Unreachable, r.Events()[3].Kind, "the buffer's failure counts as a failed dial")
			})
		})
	}
}

// A lazy Tether's first Write, with a buffer, is buffered and dials.
func TestLazyWriteBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, nil, tether.WithLazy(), tether.WithWriteBuffer(1<<10))
		n, err := tt.Write([]byte("hello"))
		require.NoError(t, err)
		require.Equal(t, 5, n)
		require.Equal(t, "hello", readString(t, d.Server(t), 5))
		synctest.Wait()
		require.Equal(t, tether.Ready, tt.State())
	})
}

func TestWriteBufferBadOptions(t *testing.T) {
	_, err := tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithWriteBuffer(-1))
	require.ErrorContains(t, err, "negative write buffer")
	_, err = tether.Dial(t.Context(), &tethertest.Dialer{}, "a", nil, tether.WithWriteBuffer(10), tether.WithReconnectBoundary())
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "WithReconnectBoundary and WithWriteBuffer"), err.Error())
}

// With the boundary, a Write cut by a loss that ends while it waits for
// the new connection (its deadline, Close) still matches ErrDropped: a
// framed client must not resend the rest of a frame as if it had timed
// out on a healthy connection.
func TestBoundaryCutWriteEndsWhileWaiting(t *testing.T) {
	for _, end := range []string{"deadline", "close"} {
		t.Run(end, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt, d := dialPipe(t, nil, tether.WithReconnectBoundary())
				s1 := d.Server(t)
				d.Hold() // the new connection does not come
				if end == "deadline" {
					require.NoError(t, tt.SetWriteDeadline(time.Now().Add(5*time.Second)))
				}
				wrote := cutWrite(t, tt, s1, "SET k hello", 6)
				synctest.Wait()
				if end == "close" {
					tt.Close()
				}
				w := <-wrote
				require.Equal(t, 6, w.n)
				require.ErrorIs(t, w.err, tether.ErrDropped)
				if end == "deadline" {
					require.ErrorIs(t, w.err, os.ErrDeadlineExceeded)
				} else {
					require.ErrorIs(t, w.err, net.ErrClosed)
				}
			})
		})
	}
}

// Semantics 18, with a producer that keeps up with the flush: the buffer
// takes no Writes while it is written to the new connection (they fail
// fast), so the flush ends and the Tether is Ready; the peer gets every
// Write that returned success, once, in order.
func TestWriteBufferFlushEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt, d := dialPipe(t, delayed(10*time.Millisecond), tether.WithWriteBuffer(100), tether.WithFailFast())
		s1 := d.Server(t)
		var (
			mu   sync.Mutex
			sent []byte // what Writes that returned success wrote
		)
		stop := make(chan struct{})
		produced := make(chan struct{})
		go func() { // 10 bytes every 0.5 ms, dropped when the buffer is full
			defer close(produced)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Microsecond):
				}
				rec := fmt.Sprintf("%09d\n", i)
				n, err := tt.Write([]byte(rec)) // a Write the loss cut sent n bytes
				mu.Lock()
				sent = append(sent, rec[:n]...)
				mu.Unlock()
				if err != nil && !errors.Is(err, tether.ErrBufferFull) && !errors.Is(err, tether.ErrDropped) {
					return
				}
			}
		}()
		got := make(chan []byte, 1)
		go func() { // the peer reads at 10 bytes a millisecond, half the producer's pace
			var all []byte
			buf := make([]byte, 10)
			for _, s := range []net.Conn{s1, nil} {
				if s == nil {
					c, err := d.Accept(context.Background())
					if err != nil {
						break
					}
					s = c
				}
				for {
					time.Sleep(time.Millisecond)
					n, err := s.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						break
					}
				}
			}
			got <- all
		}()
		time.Sleep(50 * time.Millisecond)
		s1.Close() // an outage: the buffer fills, then goes to the next connection
		time.Sleep(time.Second)
		require.Equal(t, tether.Ready, tt.State(), "the flush ended")
		close(stop)
		<-produced
		synctest.Wait()
		tt.Close()
		all := <-got
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, sent)
		require.True(t, bytes.HasPrefix(sent, all), "the peer got what Writes sent, in order")
		require.GreaterOrEqual(t, len(all), len(sent)-200, "and all of it but what was in flight at Close")
	})
}
