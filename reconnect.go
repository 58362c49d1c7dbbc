package tether

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// recovery is one reconnect sequence, from a loss (or a dial from Idle) to
// its outcome. Its results are written before done is
// closed.
type recovery struct {
	done    chan struct{}
	ctx     context.Context // the handler's and the dials' ctx: Close cancels it
	cancel  context.CancelFunc
	down    *link         // the down link that stands for the lost one, if any
	lost    net.Conn      // the lost connection until it is closed or put back, for Close to find
	pending net.Conn      // a new connection not yet installed, for Close to find
	reset   chan struct{} // ResetBackoff's token: cut the delay short; made by the first wait, under mu
	ignored bool          // Ignore on Disconnected: each operation gets its own error
	kept    bool          // pending is the lost connection, kept (Ignore), while the buffer is flushed to it; guarded by mu
	err     error         // the error for waiting operations (Ignore on Unreachable)
}

// awaitLink waits for a connection when the current link c is down.
func (t *Tether) awaitLink(c *link, dir direction) error {
	t.mu.Lock()
	if t.err != nil {
		defer t.mu.Unlock()
		return t.endErrLocked(dir)
	}
	if t.cur.Load() != c {
		t.mu.Unlock()
		return nil
	}
	o := t.rec
	if o == nil {
		// The last outage ended without a connection (Ignore on
		// Unreachable): this operation dials again.
		o = t.startLocked(nil, nil)
	}
	t.mu.Unlock()
	return t.await(o, dir, nil)
}

// await waits for the outcome of o; own is the error the operation met.
func (t *Tether) await(o *recovery, dir direction, own error) error {
	if err := t.block(dir, o.done); err != nil {
		return err
	}
	switch {
	case o.ignored && own != nil:
		return own
	case o.ignored:
		return nil // it waited on a connection put back: go on with it
	case o.err != nil:
		return o.err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.endErrLocked(dir)
	}
	return nil
}

// endLocked marks the recovery o as over, in the same locked section as its
// final change of state, so that an operation or a control method that sees
// that state (Ready, Idle) finds no recovery in progress and can start the
// next one. o.done is closed later, once o's results are written.
func (t *Tether) endLocked(o *recovery) {
	if t.rec == o {
		t.rec = nil
		if t.err != nil {
			t.closeDoneLocked() // its handler has returned
		}
	}
}

// startLocked starts the reconnect for the loss of lost (nil: a dial after an
// ignored Unreachable). It takes the link down at once, so that no operation
// uses the failed connection while the handler decides (a half-closed TCP
// connection would swallow a Write's bytes).
func (t *Tether) startLocked(lost *link, cause error) *recovery {
	o := &recovery{done: make(chan struct{})}
	// Each outage has a ctx of its own, dropped when it ends, so that a
	// healthy Tether keeps none (nor what dials leave in one).
	o.ctx, o.cancel = context.WithCancel(context.Background())
	if lost != nil {
		o.down = lost.down()
		o.lost = lost.conn
		t.cur.Store(o.down)
	}
	t.rec = o
	t.setStateLocked(Connecting)
	go t.run(o, lost, cause)
	return o
}

