package quic

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/io-tether/tether"
	"github.com/quic-go/quic-go"
)

// Origin says how the stream of a Conn came to be: on a live connection, or
// with a new connection and which kind of handshake.
type Origin int

const (
	// NewStream: a new stream on a QUIC connection that was already up; no
	// handshake, no round trip.
	NewStream Origin = iota + 1
	// FullHandshake: a new QUIC connection with a full TLS handshake.
	FullHandshake
	// Resumed: a new QUIC connection that resumed a TLS session (one round
	// trip, no certificate exchange).
	Resumed
	// ZeroRTT: a new QUIC connection that resumed a TLS session and sent the
	// first bytes in 0-RTT (Dialer.Enable0RTT). While the handshake is in
	// progress it means 0-RTT was attempted; once it completed, that the
	// server accepted it (a rejected attempt reports Resumed or
	// FullHandshake).
	ZeroRTT
)

// String returns the lowercase name of o ("new-stream", "full-handshake",
// "resumed", "0-rtt").
func (o Origin) String() string {
	switch o {
	case NewStream:
		return "new-stream"
	case FullHandshake:
		return "full-handshake"
	case Resumed:
		return "resumed"
	case ZeroRTT:
		return "0-rtt"
	}
	return "origin(" + strconv.Itoa(int(o)) + ")"
}

// A Conn is one bidirectional QUIC stream as a net.Conn: what a Dialer returns
// for each connection of a Tether. Its addresses are those of the QUIC
// connection, its deadlines those of the stream; CloseWrite sends a FIN, and
// Close ends the stream (the QUIC connection stays up for the Dialer's other
// streams). As with any net.Conn, its methods may be called concurrently: a
// Read, a Write and a Close at once.
//
// # The stream's life
//
// A QUIC stream exists for the server only once the client sends on it, so
// a Conn opens its stream at its first Write (or CloseWrite), not in Dial
// (except on a connection still in its 0-RTT handshake, where Dial opens it
// when the server allows one: quic-go cannot open a stream safely while
// that handshake completes):
//
//   - a Conn that never writes opens no stream, and its Close sends
//     nothing. (An opened stream that is then closed empty would reach the
//     server as a bare FIN, which an HTTP/3 server takes for a broken
//     request and answers by closing the whole connection.)
//   - when the server allows no more streams for now, the first Write waits
//     for it to allow one, within the write deadline and until Close: a
//     healthy connection that is busy is not an unreachable server.
//   - a Read before the first Write waits for it (within the read deadline
//     and until Close): the server cannot send on a stream it has not seen.
//
// Close ends a stream that carried bytes with a FIN after them, as TCP does,
// and tells the server to stop sending (STOP_SENDING). It resets the stream
// instead (RESET_STREAM and STOP_SENDING, with Dialer.StreamErrorCode) when
// the Conn is abandoned: a Write is in progress or was cut, a Read or Write
// failed, or the stream never carried a byte; and, with
// Dialer.ResetOnClose, whenever CloseWrite did not end the stream. A Tether
// closes its Conn after a failure, so the server never takes the end of an
// abandoned stream for the end of a request.
//
// Unlike TCP's, which the kernel sends after close, that FIN and the bytes
// before it still unacknowledged go out only while the QUIC connection
// lives: closing the connection (Dialer.Close; for a Tether from Dial, the
// Tether's Close) drops them, and the server sees the connection's close
// instead of the end of the stream. quic-go tells no one when a stream's
// bytes are acknowledged; a protocol whose last bytes must arrive has the
// server answer them (CloseWrite, then read to io.EOF, before Close), as
// package session does.
//
// # Introspection
//
// A Tether's Conn method and the Event.Conn of Connected and Reconnected
// events return it, for its Origin or TLS state:
//
//	if c, ok := ev.Conn.(*tetherquic.Conn); ok {
//		log.Printf("reconnected: %v", c.Origin())
//	}
//
// While 0-RTT data may still be rejected, a Conn keeps a copy of the bytes
// written, and on a rejection writes them again on a fresh stream before
// going on. It drops the copy at the first Write that succeeds, or Read that
// returns bytes, after the handshake accepted the 0-RTT data.
//
// The zero Conn (or a nil one) is not usable: its methods return an error.
type Conn struct {
	q       *qconn // the Dialer's record of qc; nil for a stream the peer opened
	qc      *quic.Conn
	fresh   bool // the Dial that made this Conn dialed qc
	code    quic.StreamErrorCode
	timeout time.Duration
	// resetOnClose: Close resets a stream that CloseWrite did not end
	// (Dialer.ResetOnClose).
	resetOnClose bool
	str          atomic.Pointer[quic.Stream] // nil until the first Write
	closed       atomic.Bool
	ctx          context.Context // done on Close: ends an opening or a replay
	cancel       context.CancelFunc

	omu   sync.Mutex    // serialises the opening of the stream
	ready chan struct{} // closed once str is set

	// writing counts Writes in progress, so that Close does not call
	// Stream.Close concurrently with Stream.Write (quic-go forbids it): a
	// Close that finds one resets the send side instead.
	writing atomic.Int32

	// What the stream carried, for Close: wrote, a byte; finished, our FIN
	// (CloseWrite); failed, an error other than io.EOF and a deadline;
	// cut, a Write that failed (at its deadline too) after part of it went;
	// timedOut, a deadline error with no byte read since (the server may be
	// gone: the Dialer then checks that the connection hears from it before
	// it puts a new stream on it).
	wrote, finished, failed, cut, timedOut atomic.Bool

	// early is set while 0-RTT data written on the stream may still be
	// rejected; it is never set again once cleared. replayable says that
	// the stream was opened before the handshake completed (so it has 0-RTT
	// data of its own to resend); written before str is published.
	early      atomic.Bool
	replayable bool

	// wlock serialises Writes, CloseWrite and the replay after a 0-RTT
	// rejection; it is taken only while early. It is a lock of one token,
	// so that a Read that meets the rejection while a Write holds it (one
	// that flow control blocks) can wait within its deadline. replaced is
	// closed once the replay has replaced the first stream. Both are made
	// with a stream opened in 0-RTT, before str is published.
	wlock, replaced chan struct{}
	sent            []byte // bytes written while early: resent on rejection
	fin             bool   // CloseWrite was called while early
	replaying       bool   // a replay writes on str, under its own deadline; guarded by dlmu

	dlmu         sync.Mutex // the deadlines, for the stream to come or a replacement
	rdl, wdl     time.Time
	rdlCh, wdlCh chan struct{} // closed when a deadline changes; made by a waiter
}

