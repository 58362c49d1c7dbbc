package session

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/io-tether/tether"
)

// The engine of a session, common to both ends: the frame handlers (run by
// a transport's reader, under c.mu), the sender goroutine, and what a
// handshake changes.

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, batchSize); return &b }}

// limitLocked is how far this end lets the peer send: what the reader has
// read plus the window, or the last limit announced if that is further (a
// window that shrank holds the limit until the reader catches up).
func (c *Conn) limitLocked() uint64 {
	return max(c.rRecv-uint64(c.rcv.n)+uint64(c.rwin), c.ackedLimit)
}

// The receive window. A window of the whole buffer (a few MiB) lets a
// peer on a fast path run that far ahead of the reader: the bytes wait in
// the kernels' socket buffers and in the receive buffer, which then
// cycles through all of its memory, out of every cache, and the reader
// slows. So the window starts at initialWindow and grows only where a
// larger one carries more, probing as TCP's BBR does for bandwidth:
//
//   - This end measures the rate at which bytes arrive, over epochs of at
//     least minEpoch, or two round trips if longer. The round trip is the
//     least time from announcing a limit to bytes reaching it. Epochs
//     within warmup of the first byte (of the session, or after a
//     resume) do not count: the kernels' buffers and TCP's own window
//     still grow then.
//   - It counts the times the peer stopped at a limit it had announced
//     while the reader kept up (less than a quarter of the window waited
//     unread): the window held the peer back. A reader that lags holds it
//     back too, but does not count.
//   - After probeEpochs epochs at a window (fewer where epochs are long:
//     enough to span probeSpan), one in which the window held the peer
//     back doubles it (up to the buffer): a probe. If within as many
//     epochs (at least two) the best rate rose by probeGain, the path
//     needed the larger window (a long path carries a window a round
//     trip): it stays, and may be probed again at once. Otherwise it
//     halves back (a short path, whose rate its sockets or the CPUs
//     bound), and the next probe waits probeHold, measured against the
//     best rate and the least round trip in that time.
//   - A resume keeps the window (not a probe's) but measures anew: the
//     path may be another.
//
// The limit never falls (limitLocked), so the peer is never told to take
// back what it may send.
const (
	initialWindow = 512 << 10
	minEpoch      = 10 * time.Millisecond
	warmup        = 100 * time.Millisecond
	probeEpochs   = 3
	probeSpan     = 30 * time.Millisecond
	probeGain     = 1.25
	probeHold     = 10 * time.Second
	// limitQueue is how many limits announced and not yet reached are
	// remembered, with when they were announced. While it is full, a
	// limit announced is not remembered: the peer stops at the ones
	// before it first.
	limitQueue = 8
)

// announced is a limit this end announced, at a time since c.born.
type announced struct {
	limit uint64
	at    time.Duration
}

// announceLocked notes that this end announced limit at now.
func (c *Conn) announceLocked(limit uint64, now time.Time) {
	c.ackedLimit = limit
	if c.nlimits == limitQueue || (c.nlimits > 0 && c.limits[(c.limitHead+c.nlimits-1)%limitQueue].limit >= limit) {
		return
	}
	c.limits[(c.limitHead+c.nlimits)%limitQueue] = announced{limit, now.Sub(c.born)}
	c.nlimits++
}

// stoppedAtLimitLocked reports whether bytes received up to end reached a
// limit this end announced, and when it announced it; it forgets the
// limits reached.
func (c *Conn) stoppedAtLimitLocked(end uint64) (time.Time, bool) {
	for c.nlimits > 0 {
		l := c.limits[c.limitHead]
		if l.limit > end {
			break
		}
		c.limitHead, c.nlimits = (c.limitHead+1)%limitQueue, c.nlimits-1
		if l.limit == end {
			return c.born.Add(l.at), true
		}
	}
	return time.Time{}, false
}

