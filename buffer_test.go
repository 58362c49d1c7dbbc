package tether_test

import (
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

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
		wrote := make(chan result, 1)
		go func() { // does not fit: waits for the connection
			n, err := tt.Write([]byte("four"))
			wrote <- result{n: n, err: err}
		}()
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
// counted), and the rest of the buffer goes to the next connection.
func TestWriteBufferFlushCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := delayed(time.Second)
		tt, d := dialPipe(t, r, tether.WithWriteBuffer(100))
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
		require.Equal(t, "second ", readString(t, s3, 7))
		synctest.Wait() // the flush accounts for its Write once the peer has read it
		require.Equal(t, int64(3), tt.Dropped(), `"st " dropped`)
		require.Zero(t, tt.Buffered())
		require.Equal(t, tether.Unreachable, r.Events()[3].Kind, "the buffer's failure counts as a failed dial")
	})
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