func newConn(q *qconn, fresh bool) *Conn {
	c := &Conn{q: q, qc: q.qc, fresh: fresh, code: q.d.StreamErrorCode, timeout: q.d.timeout,
		resetOnClose: q.d.ResetOnClose, ready: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

func handshakeDone(qc *quic.Conn) bool {
	select {
	case <-qc.HandshakeComplete():
		return true
	default:
		return false
	}
}

// stream returns the Conn's stream, opening it if need be.
func (c *Conn) stream() (*quic.Stream, error) {
	if s := c.str.Load(); s != nil {
		return s, nil
	}
	return c.open(true)
}

// open opens the stream: at once when the server allows one more, or once
// it does (unless wait is false), within the write deadline and until Close.
func (c *Conn) open(wait bool) (*quic.Stream, error) {
	c.omu.Lock()
	defer c.omu.Unlock()
	if s := c.str.Load(); s != nil {
		return s, nil
	}
	if c.closed.Load() {
		return nil, net.ErrClosed
	}
	s, err := c.qc.OpenStream()
	if err != nil && wait {
		s, err = c.openSync()
	}
	if err != nil {
		return nil, err
	}
	c.dlmu.Lock()
	if !c.rdl.IsZero() {
		s.SetReadDeadline(c.rdl)
	}
	if !c.wdl.IsZero() {
		s.SetWriteDeadline(c.wdl)
	}
	if !handshakeDone(c.qc) {
		c.early.Store(true)
		c.replayable = true
		c.wlock, c.replaced = make(chan struct{}, 1), make(chan struct{})
	}
	c.str.Store(s)
	c.dlmu.Unlock()
	close(c.ready)
	if c.closed.Load() {
		// Close may have missed s.
		s.CancelWrite(c.code)
		s.CancelRead(c.code)
		return nil, net.ErrClosed
	}
	return s, nil
}

// errDeadlineMoved cancels a wait for a stream when the write deadline
// changes: the wait starts again with the new one.
var errDeadlineMoved = errors.New("tether/quic: write deadline moved")

// openSync waits for the server to allow a new stream (or for the 0-RTT
// handshake to settle), within the write deadline and until Close.
func (c *Conn) openSync() (*quic.Stream, error) {
	for {
		dl, moved := c.deadline(false)
		if !dl.IsZero() && !time.Now().Before(dl) {
			return nil, os.ErrDeadlineExceeded
		}

		ctx, cancel := context.WithCancelCause(c.ctx)
		cancelT := context.CancelFunc(func() {})
		if !dl.IsZero() {
			ctx, cancelT = context.WithDeadlineCause(ctx, dl, os.ErrDeadlineExceeded)
		}
		stop := make(chan struct{})
		go func() {
			select {
			case <-moved:
				cancel(errDeadlineMoved)
			case <-stop:
			}
		}()
		s, err := c.qc.OpenStreamSync(ctx)
		if errors.Is(err, quic.Err0RTTRejected) {
			// quic-go refuses new streams until NextConnection.
			if _, err = c.qc.NextConnection(ctx); err == nil {
				s, err = c.qc.OpenStreamSync(ctx)
			}
		}
		close(stop)
		cause := context.Cause(ctx)
		cancel(nil)
		cancelT() // each turn's, not one more per moved deadline until the return
		switch {
		case err == nil:
			return s, nil
		case c.closed.Load():
			return nil, net.ErrClosed
		case cause == errDeadlineMoved:
			continue
		case cause == os.ErrDeadlineExceeded:
			return nil, os.ErrDeadlineExceeded
		}
		return nil, err
	}
}

// awaitStream waits for the first Write to open the stream, within the read
// deadline, until Close, and while the connection lives.
func (c *Conn) awaitStream() error {
	_, err := c.awaitRead(c.ready, nil)
	return err
}

// awaitRead waits, within the read deadline and until Close or the end of
// the connection, for done to be closed (nil error) or, when lock is not
// nil, to take lock's token (locked).
func (c *Conn) awaitRead(done <-chan struct{}, lock chan struct{}) (locked bool, err error) {
	for {
		if locked, moved, err := c.awaitReadOnce(done, lock); !moved {
			return locked, err
		}
	}
}

// awaitReadOnce is awaitRead under the read deadline of the moment; moved
// says that the deadline changed meanwhile (and nothing else happened).
func (c *Conn) awaitReadOnce(done <-chan struct{}, lock chan struct{}) (locked, moved bool, err error) {
	dl, changed := c.deadline(true)
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return false, false, os.ErrDeadlineExceeded
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-done:
		return false, false, nil
	case lock <- struct{}{}:
		return true, false, nil
	case <-c.ctx.Done():
		return false, false, net.ErrClosed
	case <-c.qc.Context().Done():
		// The connection is gone: its error, as a Read on the stream
		// would have returned it.
		return false, false, ioError(context.Cause(c.qc.Context()))
	case <-timeout:
		return false, false, os.ErrDeadlineExceeded
	case <-changed:
		return false, true, nil
	}
}

// note records what err, returned by a Read or a Write, says about the
// stream, and returns it.
func (c *Conn) note(err error) error {
	switch {
	case err == io.EOF:
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.timedOut.Store(true)
	default:
		c.failed.Store(true)
		if c.q != nil && connGone(err) {
			// quic-go ends the connection's Context only after its
			// streams have failed: until then, the Dialer must learn it
			// from here, or it would hand out a stream on it (or redial
			// without the session).
			if c.q.unanswered != nil {
				c.q.unanswered(err)
			}
			c.q.retire()
		}
	}
	return err
}

// connGone reports whether err says that the QUIC connection is gone (not
// only the stream).
func connGone(err error) bool {
	var (
		ae *quic.ApplicationError
		ie *quic.IdleTimeoutError
		re *quic.StatelessResetError
		te *quic.TransportError
		he *quic.HandshakeTimeoutError
		ve *quic.VersionNegotiationError
	)
	return errors.As(err, &ae) || errors.As(err, &ie) || errors.As(err, &re) ||
		errors.As(err, &te) || errors.As(err, &he) || errors.As(err, &ve)
}

// Read reads from the stream. It returns io.EOF after the peer's FIN, and
// the quic-go error otherwise: a *quic.StreamError when the peer reset the
// stream, the connection's error (*quic.IdleTimeoutError,
// *quic.ApplicationError, ...) when the connection is gone. A handshake that
// fails after a 0-RTT Dial returned (the server no longer trusts the session,
// or speaks no common ALPN protocol) is marked permanent, as a Dial error
// would be. Before the first Write, Read waits for it. After Close (and in
// a Read that Close interrupts), it returns net.ErrClosed.
func (c *Conn) Read(p []byte) (int, error) {
	if c == nil || c.qc == nil {
		return 0, errNilConn
	}
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		s := c.str.Load()
		if s == nil {
			if err := c.awaitStream(); err != nil {
				return 0, c.note(err)
			}
			continue
		}
		n, err := s.Read(p)
		if (n > 0 || err == io.EOF) && c.timedOut.Load() {
			c.timedOut.Store(false) // the server spoke since (its FIN too)
		}
		if n > 0 && c.early.Load() {
			c.trySettle() // a client that wrote its request in 0-RTT, then only reads
		}
		if err == nil {
			return n, nil
		}
		if c.closed.Load() {
			// Close stopped reading: the stream error says "canceled by
			// local", which is no news for the caller.
			return n, net.ErrClosed
		}
		if !errors.Is(err, quic.Err0RTTRejected) {
			return n, c.note(ioError(err))
		}
		// The server never saw this stream: nothing was read from it.
		if err := c.replayFrom(s); err != nil {
			if c.closed.Load() {
				return 0, net.ErrClosed // the replay's wait, cut short by Close
			}
			return 0, c.note(ioError(err))
		}
	}
}

