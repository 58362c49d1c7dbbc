//go:build !race

package session_test

import (
	"io"
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
	allocs := testing.AllocsPerRun(1000, func() { c.Write(buf) })
	require.Zero(t, allocs, "allocations per 32 KiB Write")

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
	allocs = testing.AllocsPerRun(1000, func() { io.ReadFull(c, rbuf) })
	require.Zero(t, allocs, "allocations per 32 KiB Read")
}
