package session

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/io-tether/tether"
)

// Protocol constants that are not options.
const (
	// ackThreshold: a receiver acknowledges at the latest once this many
	// bytes are unacknowledged (half its peer's window, if less: ackEvery),
	// or its read position moved this far (ackStep).
	ackThreshold = 64 << 10
	// ackDelay: and at the latest this long after the first unacknowledged
	// byte.
	ackDelay = 100 * time.Millisecond
	// batchSize is the sender's write buffer, from a pool while it sends:
	// four full data frames and the control frames that go before them
	// (fewer, larger writes: a 32 KiB stream goes 25 % faster than with
	// one frame a write).
	batchSize = 4*(maxPayload+dataHdrLen) + 64
	// vecBatch bounds the payloads of a batch written with writev, from
	// the send buffer itself: larger than a copied batch (no copy to
	// bound; 1 MiB rather than 256 KiB takes 5 % less CPU per byte), yet
	// small enough that the control frames of the next batch wait little.
	vecBatch = 16 * maxPayload
	// drainAfterFail bounds how long a transport reader goes on reading
	// after a write to the transport failed (sendFailed).
	drainAfterFail = 500 * time.Millisecond
	// readBufMin and readBufMax bound a transport reader's buffer, which
	// grows while reads fill it.
	readBufMin = 2 << 10
	readBufMax = 256 << 10
	// unlockedCopy is the least copy that Write and Read make without
	// the lock: taking it twice costs more than a smaller copy.
	unlockedCopy = 8 << 10
)

