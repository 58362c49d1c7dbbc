package session

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether/tethertest"
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
			require.Greater(t, c.ackedLimit, before, "the limit announced fell")
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
	windows, at, rate := long.play(t, c, 3*time.Second)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, 4 * initialWindow, size}, windows, "a long path")
	// The warm-up, an epoch of two round trips to measure the first
	// window, then an epoch a probe.
	require.Less(t, at[len(at)-1], 800*time.Millisecond, "when the window reached the buffer")
	require.InDelta(t, float64(size)/long.rtt.Seconds(), rate, 0.1*float64(size)/long.rtt.Seconds(),
		"the rate over the last second: the whole buffer a round trip")

	short := simPath{rtt: 50 * time.Microsecond, rate: 100e6, startup: 50 * time.Millisecond, queue: 2 << 20}
	c = newRecv()
	windows, at, _ = short.play(t, c, time.Second)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, initialWindow}, windows, "a short path: one probe, back")
	require.Greater(t, at[1], warmup, "the first probe")
	require.True(t, c.winHold.After(c.now), "the next probe waits")
	c.winHold = c.now // as if probeHold had passed
	windows, _, _ = short.play(t, c, 500*time.Millisecond)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, initialWindow}, windows, "the next probe, back")

	// A session that resumes on another path measures it anew: the rates
	// of the old one (fast, short) do not hold the window back on the
	// new (slow, long), nor does a probe under way.
	c = newRecv()
	short.play(t, c, 2*time.Second)
	c.winHold = c.now                     // the window probes as the transport is lost
	short.play(t, c, 15*time.Millisecond) // an epoch: it starts
	require.True(t, c.winProbing)
	c.resumedLocked(c.sAcked, c.now)
	require.Equal(t, initialWindow, c.rwin, "a probe's window after a resume")
	windows, _, rate = long.play(t, c, 3*time.Second)
	require.Equal(t, []int{initialWindow, 2 * initialWindow, 4 * initialWindow, size}, windows, "after a resume on a long path")
	require.InDelta(t, float64(size)/long.rtt.Seconds(), rate, 0.1*float64(size)/long.rtt.Seconds())

	// Nor does a path that slowed down under the same transport (a route
	// changed): once a probe failed, the next one is measured against
	// the best rate of its hold, not of the session.
	c = newRecv()
	short.play(t, c, 500*time.Millisecond) // a probe failed: a hold
	c.winHold = c.now                      // as if it had passed
	windows, _, _ = long.play(t, c, 12*time.Second)
	require.Equal(t, size, windows[len(windows)-1], "after the path grew longer: %v", windows)

	lagging := long
	lagging.readRate = 2e6 // less than the initial window a round trip
	c = newRecv()
	windows, _, rate = lagging.play(t, c, 4*time.Second)
	require.Equal(t, []int{initialWindow}, windows, "a reader that lags")
	require.InDelta(t, lagging.readRate, rate, 0.1*lagging.readRate, "the reader's rate")

	// A buffer no larger than the initial window is the window.
	c = newConn(newConfig([]Option{WithBufferSize(256 << 10)}), false)
	windows, _, _ = long.play(t, c, 2*time.Second)
	require.Equal(t, []int{256 << 10}, windows)
}

// slowLink is the client's end of an in-memory connection behind a path
// of one-way delay owd and rate bytes a second each way: what either end
// writes arrives owd after it left the bottleneck, which it leaves no
// faster than rate. Close ends its goroutines.
type slowLink struct {
	net.Conn
	owd  time.Duration
	rate float64

	mu               sync.Mutex
	upFree, downFree time.Time // when each way's bottleneck is free
	up, down         chan timedChunk
	pending          []byte // of the chunk Read is taking
	done             chan struct{}
	once             sync.Once
}

type timedChunk struct {
	at time.Time
	b  []byte
}