// ioError marks the errors that no retry mends, which the default policy of
// a Tether then gives up on; the others are quic-go's, unchanged.
func ioError(err error) error {
	if permanent(err) {
		return tether.Permanent(err)
	}
	return err
}

// Write writes p to the stream, opening it first if this is the first
// Write. After Close (and in a Write that Close interrupts), it returns
// net.ErrClosed.
func (c *Conn) Write(p []byte) (int, error) {
	if c == nil || c.qc == nil {
		return 0, errNilConn
	}
	c.writing.Add(1)
	defer c.writing.Add(-1)
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if _, err := c.stream(); err != nil { // opens it, on the first Write
		return 0, c.note(ioError(err))
	}
	var (
		n   int
		err error
	)
	if c.early.Load() {
		n, err = c.writeEarly(p) // its errors are marked already
	} else if n, err = c.str.Load().Write(p); err != nil {
		// (The stream loaded after early: a Read's replay may have
		// replaced the one opened above, and it clears early after it
		// stored the new one.)
		err = ioError(err)
	}
	c.noteWrite(n)
	if err != nil && n > 0 {
		c.cut.Store(true) // the stream ends inside this Write: Close resets it
	}
	switch {
	case err == nil:
		return n, nil
	case c.closed.Load():
		return n, net.ErrClosed // Close reset the send side under the Write
	}
	return n, c.note(err)
}