// A Conn is one end of a session: a net.Conn whose byte stream survives
// the loss of its transport connections, with nothing lost, duplicated or
// reordered. Dial returns the client's end; Listener.Accept the server's.
//
// Write copies into the send buffer and returns; it blocks only while the
// buffer is full (see WithBufferSize and the package doc's Limits), until
// the peer acknowledges bytes, its deadline passes, or Close. Reads and
// Writes may run concurrently, as on any net.Conn. Deadlines apply to the
// session, whatever happens to its transports.
type Conn struct {
	cfg    *config
	client bool
	t      *tether.Tether // client: the transport
	l      *Listener      // server: the owner
	// server, under l.mu: the session waits for Accept; it was removed
	// from the Listener's sessions (it ended).
	pending, removed bool

	id  [16]byte
	key []byte

	rmu, wmu sync.Mutex  // serialise Reads, and Writes
	wtimer   *time.Timer // under wmu: a Write waits for the acks to stop
	resumeMu sync.Mutex  // server: serialises resumes
	wg       sync.WaitGroup

	mu sync.Mutex
	// The transport.
	epoch      uint64        // counts handshakes: a resume starts a new epoch
	tconn      net.Conn      // client: the transport of this epoch
	dropped    error         // client: why the session ended tconn (sendFailed, watch), for the handler's Disconnected
	droppedGen uint64        // client: the Tether's generation of that tconn
	tr         net.Conn      // server: the current transport; nil while detached
	trDone     chan struct{} // server: closed once tr's reader has stopped
	blocked    bool          // the sender's write failed in this epoch: wait for the next
	attempt    uint64        // client: the last resume attempt; server: the last accepted
	expiry     *time.Timer   // server: the detached-lifetime timer
	// expiryGen counts the expiry timers started.
	expiryGen uint64
	// watchdog runs the liveness check (watch).
	watchdog *time.Timer
	laddr    net.Addr // server: the last transport's addresses
	raddr    net.Addr
	// The stream this end sends: the buffer holds [sAcked, sWritten).
	snd       ring
	sAcked    uint64
	sWritten  uint64
	sSent     uint64 // the next byte to send in this epoch
	peerLimit uint64 // the peer lets this end send up to here
	// Round trips, measured from a batch to the ack of its last byte
	// (sendBoundLocked): the sample under way ends at the ack of rttAt
	// (0: none), and began at rttStart with sAcked at rttAcked.
	rttAt     uint64
	rttStart  time.Time
	rttAcked  uint64
	minRTT    time.Duration // of this epoch, the least since minRTTAt
	minRTTAt  time.Time
	probing   bool      // the least round trip expired: measure it anew
	bdp       uint64    // bytes the path carries in minRTT, estimated
	lastAck   time.Time // of this epoch: of new bytes
	appending bool      // a Write copies into the room it reserved
	// copying: the sender copies bytes from copyLow on out of the lock
	// (spans); acks that would free them are deferred to ackDeferred.
	copying     bool
	copyLow     uint64
	ackDeferred uint64
	spans       []span
	iov         net.Buffers // the sender's, for vectored writes
	iovw        net.Buffers // iov as WriteTo consumes it: a field, so that its escape costs no allocation a batch
	finWant     bool        // CloseWrite or Close: a final frame after the last byte
	finSent     bool        // in this epoch
	finAcked    bool
	// The stream this end receives: the buffer holds what the reader has
	// not read, [rRecv-rcv.n, rRecv).
	rcv        ring
	rRecv      uint64
	finAt      uint64 // the peer's final position, once finKnown
	finKnown   bool
	ackedRecv  uint64 // what the last ack said
	ackEvery   uint64 // bytes received that make an ack due (ackEvery)
	ackedLimit uint64
	// rwin is the receive window: how far beyond the reader the peer may
	// send, tuned by tuneWindowLocked. The epoch under way began at
	// winFrom, at winAt (epochs count from winSince); in it the peer
	// stopped winStops times at a limit. winRate is the best rate of the
	// winEpochs epochs at this window, and winRTT the least round trip.
	// While winProbing, the window doubled from winPrev, whose best was
	// winBase. No probe begins before winHold. limits queues the limits
	// announced and not yet reached, nlimits of them from limitHead;
	// their times count from born.
	rwin       int
	winFrom    uint64
	winAt      time.Time
	winSince   time.Time
	winStops   int
	winRate    float64
	winEpochs  int
	winRTT     time.Duration
	winProbing bool
	winBase    float64
	winPrev    int
	winHold    time.Time
	limits     [limitQueue]announced
	limitHead  int
	nlimits    int
	born       time.Time
	ackFinSent bool
	ackDue     time.Time // when an ack is due for bytes received (zero: none)
	ackNow     bool
	now        time.Time // the time of the bytes being fed
	// Liveness.
	lastRecv time.Time
	pinged   bool
	pongWant bool
	pongVal  uint64
	pingVal  uint64
	// The end.
	idle        bool // the sender waits
	closeSend   int  // a close reason to send, or -1
	closeQueued bool // a close frame was queued: the session sends one at most (again after a resume)
	closeReason int  // the reason queued
	closeSent   bool // closeSentCh is closed
	closeSentCh chan struct{}
	sendFail    chan struct{} // woken when the sender's write fails (blocked), for answerClose
	closing     bool          // the batch being written holds the close frame
	closeRecv   int           // a close reason received, or -1
	// closeAnswered: the close frame received came after this end queued
	// its own (an answer, or a close at the same time).
	closeAnswered bool
	closed        bool
	ended         bool
	endErr        error
	state         tether.State
	stateCh       chan struct{}

	rdl, wdl            deadline
	rwake, wwake, swake chan struct{} // capacity 1: a pending wake-up
	done                chan struct{} // closed when the session ended
}