// tuneWindowLocked follows the bytes received up to end, at c.now, and
// probes for a larger window.
func (c *Conn) tuneWindowLocked(end uint64) {
	if c.rwin == c.cfg.bufSize && !c.winProbing {
		return // the window is the whole buffer: nothing to probe
	}
	if at, ok := c.stoppedAtLimitLocked(end); ok {
		if rtt := c.now.Sub(at); rtt > 0 && (c.winRTT == 0 || rtt < c.winRTT) {
			c.winRTT = rtt
		}
		if c.rcv.n < c.rwin/4 {
			c.winStops++
		}
	}
	if c.winAt.IsZero() {
		c.winFrom, c.winAt, c.winSince = end, c.now, c.now
		return
	}
	d, span := c.now.Sub(c.winAt), max(minEpoch, 2*c.winRTT)
	if d < span {
		return
	}
	if c.now.Sub(c.winSince) < warmup {
		c.winFrom, c.winAt, c.winStops = end, c.now, 0
		return
	}
	need := min(probeEpochs, max(1, int(probeSpan/span))) // epochs to measure a window
	c.winRate = max(c.winRate, float64(end-c.winFrom)/d.Seconds())
	c.winEpochs++
	stops := c.winStops
	c.winFrom, c.winAt, c.winStops = end, c.now, 0
	if c.winProbing {
		switch {
		case c.winRate >= c.winBase*probeGain:
			// The larger window carries more: keep it, and probe
			// again at once.
			c.winProbing, c.winEpochs = false, probeEpochs
		case c.winEpochs < max(need, 2):
			return
		default:
			// Back, and the next probe is measured against the best
			// rate and the least round trip of the hold: one fast
			// epoch, or a path that grew longer, does not bar growth
			// for good.
			c.rwin = c.winPrev
			c.winProbing, c.winRate, c.winEpochs, c.winRTT = false, 0, 0, 0
			c.winHold = c.now.Add(probeHold)
			return
		}
	}
	if stops > 0 && c.winEpochs >= need && c.rwin < c.cfg.bufSize && !c.now.Before(c.winHold) {
		c.winPrev, c.rwin = c.rwin, min(2*c.rwin, c.cfg.bufSize)
		c.winProbing, c.winBase, c.winRate, c.winEpochs = true, c.winRate, 0, 0
		c.ackNow = true // the peer waits for the new limit
		c.kickLocked()
	}
}

// ackEvery returns how many bytes received make an ack due, for a peer
// whose first window (the smaller of its buffer and 512 KiB) is window
// bytes: ackThreshold, or half the window when that is less, so that a
// peer with a small buffer is not kept waiting for acks until ackDelay.
func ackEvery(window uint32) uint64 { return min(ackThreshold, uint64(window)/2) }

// ackStep is how far the limit moves before this end says so.
func (c *Conn) ackStep() uint64 { return uint64(min(ackThreshold, c.rwin/2)) }

// feedLocked decodes bytes read from the transport at time now.
func (c *Conn) feedLocked(d *decoder, p []byte, now time.Time) error {
	c.now = now
	c.lastRecv = now
	c.pinged = false
	return d.feed(p, c)
}

func (c *Conn) onData(off uint64, p []byte) error {
	end := off + uint64(len(p))
	if off > c.rRecv || end <= c.rRecv {
		// Bytes this end has, or bytes ahead of them: a frame sent before
		// a resume that reached the new transport. The peer sends them
		// again in order.
		return nil
	}
	if c.finKnown && end > c.finAt {
		return protoErr("data beyond the final frame")
	}
	if end > c.limitLocked() {
		return protoErr("the peer sent beyond the window")
	}
	c.rcv.write(p[c.rRecv-off:])
	c.rRecv = end
	c.tuneWindowLocked(end)
	if c.ackDue.IsZero() {
		c.ackDue = c.now.Add(ackDelay)
		c.kickLocked() // an idle sender's timer is set for a ping: set it for the ack
	}
	if c.rRecv-c.ackedRecv >= c.ackEvery {
		c.kickLocked()
	}
	wake(c.rwake)
	return nil
}

