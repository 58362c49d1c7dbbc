package tether

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// pendingErr is an error met by a Read that returned bytes, on link c, with
// the deadline counter seq0 noted when that Read began.
type pendingErr struct {
	err  error
	c    *link
	seq0 uint64
}

// Read reads from the current connection. When the connection fails, Read
// waits for the reconnect and reads from the next one; bytes that arrived
// with an error are returned first. After CloseWrite, the peer's clean EOF
// is returned as io.EOF without a reconnect.
//
// After the handler gave up, Read returns io.EOF when the connection ended
// with the peer's clean EOF (or under PropagateNone), and otherwise an error
// that wraps ErrGaveUp and the cause. After Close it returns net.ErrClosed.
func (t *Tether) Read(p []byte) (int, error) {
	n, _, err := t.read(p)
	return n, err
}

// ReadGeneration reads as Read does, and also returns the generation of the
// connection the bytes came from (see Generation; 0 with an error). The bytes
// of one Read always come from one connection, so a framed protocol that
// compares the generations of its reads never splices a frame from two
// connections. Comparing Generation() around a Read is not enough when
// another goroutine (a writer) can reconnect the Tether meanwhile.
func (t *Tether) ReadGeneration(p []byte) (n int, gen uint64, err error) {
	n, c, err := t.read(p)
	if c != nil {
		gen = c.gen
	}
	return n, gen, err
}

// read is Read, returning the link that served the bytes.
func (t *Tether) read(p []byte) (int, *link, error) {
	if !t.valid() {
		return 0, nil, errZero
	}
	if !t.half[dirRead].lock.tryLock() {
		if err := t.lockSlow(dirRead); err != nil {
			return 0, nil, err
		}
	}
	defer t.unlock(dirRead)
	if p := t.half[dirRead].pend; p != nil {
		t.half[dirRead].pend = nil
		if err := t.onError(p.c, p.err, dirRead, p.seq0); err != nil {
			return 0, nil, err
		}
	}
	for {
		c := t.cur.Load()
		if c.conn == nil {
			if err := t.awaitLink(c, dirRead); err != nil {
				return 0, nil, err
			}
			continue
		}
		if t.cfg.boundary && c.gen != t.x.seen[dirRead] {
			return 0, nil, t.boundary(c, dirRead, 0)
		}
		seq0 := t.half[dirRead].seq.Load()
		var start time.Time
		if t.wd != nil {
			start = t.wd.arm(t, c)
		}
		n, err := c.conn.Read(p)
		if n > 0 && !c.read.Load() {
			c.read.Store(true)
		}
		if t.wd != nil {
			err = t.wd.done(t, start, n, err, seq0)
		}
		if err == nil {
			return n, c, nil
		}
		if n > 0 {
			if !t.userTimeout(err, dirRead, seq0) {
				t.half[dirRead].pend = &pendingErr{err, c, seq0}
			}
			return n, c, nil
		}
		if err := t.onError(c, err, dirRead, seq0); err != nil {
			return 0, nil, err
		}
	}
}

// Write writes p to the current connection and returns len(p), nil, or an
// error. What happens to a Write that a lost connection failed depends on
// the write policy (WithWritePolicy): by default (WriteWhole) a Write of
// which the lost connection accepted nothing goes whole to the next
// connection, and a Write cut in the middle returns the count the lost
// connection accepted and an error matching ErrDropped, its rest sent
// nowhere. With WithReconnectBoundary a failed Write returns, once the new
// connection is up, an error matching ErrReconnected (and ErrDropped).
//
// A connection that the peer closed cleanly often accepts one more Write
// (the peer's kernel answers it with a reset): those bytes are lost, and only
// the next Write learns of the loss.
//
// After the handler gave up, Write returns an error wrapping ErrGaveUp (never
// io.EOF). After Close it returns net.ErrClosed.
func (t *Tether) Write(p []byte) (int, error) {
	if !t.valid() {
		return 0, errZero
	}
	if !t.half[dirWrite].lock.tryLock() {
		if err := t.lockSlow(dirWrite); err != nil {
			return 0, err
		}
	}
	defer t.unlock(dirWrite)
	n := 0
	dropped := 0 // bytes of p that a failed connection left: the boundary reports them
	for {
		c := t.cur.Load()
		if c.conn == nil {
			// A Write untouched, or the rest of one that a loss cut
			// (WriteResume): buffered, it goes to the next connection
			// before any later Write, as it would by waiting.
			if dropped == 0 && (t.cfg.buffer > 0 || t.cfg.failFast) {
				if handled, m, err := t.buffer(c, p[n:]); handled {
					return n + m, err
				}
			}
			if err := t.awaitLink(c, dirWrite); err != nil {
				return n, droppedErr(err, dropped, len(p))
			}
			continue
		}
		if t.cfg.boundary && (c.gen != t.x.seen[dirWrite] || dropped > 0) {
			return n, t.boundary(c, dirWrite, dropped)
		}
		seq0 := t.half[dirWrite].seq.Load()
		// Mark the connection written before the Write returns: the peer
		// may answer and end the exchange before this goroutine runs
		// again, and the outage must see that bytes went both ways.
		first := len(p) > n && !c.wrote.Load()
		if first {
			c.wrote.Store(true)
		}
		m, err := c.conn.Write(p[n:])
		if first && m == 0 {
			c.wrote.Store(false)
		}
		n += m
		if err == nil {
			if n < len(p) {
				continue
			}
			return n, nil
		}
		o, e := t.fail(c, err, dirWrite, seq0)
		if e != nil {
			return n, e
		}
		switch {
		case t.cfg.boundary:
			// Wait for the new connection, to report the boundary
			// with its generation; the failed bytes go nowhere.
			dropped = len(p) - n
		case t.cfg.writePolicy == uint8(WriteDrop), t.cfg.writePolicy == uint8(WriteWhole) && n > 0:
			// The reconnect goes on; this Write reports its loss now.
			return n, droppedErr(err, len(p)-n, len(p))
		}
		if o != nil && (dropped > 0 || t.cfg.buffer == 0 && !t.cfg.failFast) {
			if e := t.await(o, dirWrite, err); e != nil {
				// A Write the boundary cut that ends while it waits
				// (deadline, Close, give-up) still reports its loss.
				return n, droppedErr(e, dropped, len(p))
			}
		}
		// Else, with a buffer, what is left of the Write goes to it.
	}
}