func newConn(cfg *config, client bool) *Conn {
	return &Conn{
		cfg:         cfg,
		client:      client,
		ackEvery:    ackThreshold,
		closeSend:   -1,
		closeRecv:   -1,
		snd:         ring{limit: cfg.bufSize},
		rcv:         ring{limit: cfg.bufSize},
		rwin:        cfg.startWindow(),
		born:        time.Now(),
		closeSentCh: make(chan struct{}),
		sendFail:    make(chan struct{}, 1),
		state:       tether.Connecting,
		stateCh:     make(chan struct{}),
		rwake:       make(chan struct{}, 1),
		wwake:       make(chan struct{}, 1),
		swake:       make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// kickLocked wakes the sender if it waits.
func (c *Conn) kickLocked() {
	if c.idle {
		wake(c.swake)
	}
}

// Read reads bytes of the peer's stream. It returns io.EOF once the peer's
// final frame (CloseWrite or Close) and every byte before it have been
// read. When the session was lost, Read first returns every byte received
// before the loss, then an error matching ErrSessionLost. After Close it
// returns net.ErrClosed.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		dl := c.rdl.wait()
		if isClosed(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, net.ErrClosed
		case len(p) == 0:
			c.mu.Unlock()
			return 0, nil
		case c.rcv.n > 0:
			// Copy without the lock, so that the transport's reader
			// goes on meanwhile: the bytes stay put until discarded,
			// and only Read discards them.
			a, b := c.rcv.front(min(len(p), c.rcv.n))
			locked := len(a)+len(b) < unlockedCopy
			if !locked {
				c.mu.Unlock()
			}
			n := copy(p, a)
			n += copy(p[n:], b)
			if !locked {
				c.mu.Lock()
			}
			c.rcv.discard(n)
			if c.limitLocked()-c.ackedLimit >= c.ackStep() {
				c.kickLocked()
			}
			c.mu.Unlock()
			return n, nil
		case c.finKnown && c.rRecv == c.finAt:
			c.mu.Unlock()
			return 0, io.EOF
		case c.ended:
			err := c.endErr
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()
		select {
		case <-c.rwake:
		case <-dl:
		case <-c.done:
		}
	}
}

// Write copies p into the send buffer. It blocks while the buffer is full
// (until the peer acknowledges bytes, the write deadline passes, or Close;
// while acks flow, the buffer counts as full sooner: see the package
// doc's Limits), and returns len(p), nil once all of p is buffered: the
// session then sends it, across reconnects if need be. A Write after CloseWrite, after the
// peer closed the session (ErrPeerClosed), or after it was lost
// (ErrSessionLost) fails; after Close it returns net.ErrClosed.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	for {
		dl := c.wdl.wait()
		if isClosed(dl) && (n < len(p) || n == 0) {
			// (Once all of p is buffered, the Write succeeded: the
			// deadline that passed during its last copy does not undo
			// it.) The wake-up this Write may have taken could be one
			// that Close waits for (waitLocked): pass it on.
			wake(c.wwake)
			return n, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if err := c.writeErrLocked(); err != nil {
			if c.closed {
				// Close waits on wwake too (waitLocked): the wake-up
				// this Write may have taken was perhaps the ack Close
				// waits for, so pass it on.
				wake(c.wwake)
			}
			c.mu.Unlock()
			return n, err
		}
		if n == len(p) {
			c.mu.Unlock()
			return n, nil
		}
		bound, until := c.cfg.bufSize, time.Time{}
		// No bound is below minSendBound: below it, only a buffer that
		// grew (in an outage) needs the bound, to shrink.
		if c.snd.n+len(p)-n > minSendBound || len(c.snd.buf) > 2*minSendBound {
			now := time.Now()
			bound, until = c.sendBoundLocked(now)
			c.snd.settle(bound, now)
		}
		if room := bound - c.snd.n; room > 0 {
			// Copy without the lock, so that the sender and the
			// transport's reader go on meanwhile: only Write (under
			// wmu) appends, and acks discard from the other end.
			k := min(room, len(p)-n)
			c.snd.rewind()
			a, b := c.snd.reserve(k)
			if k < unlockedCopy {
				copy(b, p[n+copy(a, p[n:n+k]):n+k])
			} else {
				c.appending = true
				c.mu.Unlock()
				copy(b, p[n+copy(a, p[n:n+k]):n+k])
				c.mu.Lock()
				c.appending = false
				if err := c.writeErrLocked(); err != nil {
					// The session ended, or CloseWrite or Close came,
					// meanwhile: the bytes copied are not written, and
					// a final frame follows the n before them.
					c.snd.release()
					c.mu.Unlock()
					return n, err
				}
			}
			c.snd.commit(k)
			c.sWritten += uint64(k)
			n += k
			c.kickLocked()
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		var stalled <-chan time.Time
		if !until.IsZero() {
			// Blocked short of the buffer's size: until the acks stop,
			// if they do.
			if c.wtimer == nil {
				c.wtimer = time.NewTimer(time.Until(until))
			} else {
				c.wtimer.Reset(time.Until(until))
			}
			stalled = c.wtimer.C
		}
		select {
		case <-c.wwake:
		case <-dl:
		case <-c.done:
		case <-stalled:
		}
		if stalled != nil {
			c.wtimer.Stop()
		}
	}
}

func (c *Conn) writeErrLocked() error {
	switch {
	case c.closed:
		return net.ErrClosed
	case c.ended:
		return c.endErr
	case c.client && c.t != nil && c.t.State() == tether.Shutdown:
		// The Tether ended (it gave up: a lost session, a permanent
		// error), and the reader is about to end the session with it
		// (readLoop): State already says Shutdown, and a Write fails as
		// it will then.
		if err := c.t.Err(); err != nil {
			return asLost(err)
		}
	case c.closeRecv >= 0:
		// The peer closed the session: it reads nothing more, though
		// this end ends only once it has answered (answerClose).
		return closeErr(c.closeRecv)
	case c.finWant:
		return fmt.Errorf("tether/session: write after CloseWrite: %w", net.ErrClosed)
	}
	return nil
}

// CloseWrite sends the peer a final frame after every byte written: the
// peer's Reads return io.EOF once they have read them all. This end can
// still read. It returns at once, as a TCP connection's does: a Write
// blocked meanwhile on a full buffer returns the count it buffered, which
// the final frame follows, and an error. Close waits for the
// acknowledgement.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writeErrLocked(); err != nil {
		return err
	}
	c.finWant = true
	c.kickLocked()
	wake(c.wwake)
	return nil
}