func (c *Conn) onAck(flags byte, recv, limit uint64) error {
	if recv > c.sWritten {
		return protoErr("ack of bytes never written")
	}
	if c.rttAt != 0 && recv >= c.rttAt {
		c.sampledLocked(recv)
	}
	if recv > c.sAcked {
		c.lastAck = c.now
		c.ackToLocked(recv)
	}
	if limit > c.peerLimit {
		c.peerLimit = limit
		if c.sSent < c.sWritten {
			c.kickLocked()
		}
	}
	if flags&ackFin != 0 {
		if !c.finWant || recv != c.sWritten {
			return protoErr("ack of a final frame never sent")
		}
		c.finAcked = true
		wake(c.wwake)
	}
	return nil
}

// Bounding the send buffer while acks flow. A sender that lets Write
// fill its whole buffer (bufSize, a few MiB) on a fast path keeps that
// much unacknowledged: it waits in the kernels' socket buffers, and the
// send buffer cycles through all of its memory, which then no cache
// holds. So while the peer acknowledges, Write blocks at about twice
// what the path carries in a round trip, measured as TCP's BBR does: the
// least round trip times the rate of the acks (see the package doc's
// Limits).
const (
	// minSendBound is the least bound while acks flow.
	minSendBound = 256 << 10
	// minAckStall is the least time without an ack after which the acks
	// count as stopped: four least round trips, or this if longer.
	minAckStall = 10 * time.Millisecond
	// minRTTWindow is how long the least round trip stands. Then, as
	// BBR's PROBE_RTT does, the bound falls to minSendBound until a
	// round trip sampled with no more in flight measures it anew: a
	// path whose round trip grew (a route changed) is not held to the
	// old one, and a sample taken through the queues the sender built
	// does not replace it.
	minRTTWindow = 10 * time.Second
)

// sampledLocked ends the round-trip sample at the ack of recv.
func (c *Conn) sampledLocked(recv uint64) {
	rtt := c.now.Sub(c.rttStart)
	c.rttAt = 0
	if rtt <= 0 {
		return
	}
	switch {
	case c.probing:
		c.minRTT, c.minRTTAt, c.probing = rtt, c.now, false
	case c.minRTT == 0 || rtt < c.minRTT:
		c.minRTT, c.minRTTAt = rtt, c.now
	case c.now.Sub(c.minRTTAt) >= minRTTWindow:
		c.probing = true
	}
	// The bytes acknowledged during the sample, scaled from rtt to the
	// least round trip: what the path carries without the queues. The
	// estimate falls by an eighth a sample at the most, so that one slow
	// sample does not shrink the bound.
	est := uint64(float64(recv-c.rttAcked) * float64(c.minRTT) / float64(rtt))
	c.bdp = max(est, c.bdp-c.bdp/8)
}

// sendBoundLocked returns how many bytes the send buffer may hold at now,
// and, when that is less than its size because acks flow, the time at
// which they count as stopped (else zero).
func (c *Conn) sendBoundLocked(now time.Time) (int, time.Time) {
	if c.bdp == 0 || c.lastAck.IsZero() {
		return c.cfg.bufSize, time.Time{}
	}
	until := c.lastAck.Add(max(4*c.minRTT, minAckStall))
	bound := uint64(max(minSendBound, 2*c.bdp))
	if c.probing {
		bound = minSendBound
	}
	if bound >= uint64(c.cfg.bufSize) || !now.Before(until) {
		return c.cfg.bufSize, time.Time{}
	}
	return int(bound), until
}

// ackToLocked drops what the peer has received, up to recv.
func (c *Conn) ackToLocked(recv uint64) {
	if c.copying && recv > c.copyLow {
		// The sender is copying bytes from there without the lock: free
		// them once it is done (a Write could reuse the room meanwhile).
		c.ackDeferred = max(c.ackDeferred, recv)
		return
	}
	c.snd.discard(int(recv - c.sAcked))
	c.sAcked = recv
	if c.sSent < recv {
		c.sSent = recv
	}
	wake(c.wwake)
}