// run is the goroutine of one outage: the Disconnected event, then dials until
// a connection is accepted, the handler gives up or ignores, or the Tether is
// closed.
func (t *Tether) run(o *recovery, lost *link, cause error) {
	growStack()
	defer func() {
		t.mu.Lock()
		t.endLocked(o) // if no final state change did it (a give-up, Close)
		t.mu.Unlock()
		o.cancel()
		close(o.done)
	}()
	ctx := o.ctx
	var ev Event
	counted := false // the loss counts as a failed dial (until Ignore keeps the connection)
	now := time.Now()
	t.mu.Lock()
	if lost != nil {
		uptime := now.Sub(lost.up)
		switch {
		case errors.Is(cause, ErrIdleTimeout) && !lost.read.Load():
			// The watchdog ended a connection that never delivered a
			// byte: its peer took the dial (a frozen server's kernel
			// does) but never spoke. However long it was up, it is a
			// failed attempt, so that the backoff grows.
			t.failures++
			t.total++
			counted = true
		case uptime >= t.cfg.stability, cause == io.EOF && lost.read.Load() && lost.wrote.Load():
			// A stable connection, or one that ended cleanly after
			// bytes went both ways: the end of an exchange (a server
			// that answers one request per connection or stream), not
			// a flap, however soon it came.
			t.failures = 0
		case cause != ErrForcedReconnect: // Reconnect is the user's choice, not a failure
			t.failures++
			t.total++
			counted = true
		}
		t.since = now
		ev = Event{Kind: Disconnected, Err: cause, Addr: t.addr, Attempt: t.failures, Dialed: lost.addr,
			Total: t.total, Uptime: uptime, Since: now, Generation: lost.gen, State: Connecting}
	} else {
		ev.Addr, ev.State = t.addr, Connecting
	}
	first := t.cur.Load().gen == 0 // a lazy Tether's first dial
	if lost == nil && first {
		t.since = now // the lazy dial's outage begins now, as Dial's does
	}
	since := t.since
	t.mu.Unlock()

	if lost != nil {
		switch t.handle(ctx, &ev) {
		case Ignore:
			// Put the connection back: operations that waited meanwhile
			// go on with it, after the Writes buffered meanwhile. (If the
			// Tether ended meanwhile, Close or the give-up closed it.)
			t.mu.Lock()
			if counted {
				// The connection did not fail after all: the next
				// event's Attempt counts failed dials only.
				t.failures--
				t.total--
			}
			keep := t.err == nil && t.cur.Load() == o.down
			if keep {
				o.lost, o.pending, o.kept = nil, lost.conn, true // Close finds it while the buffer is written
			}
			t.mu.Unlock()
			if !keep || t.install(lost) == nil {
				o.ignored, o.err = true, cause
				return
			}
			// The kept connection failed the buffer: it is lost after
			// all, and the handler's Ignore applied to the first error.
			t.mu.Lock()
			o.lost, o.pending, o.kept = lost.conn, nil, false
			if counted {
				t.failures++
				t.total++
			}
			t.mu.Unlock()
		case GiveUp:
			t.end(orErr(ev.Err, cause), cause) // closes the lost connection
			return
		}
		// Close the lost connection so that operations blocked on it wake
		// (and wait for the new one). One that Reconnect gave up is
		// healthy, unless a Write on it timed out: it closes as the
		// user's would.
		t.mu.Lock()
		c := o.lost
		o.lost = nil
		t.mu.Unlock()
		switch {
		case c == nil:
		case cause == ErrForcedReconnect && !lost.writeTimedOut.Load():
			closeConn(c)
		default:
			closeLost(c)
		}
	}
	switch out, err := t.connect(ctx, &ev, since, first); out {
	case gaveUp:
		t.end(err, orErr(cause, err))
	case ignored:
		o.err = err
		t.mu.Lock()
		t.setStateLocked(Idle) // down: the next operation, or Connect, dials
		t.endLocked(o)
		t.mu.Unlock()
	}
}

func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// install makes l the current link, with the user's deadlines, unless the
// Tether ended meanwhile; the write buffer goes to it first. It returns the
// error of writing the buffer, for which l is not installed.
func (t *Tether) install(l *link) error {
	for {
		t.mu.Lock()
		if t.err != nil {
			if t.rec != nil {
				t.rec.pending = nil
			}
			t.mu.Unlock()
			l.conn.Close()
			return nil
		}
		b := t.bufLocked()
		if b.empty() {
			// Installed under the same lock that saw the buffer empty:
			// no Write can slip into the buffer after it was flushed.
			if b != nil {
				b.flushing = false
			}
			if t.rec != nil {
				t.rec.pending = nil
			}
			dl := t.half[dirRead].dl
			if t.wd != nil {
				dl = sooner(t.wd.at, dl) // a Read may be waiting on a kept connection
			}
			l.conn.SetReadDeadline(dl)
			l.conn.SetWriteDeadline(t.half[dirWrite].dl)
			t.cur.Store(l)
			t.setStateLocked(Ready)
			if t.rec != nil {
				t.endLocked(t.rec)
			}
			t.mu.Unlock()
			return nil
		}
		seg := b.first()
		b.flushing = true
		t.mu.Unlock()
		// The flush writes bytes of Writes that have returned: no deadline
		// of the user's applies to it (a kept connection has the last one,
		// which may have passed during the outage).
		l.conn.SetWriteDeadline(time.Time{})
		// Marked written first, as by Write: the peer may answer and end
		// the exchange before the flush returns.
		first := !l.wrote.Load()
		if first {
			l.wrote.Store(true)
		}
		n, err := l.conn.Write(seg)
		if first && n == 0 {
			l.wrote.Store(false)
		}
		t.mu.Lock()
		b.wrote(n, err, t.cfg.writePolicy)
		if err != nil {
			b.flushing = false // the next connection takes the rest, and Writes meanwhile
		}
		t.mu.Unlock()
		if err != nil {
			return fmt.Errorf("tether: writing the write buffer: %w", err)
		}
	}
}