// droppedErr returns err for a Write of size bytes whose last dropped bytes
// went nowhere: matching ErrDropped too, when dropped > 0.
func droppedErr(err error, dropped, size int) error {
	if dropped == 0 {
		return err
	}
	return fmt.Errorf("%w (%d of %d bytes): %w", ErrDropped, dropped, size, err)
}

// boundary reports the reconnect boundary to an operation of dir that finds
// the up link c newer than the last one dir used.
func (t *Tether) boundary(c *link, dir direction, dropped int) error {
	old := t.x.seen[dir]
	t.x.seen[dir] = c.gen
	return &ReconnectedError{Old: old, New: c.gen, Dropped: dropped}
}

// onError handles err, met on link c: it returns nil when the operation
// should go on with the current link, or the error the operation returns.
func (t *Tether) onError(c *link, err error, dir direction, seq0 uint64) error {
	o, e := t.fail(c, err, dir, seq0)
	if o != nil {
		return t.await(o, dir, err)
	}
	return e
}

// fail decides about err, met by an operation on link c. It returns the
// error the operation returns, or the outage to wait for, or neither when a
// newer link is already there. seq0 is half[dir].seq when the operation began.
func (t *Tether) fail(c *link, err error, dir direction, seq0 uint64) (*recovery, error) {
	if t.closed.Load() {
		return nil, net.ErrClosed
	}
	if t.userTimeout(err, dir, seq0) {
		if dir == dirWrite {
			c.writeTimedOut.Store(true)
		}
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return nil, t.endErrLocked(dir)
	}
	if t.cur.Load() != c {
		// Stale: an error of a connection already replaced (by
		// Reconnect, say, after CloseWrite on it): go on with the new one.
		return nil, nil
	}
	if t.halfClosed.Load() == c.gen {
		// After CloseWrite the exchange is ending: the request went on
		// this connection, and a new one would never carry it. Its loss,
		// or the peer's clean EOF, is final.
		return nil, err
	}
	if t.rec != nil {
		return t.rec, nil
	}
	return t.startLocked(c, err), nil
}

// CloseWrite shuts down the writing side of the current connection, when it
// supports it (*net.TCPConn, *tls.Conn, a QUIC stream; otherwise it returns an
// error wrapping errors.ErrUnsupported). It never triggers a reconnect, and
// after it the connection's end is final: the peer's clean EOF is returned
// as io.EOF, and a loss of the connection as its error, without a reconnect
// (the request that CloseWrite ended went on this connection; a new one
// would never carry it).
func (t *Tether) CloseWrite() error {
	if !t.valid() {
		return errZero
	}
	if !t.half[dirWrite].lock.tryLock() {
		if err := t.lockSlow(dirWrite); err != nil {
			return err
		}
	}
	defer t.unlock(dirWrite)
	for {
		c := t.cur.Load()
		if c.conn == nil {
			if err := t.awaitLink(c, dirWrite); err != nil {
				return err
			}
			continue
		}
		cw, ok := c.conn.(interface{ CloseWrite() error })
		if !ok {
			return fmt.Errorf("tether: CloseWrite on %T: %w", c.conn, errors.ErrUnsupported)
		}
		// Mark c under mu, where fail decides about losses: either a
		// loss of c already started a reconnect (c is no longer current:
		// wait for the next connection), or every later loss of c is
		// final.
		t.mu.Lock()
		if t.err != nil {
			defer t.mu.Unlock()
			return t.endErrLocked(dirWrite)
		}
		if t.cur.Load() != c {
			t.mu.Unlock()
			continue
		}
		t.halfClosed.Store(c.gen)
		t.mu.Unlock()
		return cw.CloseWrite()
	}
}