// Close ends the session: it sends every byte written and a final frame,
// waits (at most the linger time, WithLinger) until the peer has
// acknowledged them all, across reconnects if need be, then tells the peer
// that the session is over, waits briefly for its answer (a few round
// trips, within the linger time; while a client resumes, to the end of
// the linger time: the peer has then read everything this end sent, so
// that the application may close what carries the transport, a QUIC
// connection say, at once), and closes the transport. The peer reads every
// byte, then io.EOF. Close returns an error when the linger time passed
// before the peer acknowledged everything, the bytes and the final frame
// (those bytes may never arrive; without the final frame the peer's Read
// ends with the loss of the session, not io.EOF), or when the session had
// ended (lost) short of that (they never will); the error wraps the
// session's end. It returns nil when every byte arrived and a close frame
// ended the session (the peer's Close, Abort or Listener.Close, or this
// end's Close or Listener.Close, which the peer answered), and with a
// linger of 0 (WithLinger) when every byte arrived.
// Blocked and later operations return net.ErrClosed; a second Close returns
// net.ErrClosed.
func (c *Conn) Close() error {
	if !c.closeLocking() {
		return net.ErrClosed
	}
	var err error
	if !c.ended {
		c.finWant = true
		c.kickLocked()
		deadline := time.Now().Add(c.cfg.linger)
		c.waitLocked(deadline, func() bool { return c.finAcked || c.ended })
		w, _ := c.writerLocked()
		if !c.ended && (w != nil || c.client && time.Now().Before(deadline)) {
			// Tell the peer the session is over, so that it need not wait
			// for a resume: a courtesy (the peer would learn it when the
			// client resumes, or the detached lifetime ends), so wait
			// for it only within the linger time. A client whose sender
			// has no transport (its last write failed) queues the frame
			// all the same: its resume, within the linger time, sends it
			// (resumedLocked); a server that does not come back costs
			// the rest of the linger time, as in awaitAnswer.
			c.queueCloseLocked(closeNormal) // unless Listener.Close queued one
			answer := c.answerWaitLocked()
			c.mu.Unlock()
			floor := 100 * time.Millisecond // for writing the frame to a transport that is up
			if w == nil {
				floor = 0
			}
			t := time.NewTimer(max(time.Until(deadline), floor))
			select {
			case <-c.closeSentCh:
				// The peer answers with a close frame of its own once it
				// has read every frame before it (answerClose), which
				// ends the session here: after it the peer needs nothing
				// more of this end's transport, which the application
				// may then tear down (a QUIC connection, whose close
				// drops the stream data not yet sent).
				t.Stop()
				c.awaitAnswer(deadline, answer)
			case <-c.done:
			case <-t.C:
			}
			t.Stop()
			c.mu.Lock()
		}
	}
	// (An ack that the sender defers while it copies counts: the bytes
	// arrived.)
	n := c.sWritten - max(c.sAcked, c.ackDeferred)
	// The peer ended the session with a close frame (its Listener.Close
	// may cross this end's final frame: the peer's Read took it, and its
	// ack came after the close frame).
	peerEnded := c.ended && byPeer(c.endErr)
	switch {
	case c.finAcked:
	case n == 0 && (c.closeAnswered || peerEnded):
		// Every byte arrived, and the peer learned that the session is
		// over: from this end's close frame, or it closed it itself.
	case n == 0 && c.cfg.linger == 0:
		// Close did not wait: only bytes count (WithLinger).
	case n == 0 && c.ended:
		// Every byte arrived, but the end of the stream did not: the
		// peer's Read ends with the loss, not io.EOF.
		err = fmt.Errorf("%w (the final frame unacknowledged): %w", errLingered, c.endErr)
	case n == 0:
		err = fmt.Errorf("%w (the final frame unacknowledged after the linger time, %v)", errLingered, c.cfg.linger)
	case c.ended && !c.closeAnswered: // else the peer's answer to this end's close ended it
		err = fmt.Errorf("%w (%d bytes unacknowledged): %w", errLingered, n, c.endErr)
	default:
		err = fmt.Errorf("%w (%d bytes unacknowledged after the linger time, %v)", errLingered, n, c.cfg.linger)
	}
	c.mu.Unlock()
	c.finish(net.ErrClosed)
	c.wg.Wait()
	return err
}