// end gives up for good: cause is what Err reports, ioErr the I/O error that
// began the outage (for PropagateIO). The outage's goroutine calls it once
// the handler has returned, for the last time: Done closes with the rest.
func (t *Tether) end(cause, ioErr error) {
	t.mu.Lock()
	if t.err != nil {
		t.mu.Unlock()
		return
	}
	t.err = cause
	if n := t.bufLocked().size(); n > 0 {
		t.err = fmt.Errorf("%w (%d buffered bytes never sent)", cause, n)
	}
	var e error
	switch Propagation(t.cfg.propagation) {
	case PropagateCause:
		e = cause
	case PropagateIO:
		e = orErr(ioErr, cause)
	}
	switch {
	case e == nil:
		t.rerr, t.werr = io.EOF, ErrGaveUp
	case e == io.EOF:
		t.rerr, t.werr = io.EOF, fmt.Errorf("%w: %w", ErrGaveUp, ErrPeerClosed)
	case errors.Is(e, io.EOF):
		// The peer closed cleanly and a middleware gave up with an
		// error of its own around the EOF: Read still says io.EOF, so
		// that io.ReadAll and io.Copy end normally.
		t.rerr, t.werr = io.EOF, fmt.Errorf("%w: %w: %w", ErrGaveUp, ErrPeerClosed, notEOF{e})
	default:
		t.rerr = fmt.Errorf("%w: %w", ErrGaveUp, e)
		t.werr = t.rerr
	}
	var conns [3]net.Conn
	broken := false
	if c := t.cur.Load(); c != nil { // nil inside Dial
		broken = c.writeTimedOut.Load()
		conns = t.takeDownLocked()
	}
	if t.rec != nil {
		t.endLocked(t.rec) // no handler runs
	}
	t.stopLocked()
	t.setStateLocked(Shutdown)
	t.mu.Unlock()
	closeAll(conns, broken)
}

// notEOF is an error that wraps an io.EOF as a Write's error after a
// give-up: its text and its causes, io.EOF excepted, so that a Write's
// error never matches io.EOF (code that takes errors.Is(err, io.EOF) for a
// normal end would take the failed Write for one).
type notEOF struct{ err error }

func (e notEOF) Error() string { return e.err.Error() }

// Is reports whether the error matches target, io.EOF excepted.
func (e notEOF) Is(target error) bool { return target != io.EOF && errors.Is(e.err, target) }

// As finds the first error in the chain that matches target.
func (e notEOF) As(target any) bool { return errors.As(e.err, target) }

func stopErr(ctx context.Context, last error) error {
	err := context.Cause(ctx)
	if err == nil {
		err = net.ErrClosed
	}
	if last != nil {
		return fmt.Errorf("tether: %w (last dial error: %w)", err, last)
	}
	return err
}

// growStack grows the goroutine's stack at once to what a dial needs. A
// reconnect's goroutine is new for each outage, and net.Dialer's call
// chain is deep: growing the stack a step at a time, by copying it, cost a
// TCP reconnect 3 to 20 µs (median, interleaved runs on the 2-core
// machine), where the raw re-dial it is measured against runs on a
// goroutine whose stack grew long ago.
//
// The frame is 12 KiB so that the stack becomes 16 KiB, the largest size
// the runtime keeps in its per-P stack caches (a TCP dial fits in it): a
// 16 KiB frame made it 32 KiB, allocated from the heap and freed for every
// outage, which cost more than the copies it saved (growStack was 15 % of
// the CPU of an in-memory reconnect; median TCP reconnect +29 µs over a raw
// re-dial against +24 µs, four interleaved runs of each).
//
//go:noinline
func growStack() byte {
	var buf [12 << 10]byte
	return touch(buf[:])
}

//go:noinline
func touch(b []byte) byte { return b[len(b)-1] }