func (c *Conn) noteWrite(n int) {
	if n > 0 && !c.wrote.Load() {
		c.wrote.Store(true)
	}
}

// writeEarly writes p while 0-RTT data may be rejected: it keeps a copy, and
// replays it on a fresh stream after a rejection.
func (c *Conn) writeEarly(p []byte) (int, error) {
	c.wlock <- struct{}{}
	defer func() { <-c.wlock }()
	total := 0
	for {
		s := c.str.Load()
		n, err := s.Write(p[total:])
		if c.early.Load() {
			c.sent = append(c.sent, p[total:total+n]...)
		}
		total += n
		if err == nil {
			c.settleLocked()
			return total, nil
		}
		if !errors.Is(err, quic.Err0RTTRejected) {
			return total, ioError(err)
		}
		if err := c.replayLocked(s); err != nil {
			return total, ioError(err)
		}
	}
}

// settleLocked clears early once the handshake has completed with the 0-RTT
// data accepted. After a rejection the stream fails with Err0RTTRejected,
// and the replay clears it.
func (c *Conn) settleLocked() {
	if handshakeDone(c.qc) && c.qc.ConnectionState().Used0RTT {
		c.early.Store(false)
		c.sent = nil
	}
}

// trySettle settles (settleLocked) unless a Write or a replay holds the
// lock: a Write settles when it returns.
func (c *Conn) trySettle() {
	select {
	case c.wlock <- struct{}{}:
		c.settleLocked()
		<-c.wlock
	default:
	}
}