func newSlowLink(c net.Conn, owd time.Duration, rate float64) *slowLink {
	l := &slowLink{Conn: c, owd: owd, rate: rate,
		up: make(chan timedChunk, 1<<16), down: make(chan timedChunk, 1<<16), done: make(chan struct{})}
	go l.send()
	go l.receive()
	return l
}

// arrival returns when n bytes that enter the bottleneck whose free time
// is *free now arrive at the other end.
func (l *slowLink) arrival(free *time.Time, n int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := time.Now()
	if free.After(start) {
		start = *free
	}
	*free = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return free.Add(l.owd)
}

func (l *slowLink) Write(p []byte) (int, error) {
	select {
	case l.up <- timedChunk{l.arrival(&l.upFree, len(p)), bytes.Clone(p)}:
		return len(p), nil
	case <-l.done:
		return 0, net.ErrClosed
	}
}

func (l *slowLink) send() {
	for {
		select {
		case c := <-l.up:
			time.Sleep(time.Until(c.at))
			if _, err := l.Conn.Write(c.b); err != nil {
				return
			}
		case <-l.done:
			return
		}
	}
}

func (l *slowLink) receive() {
	defer close(l.down)
	for {
		b := make([]byte, 32<<10)
		n, err := l.Conn.Read(b)
		if n > 0 {
			select {
			case l.down <- timedChunk{l.arrival(&l.downFree, n), b[:n]}:
			case <-l.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *slowLink) Read(p []byte) (int, error) {
	if len(l.pending) == 0 {
		c, ok := <-l.down
		if !ok {
			return 0, io.EOF
		}
		time.Sleep(time.Until(c.at))
		l.pending = c.b
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

func (l *slowLink) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Conn.Close()
}

// dialerListener is a net.Listener of the server ends of d's connections.
type dialerListener struct {
	d      *tethertest.Dialer
	ctx    context.Context
	cancel context.CancelFunc
}

func (l *dialerListener) Accept() (net.Conn, error) {
	c, err := l.d.Accept(l.ctx)
	if err != nil {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (l *dialerListener) Close() error {
	l.cancel()
	return nil
}

func (l *dialerListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// Both ends of a session over a long path (100 ms, 100 MB/s each way),
// both writing 40 MiB at once, open their windows to the whole buffer,
// and the transfer takes 1.7 s: a window of the whole buffer from the
// start would take 1.0 s, the initial window alone 8 s. The client
// announces its first window as NEW leaves: a server that writes as soon
// as it accepted makes the client's first round-trip sample a round
// trip, not the time its bytes took to arrive (which held the client's
// window at 2 MiB).
func TestReceiveWindowOverLongPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const total = 40 << 20
		var d tethertest.Dialer
		d.Wrap(func(c *tethertest.Conn) net.Conn { return newSlowLink(c.Client(), 50*time.Millisecond, 100e6) })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sl := NewListener(&dialerListener{d: &d, ctx: ctx, cancel: cancel})
		defer sl.Close()

		// transfer writes total bytes to c while it reads as many.
		transfer := func(c *Conn) error {
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(make([]byte, total))
				errc <- err
			}()
			if _, err := io.CopyN(io.Discard, c, total); err != nil {
				return err
			}
			return <-errc
		}
		type result struct {
			c   *Conn
			err error
		}
		served := make(chan result, 1)
		go func() {
			s, err := sl.AcceptSession()
			if err == nil {
				err = transfer(s)
			}
			served <- result{s, err}
		}()
		start := time.Now()
		c, err := Dial(ctx, &d, "server", nil)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, transfer(c))
		s := <-served
		require.NoError(t, s.err)
		defer s.c.Close()
		elapsed := time.Since(start)

		for _, c := range []*Conn{c, s.c} {
			c.mu.Lock()
			rwin := c.rwin
			c.mu.Unlock()
			require.Equal(t, DefaultBufferSize, rwin, "the client's window, then the server's")
		}
		require.Less(t, elapsed, 2*time.Second, "the transfer")
	})
}