func (c *Conn) onPing(v uint64) {
	c.pongWant, c.pongVal = true, v
	c.ackNow = true
	c.kickLocked()
}

func (c *Conn) onPong(uint64) {} // any frame proves the peer alive (feedLocked)

func (c *Conn) onFin(off uint64) error {
	if (c.finKnown && off != c.finAt) || off < c.rRecv {
		return protoErr("final frame at %d, with %d bytes received", off, c.rRecv)
	}
	c.finKnown, c.finAt = true, off
	c.ackFinSent = false // the peer sent it again: its ack may have been lost
	c.ackNow = true
	c.kickLocked()
	wake(c.rwake)
	return nil
}

func (c *Conn) onClose(reason byte) error {
	c.closeRecv = int(reason)
	c.closeAnswered = c.closeQueued
	return nil
}

// closeErr is what operations return after the peer sent a close frame.
func closeErr(reason int) error {
	switch reason {
	case closeNormal:
		return ErrPeerClosed
	case closeAborted:
		return ErrPeerAborted
	}
	return lost(errShutdown)
}

// resumedLocked applies a handshake's outcome: the peer has received
// every byte before peerRecv, and a new epoch begins on a new transport.
func (c *Conn) resumedLocked(peerRecv uint64, now time.Time) {
	if peerRecv > c.sAcked {
		c.ackToLocked(peerRecv)
	}
	c.sSent = peerRecv
	// The path may be another: measure it anew.
	c.rttAt, c.minRTT, c.bdp, c.lastAck, c.probing = 0, 0, 0, time.Time{}, false
	// The window stays (the limit never falls), but what measured it is
	// of the old path, and an epoch across the outage would measure the
	// outage: measure anew, limits announced from now on included.
	if c.winProbing {
		c.rwin = c.winPrev // unproven
	}
	c.winAt, c.winRTT, c.winRate, c.winEpochs, c.winProbing, c.winHold = time.Time{}, 0, 0, 0, false, time.Time{}
	c.limitHead, c.nlimits = 0, 0
	c.epoch++
	c.blocked = false
	c.finSent = false
	if c.closeQueued {
		// The close frame went to the lost transport, or never went:
		// the peer, which resumed, has not seen it. Send it again.
		c.closeSend = c.closeReason
	}
	c.pinged = false
	c.lastRecv = now
	c.ackNow = true
	c.setStateLocked(tether.Ready)
	c.kickLocked()
}