// Abort ends the session at once, as a reset ends a TCP connection. It does
// not wait for the peer's acknowledgement of what was written (some of it
// may never arrive), only for its close frame to be written, which goes
// before the bytes not sent yet, with no final frame: at most the linger
// time, for a transport that takes nothing or, on a client, for the resume
// after a loss, which sends it again. The frame tells the peer that the
// session was aborted: the peer's Reads return what had arrived, then an
// error matching ErrPeerAborted, not io.EOF (unless a final frame of
// CloseWrite's had gone out before), and its Writes fail. A relay uses it
// to pass on a reset, so that a reply cut short is not taken for a whole
// one. Blocked and later operations return net.ErrClosed; Abort after
// Close, or a second Abort, returns net.ErrClosed.
func (c *Conn) Abort() error {
	if !c.closeLocking() {
		return net.ErrClosed
	}
	w, _ := c.writerLocked()
	switch {
	case c.ended:
		c.mu.Unlock()
	case c.client:
		// The frame goes before any data not yet sent (batchLocked),
		// and again after a resume when the transport failed
		// (resumedLocked): wait for it as Close does, within the
		// linger time.
		c.queueCloseLocked(closeAborted) // unless Listener.Close queued one
		t := time.NewTimer(max(c.cfg.linger, c.answerWaitLocked()))
		c.mu.Unlock()
		select {
		case <-c.closeSentCh:
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
	case w != nil:
		// A server cannot wait for a resume: its frame goes on this
		// transport or not at all (answerClose's wait).
		c.queueCloseLocked(closeAborted)
		d := max(c.cfg.linger, c.answerWaitLocked())
		c.mu.Unlock()
		c.awaitCloseSent(d)
	default:
		c.mu.Unlock()
	}
	c.finish(net.ErrClosed)
	c.wg.Wait()
	return nil
}

// closeLocking marks c closed for Close or Abort, and wakes blocked
// operations; it returns with c.mu held, or false, with c.mu not held, when
// c was closed already.
func (c *Conn) closeLocking() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed = true
	wake(c.rwake)
	wake(c.wwake)
	return true
}