// testHookReplay, when set (by tests only), runs as a replay begins, with
// the write lock held.
var testHookReplay func()

// replayFrom, for a Read, replays the early bytes unless another operation
// has already replaced the stream old. While a Write holds the lock (it
// replays them itself), it waits for the new stream within the read
// deadline: a Write that flow control blocks may hold it long.
func (c *Conn) replayFrom(old *quic.Stream) error {
	if !c.replayable {
		return quic.Err0RTTRejected // opened after the handshake: see replayLocked
	}
	if c.str.Load() != old {
		return nil
	}
	if locked, err := c.awaitRead(c.replaced, c.wlock); !locked {
		return err // nil: replaced
	}
	defer func() { <-c.wlock }()
	return c.replayLocked(old)
}

// replayLocked replaces the stream old, whose 0-RTT data the server
// rejected, with a new one on which it writes again the bytes written so far
// (and the FIN, if CloseWrite was called).
func (c *Conn) replayLocked(old *quic.Stream) error {
	if c.str.Load() != old {
		return nil // replaced already
	}
	if testHookReplay != nil {
		testHookReplay()
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	if !c.replayable {
		// Opened after the handshake: no 0-RTT data of its own to resend.
		return quic.Err0RTTRejected
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	// NextConnection waits for the handshake to complete.
	if _, err := c.qc.NextConnection(ctx); err != nil {
		return err
	}
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	// Count as a Write (before s is published) so that a concurrent Close
	// resets s rather than closing it during the Write below.
	c.writing.Add(1)
	defer c.writing.Add(-1)
	// The bytes to write again are those of Writes that returned: the
	// write deadline, which may have passed since, is not theirs, and a
	// new one must not cut them short (replaying). The Dialer's timeout
	// bounds the replay instead; the user's deadline applies after it.
	c.dlmu.Lock()
	s.SetReadDeadline(c.rdl)
	s.SetWriteDeadline(time.Now().Add(c.timeout))
	c.replaying = true
	c.str.Store(s)
	c.dlmu.Unlock()
	defer func() {
		c.dlmu.Lock()
		c.replaying = false
		s.SetWriteDeadline(c.wdl)
		c.dlmu.Unlock()
	}()
	// early stays set until the replay is written: a Write or CloseWrite
	// meanwhile waits for the lock (writeEarly), so that nothing goes
	// before the replayed bytes.
	defer c.early.Store(false)
	close(c.replaced)
	if c.closed.Load() {
		// Close may have closed old and not s.
		s.CancelRead(c.code)
		s.CancelWrite(c.code)
		return net.ErrClosed
	}
	sent := c.sent
	c.sent = nil
	if _, err := s.Write(sent); err != nil {
		return err
	}
	if c.fin {
		return s.Close()
	}
	return nil
}

// Close ends the stream (see Conn for how) and releases the Conn's hold on
// the QUIC connection, which stays up. A second Close returns
// net.ErrClosed.
func (c *Conn) Close() error {
	if c == nil || c.qc == nil {
		return errNilConn
	}
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	c.cancel()
	if s := c.str.Load(); s != nil {
		c.end(s)
	}
	if c.q != nil {
		c.q.release(c.timedOut.Load())
	}
	return nil
}

// end ends s for Close: a FIN after what a healthy stream carried, a reset
// for an abandoned one.
func (c *Conn) end(s *quic.Stream) {
	switch {
	case c.writing.Load() > 0, c.failed.Load(), c.cut.Load(), !c.finished.Load() && (!c.wrote.Load() || c.resetOnClose):
		s.CancelWrite(c.code) // also unblocks a Write
	case !c.finished.Load():
		// An error says that the send side was canceled already (the
		// peer asked us to stop sending): for a net.Conn, that is closed
		// all the same.
		s.Close()
	}
	s.CancelRead(c.code) // nothing is sent once the peer's FIN was read
}

// CloseWrite sends a FIN after the bytes written: the peer reads io.EOF.
// Reading goes on. On a Conn that has not written yet, it opens the stream
// and sends a bare FIN, which the caller asked for.
func (c *Conn) CloseWrite() error {
	if c == nil || c.qc == nil {
		return errNilConn
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	if _, err := c.stream(); err != nil {
		return c.note(ioError(err))
	}
	c.finished.Store(true)
	if c.early.Load() {
		c.wlock <- struct{}{}
		defer func() { <-c.wlock }()
		c.fin = true
	}
	return c.str.Load().Close() // not s: a replay may have replaced it
}

// LocalAddr returns the local address of the QUIC connection.
func (c *Conn) LocalAddr() net.Addr {
	if c == nil || c.qc == nil {
		return nil
	}
	return c.qc.LocalAddr()
}

// RemoteAddr returns the remote address of the QUIC connection.
func (c *Conn) RemoteAddr() net.Addr {
	if c == nil || c.qc == nil {
		return nil
	}
	return c.qc.RemoteAddr()
}

// SetDeadline sets the stream's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the stream's read deadline (which applies too to a
// Read waiting for the first Write).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, true) }

// SetWriteDeadline sets the stream's write deadline (which applies too to
// the first Write's wait for the server to allow a new stream).
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, false) }

// setDeadline sets the read or the write deadline: the Conn's own, which
// wakes what waits on the old one, and the stream's once there is one.
func (c *Conn) setDeadline(t time.Time, read bool) error {
	if c == nil || c.qc == nil {
		return errNilConn
	}
	c.dlmu.Lock()
	defer c.dlmu.Unlock()
	dl, ch := c.deadlineVars(read)
	*dl = t
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
	switch s := c.str.Load(); {
	case s == nil:
		return nil
	case read:
		return s.SetReadDeadline(t)
	case c.replaying:
		return nil // the replay puts it on the stream when it is over
	default:
		return s.SetWriteDeadline(t)
	}
}

// deadline returns the read or the write deadline, and a channel closed
// when it changes.
func (c *Conn) deadline(read bool) (time.Time, <-chan struct{}) {
	c.dlmu.Lock()
	defer c.dlmu.Unlock()
	dl, ch := c.deadlineVars(read)
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *dl, *ch
}

// deadlineVars returns the fields of the read or the write deadline; c.dlmu
// guards them.
func (c *Conn) deadlineVars(read bool) (*time.Time, *chan struct{}) {
	if read {
		return &c.rdl, &c.rdlCh
	}
	return &c.wdl, &c.wdlCh
}

// Origin says how the Conn came to be: on a live connection, or with a new
// connection after a full, resumed or 0-RTT handshake. It is 0 for the zero
// Conn.
func (c *Conn) Origin() Origin {
	switch {
	case c == nil || c.qc == nil:
		return 0
	case !c.fresh:
		return NewStream
	case !handshakeDone(c.qc):
		return ZeroRTT // attempted; the handshake will tell
	}
	cs := c.qc.ConnectionState()
	switch {
	case cs.Used0RTT:
		return ZeroRTT
	case cs.TLS.DidResume:
		return Resumed
	}
	return FullHandshake
}

// Stream returns the QUIC stream, or nil before the first Write opened it.
// It is replaced only when the server rejects 0-RTT data.
func (c *Conn) Stream() *quic.Stream {
	if c == nil {
		return nil
	}
	return c.str.Load()
}

// QUICConn returns the QUIC connection that carries the stream, shared with
// the other streams of the Dialer to the same address (nil for the zero
// Conn).
func (c *Conn) QUICConn() *quic.Conn {
	if c == nil {
		return nil
	}
	return c.qc
}

// ConnectionState returns the state of the QUIC connection (TLS included).
func (c *Conn) ConnectionState() quic.ConnectionState {
	if c == nil || c.qc == nil {
		return quic.ConnectionState{}
	}
	return c.qc.ConnectionState()
}

// ExportKeyingMaterial exports keying material from the QUIC connection's
// TLS session (RFC 8446, section 7.5), as tls.ConnectionState does. It
// fails while the handshake is not complete (after a 0-RTT Dial).
func (c *Conn) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if c == nil || c.qc == nil {
		return nil, errNilConn
	}
	if !handshakeDone(c.qc) {
		return nil, errors.New("tether/quic: handshake not complete")
	}
	cs := c.qc.ConnectionState().TLS
	return cs.ExportKeyingMaterial(label, context, length)
}