// batchLocked appends to b the frames due at now. Each data frame's
// payload is a span of the send buffer (c.spans), sent after the lock is
// released: copied into b after its header when vec is false, written from
// the buffer itself (writev) when vec is true, in which case b holds the
// headers alone.
func (c *Conn) batchLocked(b []byte, now time.Time, vec bool) []byte {
	if c.pongWant {
		b = appendU64Frame(b, framePong, c.pongVal)
		c.pongWant = false
	}
	limit := c.limitLocked()
	finAck := c.finKnown && c.rRecv == c.finAt && !c.ackFinSent
	if c.ackNow || finAck || c.rRecv-c.ackedRecv >= c.ackEvery || limit-c.ackedLimit >= c.ackStep() ||
		(!c.ackDue.IsZero() && !now.Before(c.ackDue)) {
		b = c.appendAckLocked(b, limit, now)
		// With the acks, which come with bytes received and with reads,
		// a receive buffer that grew returns to the size in use.
		c.rcv.settle(0, now)
	}
	if !c.pinged && now.Sub(c.lastRecv) >= c.cfg.keepAlive {
		c.pingVal++
		b = appendU64Frame(b, framePing, c.pingVal)
		c.pinged = true
		// An idle session keeps no buffers.
		if !c.appending {
			c.snd.release()
		}
		c.rcv.release()
	}
	payload := 0 // of this batch
	end := min(c.sWritten, c.peerLimit)
	if c.closeQueued && c.closeReason != closeNormal {
		// The session ends as lost (Listener.Close) or aborted: the
		// peer drains what it has and no more, so the close frame need
		// not wait behind bytes it would never have whole.
		end = c.sSent
	}
	for c.sSent < end {
		room := cap(b) - len(b) - dataHdrLen
		if vec && room >= 0 {
			room = vecBatch - payload
		}
		if room <= 0 {
			break
		}
		n := int(min(end-c.sSent, uint64(maxPayload), uint64(room)))
		b = appendDataHdr(b, c.sSent, n)
		// The payload goes out after the lock is released: the bytes
		// from sSent on stay put until then (copying).
		if !c.copying {
			c.copying, c.copyLow = true, c.sSent
		}
		c.spans = append(c.spans, span{at: len(b), src: c.snd.buf, i: (c.snd.head + int(c.sSent-c.sAcked)) % len(c.snd.buf), n: n})
		if !vec {
			b = b[:len(b)+n]
		}
		payload += n
		c.sSent += uint64(n)
	}
	if payload > 0 && c.rttAt == 0 && (!c.probing || c.sSent-c.sAcked <= minSendBound) {
		c.rttAt, c.rttStart, c.rttAcked = c.sSent, now, c.sAcked
	}
	aborted := c.closeQueued && c.closeReason == closeAborted // no end of stream: a cut one
	if c.finWant && !c.finSent && !aborted && c.sSent == c.sWritten && cap(b)-len(b) >= finLen {
		b = appendU64Frame(b, frameFin, c.sWritten)
		c.finSent = true
	}
	if c.closeSend >= 0 && cap(b)-len(b) >= closeLen {
		// The close frame ends the session: it follows an ack of every
		// byte received, so that the peer's Close knows they arrived,
		// though no ack was due yet.
		if c.rRecv != c.ackedRecv {
			if cap(b)-len(b) < ackLen+closeLen {
				return b // both go in the next batch
			}
			b = c.appendAckLocked(b, c.limitLocked(), now)
		}
		b = appendClose(b, byte(c.closeSend))
		c.closing = true
	}
	return b
}

// appendAckLocked appends to b an ack of every byte received, with the
// window's limit.
func (c *Conn) appendAckLocked(b []byte, limit uint64, now time.Time) []byte {
	var flags byte
	if c.finKnown && c.rRecv == c.finAt {
		flags = ackFin
		c.ackFinSent = true
	}
	c.ackedRecv = c.rRecv
	c.announceLocked(limit, now)
	c.ackNow, c.ackDue = false, time.Time{}
	return appendAck(b, flags, c.rRecv, limit)
}

// nextWakeLocked returns how long the sender may sleep: until an ack or a
// ping is due.
func (c *Conn) nextWakeLocked(now time.Time) time.Duration {
	var d time.Duration
	if !c.ackDue.IsZero() {
		d = max(c.ackDue.Sub(now), time.Millisecond)
	}
	if !c.pinged {
		if k := max(c.lastRecv.Add(c.cfg.keepAlive).Sub(now), time.Millisecond); d == 0 || k < d {
			d = k
		}
	}
	if d == 0 {
		d = time.Hour // woken by swake
	}
	return d
}

// writerLocked returns where the sender writes in this epoch, or nil
// while there is no transport, and whether it takes vectored writes.
//
// A client writes to the transport of its epoch directly rather than
// through the Tether: over TCP and Unix with vectored writes, which the
// Tether has not (frames go out from the send buffer itself, without a
// copy into a batch); and over any transport so that a failed write
// leaves the transport's reader to read what had arrived (sendFailed), as
// a server's does, where the Tether would close it at once. This bypasses
// none of what the session needs from the Tether: the session alone
// writes and sets no write deadline, and the transport's reader sees the
// loss and the Tether reconnects.
func (c *Conn) writerLocked() (io.Writer, bool) {
	if c.blocked {
		return nil, false
	}
	tr := c.tr
	if c.client {
		if c.t == nil {
			return nil, false
		}
		tr = c.tconn
	}
	if tr == nil {
		return nil, false
	}
	return tr, vectored(tr)
}