// awaitAnswer waits, within the linger time (deadline), for the peer's
// answer to this end's close frame, which ends the session (done): at most
// answer, and on while the client's transport is being replaced, since a
// resume sends the frame again (resumedLocked). A peer that does not
// answer, or a transport that died without a word, costs the wait.
func (c *Conn) awaitAnswer(deadline time.Time, answer time.Duration) {
	until := time.Now().Add(answer)
	if deadline.Before(until) {
		until = deadline
	}
	for {
		t := time.NewTimer(max(time.Until(until), 0))
		select {
		case <-c.done:
			t.Stop()
			return
		case <-t.C:
		}
		if !c.resuming() || !time.Now().Before(deadline) {
			return
		}
		until = deadline
	}
}

// resuming reports whether the client's Tether is reconnecting, after
// which it resumes. (A server whose transport is gone cannot tell whether
// the client will resume, nor wait for it: a client that closed the
// connection at once after its own close frame never does.)
func (c *Conn) resuming() bool {
	if !c.client {
		return false
	}
	s := c.t.State()
	return s == tether.Connecting || s == tether.TransientFailure
}

// waitLocked waits, with c.mu held around it, until cond holds or deadline
// passes. Whatever changes cond wakes wwake; a Write that takes such a
// wake-up after Close passes it on.
func (c *Conn) waitLocked(deadline time.Time, cond func() bool) {
	for !cond() {
		d := time.Until(deadline)
		if d <= 0 {
			return
		}
		c.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-c.wwake:
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
	}
}

// finish ends the session with err (what operations return after
// draining) and tears its transport down. It is idempotent.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.endErr = err
	close(c.done)
	c.setStateLocked(tether.Shutdown)
	tr := c.tr
	c.tr = nil
	if c.expiry != nil {
		c.expiry.Stop()
	}
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	if !c.appending {
		c.snd.release()
	}
	c.mu.Unlock()
	if c.client {
		if c.t != nil {
			c.t.Close()
		}
		return
	}
	if tr != nil {
		closeHard(tr)
	}
	c.l.remove(c)
}

// LocalAddr returns the local address of the current transport, or of the
// last one.
func (c *Conn) LocalAddr() net.Addr { return c.addr(true) }

// RemoteAddr returns the remote address of the current transport, or of
// the last one.
func (c *Conn) RemoteAddr() net.Addr { return c.addr(false) }

func (c *Conn) addr(local bool) net.Addr {
	if c.client {
		if local {
			return c.t.LocalAddr()
		}
		return c.t.RemoteAddr()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if local {
		return c.laddr
	}
	return c.raddr
}

// SetDeadline sets the read and write deadlines of the session, as
// net.Conn does; they do not depend on the transport.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read calls, pending ones included.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setDeadline(&c.rdl, t) }

// SetWriteDeadline sets the deadline for Write calls, pending ones
// included.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadline(&c.wdl, t) }

func (c *Conn) setDeadline(d *deadline, t time.Time) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	d.set(t)
	return nil
}

