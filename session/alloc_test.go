//go:build !race

package session_test

import (
	"io"
	"math"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAllocs: once the buffers have grown, a session's steady state
// allocates nothing, per Write and per Read, counting every goroutine of
// both ends (the senders and the transport readers too).
func TestAllocs(t *testing.T) {
	c, s, stop := benchPair(t, "session", nil)
	defer stop()
	var got atomic.Int64
	go drain(s, &got)
	buf := make([]byte, 32<<10)
	for range 500 { // the buffers grow to their size
		_, err := c.Write(buf)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, leastMallocs(func() {
		for range 1000 {
			c.Write(buf)
		}
	}), uint64(maxMallocs), "allocations in 1,000 Writes of 32 KiB")

	// And the other way: the server writes, the client reads.
	go func() {
		for {
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	rbuf := make([]byte, 32<<10)
	for range 500 {
		_, err := io.ReadFull(c, rbuf)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, leastMallocs(func() {
		for range 1000 {
			io.ReadFull(c, rbuf)
		}
	}), uint64(maxMallocs), "allocations in 1,000 Reads of 32 KiB")
}

// maxMallocs bounds the allocations of 1,000 Reads or Writes of 32 KiB, of
// both ends: none a Read or a Write, nor a batch of the sender (one that
// allocated a batch made 80 to 175); what is left are the last steps of a
// buffer's growth (the poller's iovec array, a transport reader's buffer),
// and the runtime's own after a GC (a goroutine that blocks on a channel may
// take a new sudog), a few in some runs.
const maxMallocs = 10

// leastMallocs runs f five times and returns the fewest allocations the
// process made during a run: all of them, where testing.AllocsPerRun would
// round a sender's allocation a batch of many Writes down to none a Write.
func leastMallocs(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 5 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		f()
		runtime.ReadMemStats(&m1)
		least = min(least, m1.Mallocs-m0.Mallocs)
	}
	return least
}
