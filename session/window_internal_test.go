package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// simPath is a path from a peer that always has bytes to send to a
// session's receiving end, played in steps of simulated time: the peer
// sends what the limits it has heard of let it, into a bottleneck queue
// of queue bytes (the kernels' socket buffers) drained at rate bytes a
// second (at half that for the first startup: TCP's own window, which
// grows at first); bytes and acks take half of rtt each way beyond it.
// The reader reads readRate bytes a second, or all that arrived (0).
type simPath struct {
	rtt      time.Duration
	rate     float64
	startup  time.Duration
	queue    int
	readRate float64
}

// simFrame is a span of the stream, or an ack's limit (n 0), and when it
// arrives.
type simFrame struct {
	at  time.Time
	off uint64
	n   int
}

// play runs the stream into c for dur, from c.now (or its birth). It
// returns the windows c had, in order (each once), when it took each
// (since the start), and the rate at which bytes arrived over the last
// second.
func (p simPath) play(t *testing.T, c *Conn, dur time.Duration) (windows []int, at []time.Duration, lastRate float64) {
	const frame = 16 << 10
	dt := time.Duration(frame / p.rate * float64(time.Second))
	payload := make([]byte, frame)
	batch := make([]byte, 0, batchSize)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	if now.IsZero() {
		now = c.born
		c.announceLocked(uint64(c.rwin), now) // the handshake's window
	}
	var (
		sent, limit       = c.rRecv, c.ackedLimit // the peer's (a second play: what was in flight is sent again)
		queued            []simFrame              // in the bottleneck's queue
		queuedBytes       int
		arriving, acks    []simFrame
		readable          float64
		recvAt1s, recvEnd uint64
	)
	windows, at = []int{c.rwin}, []time.Duration{0}
	start, end := now, now.Add(dur)
	for step := 0; now.Before(end); now, step = now.Add(dt), step+1 {
		for len(acks) > 0 && !acks[0].at.After(now) {
			limit = max(limit, acks[0].off)
			acks = acks[1:]
		}
		for sent < limit && queuedBytes < p.queue {
			n := int(min(frame, limit-sent))
			queued = append(queued, simFrame{off: sent, n: n})
			sent += uint64(n)
			queuedBytes += n
		}
		if len(queued) > 0 && (step%2 == 0 || now.Sub(start) >= p.startup) { // one frame a step leaves the queue
			f := queued[0]
			queued = queued[1:]
			queuedBytes -= f.n
			f.at = now.Add(p.rtt / 2)
			arriving = append(arriving, f)
		}
		c.now = now
		for len(arriving) > 0 && !arriving[0].at.After(now) {
			f := arriving[0]
			arriving = arriving[1:]
			c.lastRecv = now
			require.NoError(t, c.onData(f.off, payload[:f.n]))
		}
		if p.readRate == 0 {
			c.rcv.discard(c.rcv.n)
		} else {
			readable = min(readable+p.readRate*dt.Seconds(), float64(c.rcv.n))
			c.rcv.discard(int(readable))
			readable -= float64(int(readable))
		}
		before := c.ackedLimit
		c.spans, c.copying = c.spans[:0], false
		c.batchLocked(batch, now, false)
		if c.ackedLimit != before {
			acks = append(acks, simFrame{at: now.Add(p.rtt / 2), off: c.ackedLimit})
		}
		if c.rwin != windows[len(windows)-1] {
			windows, at = append(windows, c.rwin), append(at, now.Sub(start))
		}
		if recvAt1s == 0 && !now.Before(end.Add(-time.Second)) {
			recvAt1s = c.rRecv
		}
	}
	recvEnd = c.rRecv
	return windows, at, float64(recvEnd - recvAt1s)
}

// The receive window starts small and grows where a larger one carries
// more: over a long path, whose rate is a window a round trip, it doubles
// to the whole buffer within a few round trips each, and the stream then
// runs at that; over a short path whose rate its bottleneck bounds
// (loopback: the CPUs, the sockets), a larger window carries no more, so
// the probe goes back and the next waits probeHold, even where the
// path's rate doubles as the stream starts (TCP's own window grows); and
// a reader that lags never makes it grow, however long the path.
func TestReceiveWindowTuning(t *testing.T) {
	const size = DefaultBufferSize
	newRecv := func() *Conn { return newConn(newConfig(nil), false) }

	long := simPath{rtt: 100 * time.Millisecond, rate: 100e6, queue: 64 << 20}
	c := newRecv()
	windows, at, rate := long.play(t, c, 8*time.Second)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, 4 * initialWindow, size}, windows, "a long path")
	// The warm-up, an epoch of two round trips to measure the first
	// window, then an epoch a probe.
	require.Less(t, at[len(at)-1], 800*time.Millisecond, "when the window reached the buffer")
	require.InDelta(t, float64(size)/long.rtt.Seconds(), rate, 0.1*float64(size)/long.rtt.Seconds(),
		"the rate over the last second: the whole buffer a round trip")

	short := simPath{rtt: 50 * time.Microsecond, rate: 1e9, startup: 50 * time.Millisecond, queue: 2 << 20}
	c = newRecv()
	windows, at, _ = short.play(t, c, 2*time.Second)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, initialWindow}, windows, "a short path: one probe, back")
	require.Greater(t, at[1], warmup, "the first probe")
	require.True(t, c.winHold.After(c.now), "the next probe waits")
	c.winHold = c.now // as if probeHold had passed
	windows, _, _ = short.play(t, c, 500*time.Millisecond)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, initialWindow}, windows, "the next probe, back")

	lagging := long
	lagging.readRate = 2e6 // less than the initial window a round trip
	c = newRecv()
	windows, _, rate = lagging.play(t, c, 8*time.Second)
	require.Equal(t, []int{initialWindow}, windows, "a reader that lags")
	require.InDelta(t, lagging.readRate, rate, 0.1*lagging.readRate, "the reader's rate")

	// A buffer no larger than the initial window is the window.
	c = newConn(newConfig([]Option{WithBufferSize(256 << 10)}), false)
	windows, _, _ = long.play(t, c, 2*time.Second)
	require.Equal(t, []int{256 << 10}, windows)
}