// State returns where the session stands: Ready while a transport is up,
// Connecting or TransientFailure while the client reconnects (on the
// server: Connecting while it waits for the client to resume), Shutdown
// once the session ended. Shutdown is final. The client's state is its
// Tether's (tether.Tether.State).
func (c *Conn) State() tether.State {
	if c.client {
		return c.t.State()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// WaitForStateChange returns true at once if the state is not from;
// otherwise it waits until the state changes (true) or ctx ends (false).
func (c *Conn) WaitForStateChange(ctx context.Context, from tether.State) bool {
	if c.client {
		return c.t.WaitForStateChange(ctx, from)
	}
	c.mu.Lock()
	if c.state != from {
		c.mu.Unlock()
		return true
	}
	ch := c.stateCh
	c.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Conn) setStateLocked(s tether.State) {
	if c.state == s || c.state == tether.Shutdown {
		return
	}
	c.state = s
	close(c.stateCh)
	c.stateCh = make(chan struct{})
}

// answerWaitLocked is how long Close waits for the peer's answer to its
// close frame: four least round trips, at least 50 ms and at most 1 s.
func (c *Conn) answerWaitLocked() time.Duration {
	return min(max(4*c.minRTT, 50*time.Millisecond), time.Second)
}

// answerClose answers the peer's close frame, of reason, with one of the
// same reason, and waits until the sender wrote it: the peer's Close waits
// for it (see Close), and the session's end, which follows, closes the
// transport. The same reason, so that the answer ends the peer's session
// as its own close frame would have (a Listener.Close's sessions are
// lost). A close frame this end queued itself (Close or Listener.Close, at
// the same time as the peer's) is the answer: unless the sender wrote it
// already, it is waited for all the same (its first writing only: one
// sent again after a resume is not).
//
// The wait is the linger time (at least answerWaitLocked), not a few
// round trips: the sender writes at once, but on a loaded machine it may
// wait longer than that for a CPU. A transport closed without the answer
// costs the peer more than the wait: a client's Tether reconnects, and its
// Close waits for the answer across the resume to the end of its linger
// time, though the server, which forgot the session, may be gone (tcat's
// listener exits with its session). The wait ends sooner with the session
// (Close, Listener.Close), or when the sender's write fails.
func (c *Conn) answerClose(reason int) {
	c.mu.Lock()
	w, _ := c.writerLocked()
	if c.ended || w == nil {
		c.mu.Unlock()
		return
	}
	if !c.queueCloseLocked(reason) && c.closeSent { // this end's own, written
		c.mu.Unlock()
		return
	}
	d := max(c.cfg.linger, c.answerWaitLocked())
	c.mu.Unlock()
	c.awaitCloseSent(d)
}

// awaitCloseSent waits, for d at most, until this end's close frame is
// written, the session ends, or a write fails (the frame does not go out on
// this transport).
func (c *Conn) awaitCloseSent(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-c.closeSentCh:
			return
		case <-c.done:
			return
		case <-t.C:
			return
		case <-c.sendFail:
			// A write failed: the frame does not go out on this
			// transport (the wake-up may be an older transport's).
			c.mu.Lock()
			blocked := c.blocked
			c.mu.Unlock()
			if blocked {
				return
			}
		}
	}
}

// queueCloseLocked has the sender send a close frame with reason, unless
// one was queued already: Close and Listener.Close may both try, and the
// sender closes closeSentCh after the frame.
func (c *Conn) queueCloseLocked(reason int) bool {
	if c.closeQueued {
		return false
	}
	c.closeQueued = true
	c.closeSend, c.closeReason = reason, reason
	c.kickLocked()
	return true
}

// Tether returns the client's Tether (nil on the server's end), for its
// events, generation and current connection. Reading from or writing to it
// bypasses the session and corrupts it.
func (c *Conn) Tether() *tether.Tether { return c.t }

// closeHard closes c at once: a TLS connection's Close first sends a
// close_notify, which waits (up to 5 s) on a full send buffer, so the
// connection under it goes first.
func closeHard(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		if under := nc.NetConn(); under != nil {
			under.Close()
		}
	}
	c.Close()
}