// vectored reports whether net.Buffers.WriteTo writes to w with writev.
func vectored(w net.Conn) bool {
	switch w.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// sendLoop is the sender goroutine: it alone writes frames to the
// transport, so that each frame goes out whole in one Write.
func (c *Conn) sendLoop() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var bp *[]byte
	defer func() {
		if bp != nil {
			batchPool.Put(bp)
		}
	}()
	for {
		c.mu.Lock()
		var (
			w     io.Writer
			vec   bool
			b     []byte
			epoch uint64
		)
		for {
			if c.ended {
				c.mu.Unlock()
				return
			}
			now := time.Now()
			w, vec = c.writerLocked()
			epoch = c.epoch
			if w != nil {
				if bp == nil {
					bp = batchPool.Get().(*[]byte)
				}
				if b = c.batchLocked((*bp)[:0], now, vec); len(b) > 0 {
					break
				}
			}
			if bp != nil {
				batchPool.Put(bp)
				bp = nil
			}
			if w != nil {
				timer.Reset(c.nextWakeLocked(now))
			} // else nothing is due before a transport comes, which wakes the sender
			c.idle = true
			c.mu.Unlock()
			select {
			case <-c.swake:
			case <-timer.C:
			case <-c.done:
			}
			timer.Stop()
			c.mu.Lock()
			c.idle = false
		}
		closing := c.closing
		c.closing = false
		spans := c.spans
		c.mu.Unlock()
		var err error
		if vec {
			c.iov = appendBuffers(c.iov[:0], b, spans)
			c.iovw = c.iov
			_, err = c.iovw.WriteTo(w) // consumes iovw, not iov, which is kept for the next batch
			c.iovw = nil
			clear(c.iov) // an idle session keeps no buffer alive
			c.sentSpans(spans)
		} else {
			copySpans(b, spans)
			c.sentSpans(spans)
			_, err = w.Write(b)
		}
		if closing {
			c.mu.Lock()
			if c.epoch == epoch { // else a resume meanwhile armed the frame again
				c.closeSend = -1
			}
			if !c.closeSent {
				c.closeSent = true
				close(c.closeSentCh)
			}
			c.mu.Unlock()
		}
		if err != nil {
			c.sendFailed(epoch, w, err)
		}
	}
}

// sentSpans ends the sending of a batch's payloads, spans: the acks
// that would have freed them meanwhile take effect.
func (c *Conn) sentSpans(spans []span) {
	if len(spans) == 0 {
		return
	}
	c.mu.Lock()
	clear(spans) // an idle session keeps no buffer alive
	c.spans = c.spans[:0]
	c.copying = false
	if c.ackDeferred > c.sAcked {
		c.ackToLocked(c.ackDeferred)
	}
	c.mu.Unlock()
}

// sendFailed handles the failure err of a write to w in epoch: the sender
// writes no more in this epoch. The transport's reader first reads what
// had arrived, then fails at a read deadline if not before: the peer may
// have sent a close or abort frame, then closed its end, which failed
// this write, and closing this end now would throw the frame away (the
// session would then resume, and find itself lost). Then a server
// detaches the transport, and a client's Tether reconnects; its handler's
// Disconnected gets err if the deadline ends the transport (see
// handler).
func (c *Conn) sendFailed(epoch uint64, w io.Writer, err error) {
	c.mu.Lock()
	current := c.epoch == epoch
	if current {
		c.blocked = true
		wake(c.sendFail)
	}
	tr, _ := w.(net.Conn) // the transport of epoch (writerLocked)
	if current && tr != nil && c.client {
		c.droppingLocked(fmt.Errorf("tether/session: sending to the peer: %w", err))
	}
	c.mu.Unlock()
	if current && tr != nil {
		tr.SetReadDeadline(time.Now().Add(drainAfterFail))
	}
}

