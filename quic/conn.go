package quic

import (
	"context"
	"errors"
	"net"
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
// connection, its deadlines those of the stream; Close ends both directions
// of the stream (the QUIC connection stays up for the Dialer's other
// streams), and CloseWrite sends a FIN. As with any net.Conn, its methods may
// be called concurrently: a Read, a Write and a Close at once.
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
// going on.
type Conn struct {
	qc     *quic.Conn
	fresh  bool // the Dial that made this Conn dialed qc
	str    atomic.Pointer[quic.Stream]
	closed atomic.Bool

	// writing counts Writes in progress, so that Close does not call
	// Stream.Close concurrently with Stream.Write (quic-go forbids it): a
	// Close that finds one resets the send side instead.
	writing atomic.Int32

	// early is set while 0-RTT data written on the stream may still be
	// rejected; it is never set again once cleared.
	early atomic.Bool

	// wmu serialises Writes, CloseWrite and the replay after a 0-RTT
	// rejection; it is taken only while early.
	wmu     sync.Mutex
	sent    []byte // bytes written while early: resent on rejection
	fin     bool   // CloseWrite was called while early
	timeout time.Duration
	ctx     context.Context // done on Close: ends a replay (early Conns only)
	cancel  context.CancelFunc

	dlmu     sync.Mutex // the deadlines, for a replacement stream
	rdl, wdl time.Time
}

func newConn(qc *quic.Conn, s *quic.Stream, fresh bool, timeout time.Duration) *Conn {
	c := &Conn{qc: qc, fresh: fresh, timeout: timeout}
	c.str.Store(s)
	if !handshakeDone(qc) {
		c.early.Store(true)
		c.ctx, c.cancel = context.WithCancel(context.Background())
	}
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

// Read reads from the stream. It returns io.EOF after the peer's FIN, and
// the quic-go error otherwise: a *quic.StreamError when the peer reset the
// stream, the connection's error (*quic.IdleTimeoutError,
// *quic.ApplicationError, ...) when the connection is gone. A handshake that
// fails after a 0-RTT Dial returned (the server no longer trusts the session,
// or speaks no common ALPN protocol) is marked permanent, as a Dial error
// would be.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		s := c.str.Load()
		n, err := s.Read(p)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, quic.Err0RTTRejected) {
			return n, ioError(err)
		}
		// The server never saw this stream: nothing was read from it.
		if err := c.replayFrom(s); err != nil {
			return 0, ioError(err)
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

// Write writes p to the stream.
func (c *Conn) Write(p []byte) (int, error) {
	c.writing.Add(1)
	defer c.writing.Add(-1)
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if c.early.Load() {
		return c.writeEarly(p)
	}
	n, err := c.str.Load().Write(p)
	if err != nil {
		err = ioError(err)
	}
	return n, err
}

// writeEarly writes p while 0-RTT data may be rejected: it keeps a copy, and
// replays it on a fresh stream after a rejection.
func (c *Conn) writeEarly(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
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

// replayFrom replays the early bytes unless another operation has already
// replaced the stream old.
func (c *Conn) replayFrom(old *quic.Stream) error {
	if c.str.Load() != old {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.replayLocked(old)
}

// replayLocked replaces the stream old, whose 0-RTT data the server
// rejected, with a new one on which it writes again the bytes written so far
// (and the FIN, if CloseWrite was called).
func (c *Conn) replayLocked(old *quic.Stream) error {
	if c.str.Load() != old {
		return nil // replaced already
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	if c.ctx == nil {
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
	c.dlmu.Lock()
	s.SetReadDeadline(c.rdl)
	s.SetWriteDeadline(c.wdl)
	c.str.Store(s)
	c.dlmu.Unlock()
	c.early.Store(false)
	if c.closed.Load() {
		// Close may have closed old and not s.
		s.CancelRead(0)
		s.CancelWrite(0)
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

// Close ends both directions of the stream: it sends a FIN after the bytes
// written (or resets the send side, if a Write is in progress) and tells
// the peer to stop sending. The QUIC connection stays up. A second Close
// returns net.ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	if c.cancel != nil {
		c.cancel()
	}
	s := c.str.Load()
	s.CancelRead(0)
	if c.writing.Load() > 0 {
		s.CancelWrite(0) // unblocks the Write
		return nil
	}
	// An error says that the send side was canceled already (the peer
	// asked us to stop sending): for a net.Conn, that is closed all the
	// same.
	s.Close()
	return nil
}

// CloseWrite sends a FIN after the bytes written: the peer reads io.EOF.
// Reading goes on.
func (c *Conn) CloseWrite() error {
	if c.early.Load() {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.fin = true
	}
	return c.str.Load().Close()
}

// LocalAddr returns the local address of the QUIC connection.
func (c *Conn) LocalAddr() net.Addr { return c.qc.LocalAddr() }

// RemoteAddr returns the remote address of the QUIC connection.
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// SetDeadline sets the stream's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the stream's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlmu.Lock()
	defer c.dlmu.Unlock()
	c.rdl = t
	return c.str.Load().SetReadDeadline(t)
}

// SetWriteDeadline sets the stream's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlmu.Lock()
	defer c.dlmu.Unlock()
	c.wdl = t
	return c.str.Load().SetWriteDeadline(t)
}

// Origin says how the stream came to be: on a live connection, or with a new
// connection after a full, resumed or 0-RTT handshake.
func (c *Conn) Origin() Origin {
	switch {
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

// Stream returns the QUIC stream. It is replaced only when the server rejects
// 0-RTT data.
func (c *Conn) Stream() *quic.Stream { return c.str.Load() }

// QUICConn returns the QUIC connection that carries the stream, shared with
// the other streams of the Dialer to the same address.
func (c *Conn) QUICConn() *quic.Conn { return c.qc }

// ConnectionState returns the state of the QUIC connection (TLS included).
func (c *Conn) ConnectionState() quic.ConnectionState { return c.qc.ConnectionState() }

// ExportKeyingMaterial exports keying material from the QUIC connection's
// TLS session (RFC 8446, section 7.5), as tls.ConnectionState does. It
// fails while the handshake is not complete (after a 0-RTT Dial).
func (c *Conn) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if !handshakeDone(c.qc) {
		return nil, errors.New("tether/quic: handshake not complete")
	}
	cs := c.qc.ConnectionState().TLS
	return cs.ExportKeyingMaterial(label, context, length)
}
