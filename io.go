package tether

import (
	"errors"
	"fmt"
	"io"
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
	if !t.rsem.tryLock() {
		if err := t.lockSlow(&t.rsem, dirRead); err != nil {
			return 0, nil, err
		}
	}
	defer t.rsem.unlock()
	if p := t.rpend; p != nil {
		t.rpend = nil
		if err := t.recover(p.c, p.err, dirRead, p.seq0); err != nil {
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
		seq0 := t.dlSeq[dirRead].Load()
		if t.cfg.readIdle > 0 {
			t.armWatchdog(c.conn, time.Now(), t.dlNano[dirRead].Load())
		}
		n, err := c.conn.Read(p)
		if err == nil {
			return n, c, nil
		}
		if t.cfg.readIdle > 0 {
			err = t.watchdogErr(err, seq0)
		}
		if n > 0 {
			if !t.userTimeout(err, dirRead, seq0) {
				t.rpend = &pendingErr{err, c, seq0}
			}
			return n, c, nil
		}
		if err := t.recover(c, err, dirRead, seq0); err != nil {
			return 0, nil, err
		}
	}
}

// Write writes p to the current connection and returns len(p), nil, or an
// error. When the connection fails, the bytes it did not accept go to the
// next connection, before any later Write's bytes; under WithDropUnwritten
// they are dropped and Write returns at once with an error wrapping
// ErrDropped.
//
// A connection that the peer closed cleanly often accepts one more Write
// (the peer's kernel answers it with a reset): those bytes are lost, and only
// the next Write learns of the loss.
//
// After the handler gave up, Write returns an error wrapping ErrGaveUp (never
// io.EOF). After Close it returns net.ErrClosed.
func (t *Tether) Write(p []byte) (int, error) {
	if !t.wsem.tryLock() {
		if err := t.lockSlow(&t.wsem, dirWrite); err != nil {
			return 0, err
		}
	}
	defer t.wsem.unlock()
	n := 0
	for {
		c := t.cur.Load()
		if c.conn == nil {
			if err := t.awaitLink(c, dirWrite); err != nil {
				return n, err
			}
			continue
		}
		seq0 := t.dlSeq[dirWrite].Load()
		m, err := c.conn.Write(p[n:])
		n += m
		if err == nil {
			if n < len(p) {
				continue
			}
			return n, nil
		}
		o, started, e := t.fail(c, err, dirWrite, seq0)
		if e == nil && t.cfg.dropUnwritten && (started || n > 0) {
			// This Write met the loss, or left part of its bytes on the
			// dead connection: it drops the rest. A Write that merely
			// found the loss already being handled waits, as later
			// Writes do.
			return n, fmt.Errorf("%w (%d of %d bytes): %w", ErrDropped, len(p)-n, len(p), err)
		}
		if o != nil {
			e = t.await(o, dirWrite, err)
		}
		if e != nil {
			return n, e
		}
	}
}

// recover handles err, met on link c: it returns nil when the operation
// should go on with the current link, or the error the operation returns.
func (t *Tether) recover(c *link, err error, dir direction, seq0 uint64) error {
	o, _, e := t.fail(c, err, dir, seq0)
	if o != nil {
		return t.await(o, dir, err)
	}
	return e
}

// fail decides about err, met by an operation on link c. It returns the
// error the operation returns, or the outage to wait for (started reports
// whether this call started it), or neither when a newer link is already
// there. seq0 is dlSeq[dir] when the operation began.
func (t *Tether) fail(c *link, err error, dir direction, seq0 uint64) (o *outage, started bool, _ error) {
	if t.closed.Load() {
		return nil, false, net.ErrClosed
	}
	if t.userTimeout(err, dir, seq0) {
		return nil, false, err
	}
	if t.halfClosed.Load() {
		// After CloseWrite the exchange is ending: the peer's EOF is
		// final, and a Write fails on the half-closed connection.
		if dir == dirWrite || err == io.EOF {
			return nil, false, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return nil, false, t.endErrLocked(dir)
	}
	if t.cur.Load() != c {
		return nil, false, nil // stale: an error of a connection already replaced
	}
	if t.outage != nil {
		return t.outage, false, nil
	}
	return t.startLocked(c, err), true, nil
}

// CloseWrite shuts down the writing side of the current connection, when it
// supports it (*net.TCPConn, *tls.Conn, a QUIC stream; otherwise it returns an
// error wrapping errors.ErrUnsupported). It never triggers a reconnect, and
// after it the peer's clean EOF is final: Read returns io.EOF. CloseWrite
// applies to the current connection only; a connection that later fails with
// another error is still replaced.
func (t *Tether) CloseWrite() error {
	if !t.wsem.tryLock() {
		if err := t.lockSlow(&t.wsem, dirWrite); err != nil {
			return err
		}
	}
	defer t.wsem.unlock()
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
		t.halfClosed.Store(true)
		return cw.CloseWrite()
	}
}