// droppingLocked notes why the session is ending the client's current
// transport, for the handler's Disconnected of its generation (see
// handler).
func (c *Conn) droppingLocked(why error) {
	c.dropped, c.droppedGen = why, c.t.Generation()
}

// watch is the liveness check, a timer of its own (the sender may be
// stuck in a Write to a dead peer): a transport on which nothing arrived
// for the keep-alive interval and its timeout (this end pings after the
// interval, and the peer answers any ping) is dead, and dropped; the
// client reconnects and resumes.
func (c *Conn) watch() {
	limit := c.cfg.keepAlive + c.cfg.keepAliveTimeout
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	silent := now.Sub(c.lastRecv)
	w, _ := c.writerLocked()
	kill := w != nil && silent >= limit
	epoch := c.epoch
	next := limit - silent
	switch {
	case !c.client && c.tr == nil:
		// A detached server session: no transport to check until a
		// resume attaches one, which starts the check again
		// (attachLocked). Detached sessions wait minutes, and a server
		// may hold thousands.
		c.mu.Unlock()
		return
	case kill:
		c.lastRecv, c.pinged = now, false
		next = limit
	case w == nil:
		// No transport to check: look again a whole period on, not
		// every millisecond of an outage. One that comes meanwhile sets
		// lastRecv, so its check is not late.
		next = limit
	}
	c.watchdog.Reset(max(next, time.Millisecond))
	c.mu.Unlock()
	if kill {
		c.dropTransport(epoch, limit)
	}
}

// startLocked starts the sender and the liveness check.
func (c *Conn) startLocked() {
	c.wg.Add(1)
	go c.sendLoop()
	c.watchdog = time.AfterFunc(c.cfg.keepAlive+c.cfg.keepAliveTimeout, c.watch)
}

// dropTransport drops the transport of epoch, found dead by the liveness
// check after silent passed with nothing received (the limit it met).
func (c *Conn) dropTransport(epoch uint64, silent time.Duration) {
	if !c.client {
		c.l.logf("tether/session: transport dropped by the keep-alive", "id", c.id[:], "silent", silent)
		c.detach(epoch)
		return
	}
	c.mu.Lock()
	var conn net.Conn // the transport of epoch, unless a resume replaced it
	if c.epoch == epoch {
		conn = c.tconn
		// The Tether sees a connection closed under it: the handler
		// tells its Disconnected why (see handler).
		c.droppingLocked(fmt.Errorf("tether/session: keep-alive: nothing received from the peer in %v: %w", silent, tether.ErrIdleTimeout))
	}
	c.mu.Unlock()
	if conn != nil {
		closeHard(conn) // the Tether's reader fails, and the Tether reconnects
	}
}

// A span is a payload to copy from the send buffer into a batch: n bytes
// of the ring's array src from index i (wrapping) to b[at:].
type span struct {
	at   int
	src  []byte
	i, n int
}

// copySpans copies the payloads of a batch, without the lock: the sender
// alone reads those bytes, Writes only add bytes after them, and acks
// that would free them wait (ackDeferred).
func copySpans(b []byte, spans []span) {
	for _, s := range spans {
		k := copy(b[s.at:s.at+s.n], s.src[s.i:])
		copy(b[s.at+k:s.at+s.n], s.src)
	}
}

// appendBuffers appends to v the batch b (the frames without their
// payloads) with the payloads of spans in place, as they lie in the send
// buffer: one or two pieces each.
func appendBuffers(v [][]byte, b []byte, spans []span) [][]byte {
	at := 0
	for _, s := range spans {
		v = append(v, b[at:s.at])
		at = s.at
		if k := len(s.src) - s.i; k < s.n {
			v = append(v, s.src[s.i:], s.src[:s.n-k])
		} else {
			v = append(v, s.src[s.i:s.i+s.n])
		}
	}
	return append(v, b[at:])
}
