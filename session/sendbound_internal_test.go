package session

import (
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// boundPath plays round trips of a path to c's send-buffer bound: each
// round sends what the bound lets Write hold, and its ack comes after the
// path's base round trip plus the time the bytes beyond the path's
// capacity wait in its queue, at rate bytes a second; the first round
// sends first bytes, if that is not 0 (a stream that starts small). It
// returns the bound after each round and the time of the last ack.
func boundPath(c *Conn, now time.Time, rounds int, base time.Duration, rate float64, first int) ([]int, time.Time) {
	var bounds []int
	zeros := make([]byte, c.cfg.bufSize)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range rounds {
		inflight, _ := c.sendBoundLocked(now)
		if i == 0 && first > 0 {
			inflight = first
		}
		c.snd.write(zeros[:inflight])
		c.sWritten += uint64(inflight)
		c.rttAt, c.rttStart, c.rttAcked = c.sWritten, now, c.sAcked
		queued := float64(inflight) - rate*base.Seconds()
		now = now.Add(base + time.Duration(max(queued, 0)/rate*float64(time.Second)))
		c.now = now
		if err := c.onAck(0, c.sWritten, c.sWritten+uint64(c.cfg.bufSize)); err != nil {
			panic(err)
		}
		b, _ := c.sendBoundLocked(now)
		bounds = append(bounds, b)
	}
	return bounds, now
}

// A path that holds more than the buffer keeps the whole buffer; over a
// shorter one the bound settles at twice what the path holds, whatever
// waits in the queues; over a short fast one (loopback), at its least;
// when the round trip grows, the bound doubles with each round trip once
// the old least round trip has expired; when the acks stop, Write may
// fill the whole buffer; and a resume measures the path anew.
func TestSendBound(t *testing.T) {
	const size = 4 << 20
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	conn := func() *Conn { return newConn(newConfig([]Option{WithBufferSize(size)}), true) }

	c := conn()
	b, _ := c.sendBoundLocked(t0)
	require.Equal(t, size, b, "before the first ack")
	bounds, _ := boundPath(c, t0, 10, 50*time.Millisecond, 100e6, 0) // 5 MB in flight
	for i, b := range bounds {
		require.Equal(t, size, b, "round %d", i)
	}

	// 1 MB in flight, for 400 round trips: a probe every 10 s measures
	// the same round trip, not the one through the queues this end built.
	bounds, last := boundPath(conn(), t0, 400, 50*time.Millisecond, 20e6, 64<<10)
	require.Equal(t, []int{minSendBound, 2 * minSendBound, 4 * minSendBound}, bounds[:3], "doubling")
	probes := 0
	for i, b := range bounds[3:] {
		if b == minSendBound {
			probes++
			continue
		}
		require.InDelta(t, 2e6, b, 0.25e6, "round %d: settled", i+3)
	}
	require.InDelta(t, float64(last.Sub(t0)/minRTTWindow), probes, 1, "a probe every %v", minRTTWindow)
	// A stream that starts with the whole buffer in flight never sees
	// the bare path: it keeps the whole buffer, as a fixed bound would.
	bounds, _ = boundPath(conn(), t0, 10, 50*time.Millisecond, 20e6, 0)
	require.Equal(t, size, bounds[9])

	c = conn()
	bounds, last = boundPath(c, t0, 50, 20*time.Microsecond, 4e9, 64<<10) // 80 KB
	for i, b := range bounds[1:] {
		require.Equal(t, minSendBound, b, "round %d", i+1)
	}
	b, until := c.sendBoundLocked(last.Add(minAckStall - time.Nanosecond))
	require.Equal(t, minSendBound, b)
	require.Equal(t, last.Add(minAckStall), until, "when the acks count as stopped")
	b, until = c.sendBoundLocked(last.Add(minAckStall))
	require.Equal(t, size, b, "the acks stopped")
	require.True(t, until.IsZero())

	// The same transport now takes 50 ms a round trip (5 MB in flight).
	expire := int(minRTTWindow / (50 * time.Millisecond)) // rounds
	bounds, last = boundPath(c, last, expire+4, 50*time.Millisecond, 100e6, 0)
	for i, b := range bounds[:expire-1] {
		require.Equal(t, minSendBound, b, "round %d, the old round trip stands", i)
	}
	require.Equal(t, []int{minSendBound, 2 * minSendBound, 4 * minSendBound, 8 * minSendBound, size}, bounds[expire-1:],
		"a probe, then doubling")

	c.resumedLocked(c.sAcked, last)
	b, _ = c.sendBoundLocked(last)
	require.Equal(t, size, b, "after a resume, before the first ack")
}

// A ring that shrank grows back to its limit, not past it: a session's
// buffer never holds more memory than its size.
func TestRingShrinkAndLimit(t *testing.T) {
	const size = 4 << 20
	r := ring{limit: size}
	r.reserve(size)
	r.commit(size)
	r.discard(size)
	r.shrink(2000000)
	require.Equal(t, 2<<20, len(r.buf), "the least power of two of at least the bound")
	r.rewind()
	r.reserve(size)
	r.commit(size)
	require.Equal(t, size, len(r.buf))
}

// A fast stream whose bound moves with each ack sample keeps its send
// buffer: it is not reallocated each time the bound falls below half of
// it. A buffer that an outage grew returns to the size in use within two
// shrinkEvery: the first look after the outage still sees what it held.
func TestSendBufferKeptWhileBoundMoves(t *testing.T) {
	c := newConn(newConfig(nil), true)
	now := time.Now()
	fill := func(writes int, bound func(i int) int) (reallocs int) {
		for i := range writes {
			before, b := c.snd.buf, bound(i)
			c.snd.settle(b, now)
			// The acks since the last write: what lets this write in,
			// and once in 16 writes all of it (the peer caught up).
			acked := c.snd.n + 32<<10 - b
			if i%16 == 0 {
				acked = c.snd.n
			}
			c.snd.discard(max(acked, 0))
			c.snd.rewind()
			c.snd.reserve(32 << 10)
			c.snd.commit(32 << 10)
			if len(before) > 0 && &before[0] != &c.snd.buf[0] {
				reallocs++
			}
			now = now.Add(10 * time.Microsecond) // 3 GB/s
		}
		return reallocs
	}
	moving := func(i int) int { return minSendBound << (i / 16 % 2) } // 256 KiB, 512 KiB, ...
	fill(100, moving)
	require.Zero(t, fill(300_000, moving), "reallocations in 3 s of a stream at 3 GB/s")

	// An outage: no acks, and Writes fill the whole buffer. Then acks
	// flow again.
	for c.snd.n < c.cfg.bufSize {
		c.snd.settle(c.cfg.bufSize, now)
		c.snd.reserve(32 << 10)
		c.snd.commit(32 << 10)
		now = now.Add(10 * time.Microsecond)
	}
	require.Equal(t, c.cfg.bufSize, len(c.snd.buf))
	fill(int(2*shrinkEvery/(10*time.Microsecond))+1, func(int) int { return minSendBound })
	require.Equal(t, minSendBound, len(c.snd.buf), "within two shrinkEvery of the outage's end")
}

// A receive buffer that grew (the peer filled the window while the reader
// was behind) returns to the size in use once the reader keeps up, within
// three shrinkEvery (the first look after the burst still sees it, and
// looks come with acks), even when what follows is a trickle: a buffer
// that kept its size would be cycled through in full, and stay in no
// cache. (A first version looked only when a Read moved the window by an
// ack step, which a trickle never does: the acks of the bytes received
// move it first.)
func TestReceiveBufferSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(newConfig(nil), false)
		c.rwin = c.cfg.bufSize // a window that grew to the whole buffer
		// recv feeds n bytes as the transport's reader does, then runs
		// the sender, which acks them.
		recv := func(n int) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.now = time.Now()
			require.NoError(t, c.onData(c.rRecv, make([]byte, n)))
			c.spans, c.copying = c.spans[:0], false
			c.batchLocked(make([]byte, 0, batchSize), c.now, false)
		}
		read := func(n int) {
			_, err := io.ReadFull(c, make([]byte, n))
			require.NoError(t, err)
		}
		for c.rcv.n < c.cfg.bufSize {
			recv(64 << 10)
		}
		require.Equal(t, c.cfg.bufSize, len(c.rcv.buf))
		read(c.rcv.n)
		// A trickle: 1 KiB every 5 ms, read as it comes.
		for range 3 * shrinkEvery / (5 * time.Millisecond) {
			recv(1 << 10)
			read(1 << 10)
			time.Sleep(5 * time.Millisecond)
		}
		require.Equal(t, minRing, len(c.rcv.buf), "the receive buffer after three shrinkEvery")
	})
}

// A Write copying without the lock when the session ends returns, rather
// than taking the lock it holds a second time.
func TestEndDuringUnlockedCopy(t *testing.T) {
	p := make([]byte, 64<<20)
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 50, "no Write was seen copying without the lock")
		c := newConn(newConfig([]Option{WithBufferSize(len(p))}), true)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Write(p)
			errc <- err
		}()
		caught := false
		for done := false; !caught && !done; {
			select {
			case err := <-errc: // the copy ended before this saw it
				require.NoError(t, err)
				done = true
			default:
				c.mu.Lock()
				caught = c.appending
				c.mu.Unlock()
			}
		}
		if !caught {
			continue
		}
		c.finish(errShutdown)
		select {
		case err := <-errc:
			require.Error(t, err)
			return
		case <-time.After(10 * time.Second):
			t.Fatal("Write still blocked 10 s after the session ended")
		}
	}
}
