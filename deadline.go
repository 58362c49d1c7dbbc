package tether

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// watchdog is the read watchdog (WithReadIdleTimeout). It measures the
// silence of a connection: the time spent waiting in Read without a byte
// arriving, added up over consecutive Read calls since the last byte that
// connection delivered. Time when no Read is pending does not count (unread
// bytes may be sitting in the socket), and the user's read deadlines, however
// short, never restart it: an application that polls with short deadlines
// still has a dead peer detected.
type watchdog struct {
	d time.Duration
	// Guarded by the read lock:
	gen   uint64        // the link whose silence spent measures
	spent time.Duration // silence waited in Read on it since its last byte
	// at is the watchdog's own deadline for the pending Read, so that
	// setDeadline can keep it; guarded by Tether.mu.
	at time.Time
}

// arm sets the read deadline of c, the link a Read is about to use, to the
// sooner of the end of the silence allowed and the user's read deadline; it
// returns when the Read begins.
func (w *watchdog) arm(t *Tether, c *link) time.Time {
	if w.gen != c.gen {
		w.gen, w.spent = c.gen, 0
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	// Under mu, so that a deadline the user sets concurrently is never
	// overwritten by an older one.
	w.at = now.Add(w.d - w.spent)
	c.conn.SetReadDeadline(sooner(w.at, t.half[dirRead].dl))
	return now
}

// done accounts for a Read that began at start and returned n, err; it
// names a deadline error that is not the user's as the watchdog's. Other
// timeouts (a QUIC idle timeout, TCP's ETIMEDOUT) are the connection's own
// and keep their error.
func (w *watchdog) done(t *Tether, start time.Time, n int, err error, seq0 uint64) error {
	if n > 0 {
		w.spent = 0
	} else {
		w.spent += time.Since(start)
	}
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if t.userTimeout(err, dirRead, seq0) && !w.expiredAlone(t) {
		return err
	}
	w.spent = 0 // the firing uses up the silence: a connection kept (Ignore) starts again
	return fmt.Errorf("%w (%v): %w", ErrIdleTimeout, w.d, err)
}

// expiredAlone reports whether the watchdog's own deadline has passed while
// the user's read deadline has not: the timeout is the watchdog's, even if
// the user moved the deadline during the Read (a heartbeat that keeps
// pushing it forward).
func (w *watchdog) expiredAlone(t *Tether) bool {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	dl := t.half[dirRead].dl
	return !w.at.IsZero() && !now.Before(w.at) && (dl.IsZero() || now.Before(dl))
}

// sooner returns the sooner of two deadlines, where the zero time is none.
func sooner(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// block waits until ch is closed, the Tether ends, or the deadline of dir
// passes.
func (t *Tether) block(dir direction, ch <-chan struct{}) error {
	for {
		t.mu.Lock()
		if t.err != nil {
			defer t.mu.Unlock()
			return t.endErrLocked(dir)
		}
		dl := t.half[dir].dl
		if t.half[dir].dlCh == nil {
			t.half[dir].dlCh = make(chan struct{})
		}
		ch2, done := t.half[dir].dlCh, t.endedLocked()
		t.mu.Unlock()

		var (
			timer   *time.Timer
			timeout <-chan time.Time
		)
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case <-ch:
			stopTimer(timer)
			return nil
		case <-done:
			// loop: the check above returns the reason
		case <-timeout:
			return os.ErrDeadlineExceeded
		case <-ch2:
		}
		stopTimer(timer)
	}
}

// userTimeout reports whether err is a timeout because of the user's
// deadline for dir: the deadline has passed, or the user moved it while the
// operation ran (seq0 is half[dir].seq when it began; the counter and the
// deadline are read together under mu, where setDeadline changes both, so
// that a deadline moved between the two reads is never missed). A moved
// deadline may be the one that fired, and a false disconnect would cost a
// reconnect where a false timeout costs one error (a dead connection fails
// the next operation again). Any other timeout (a dead peer, a QUIC idle
// timeout, the watchdog) is a disconnect.
func (t *Tether) userTimeout(err error, dir direction, seq0 uint64) bool {
	t.mu.Lock()
	moved := t.half[dir].seq.Load() != seq0
	dl := t.half[dir].dl
	t.mu.Unlock()
	if seq0&1 == 0 && !moved && dl.IsZero() {
		// No deadline of the user's: the common loss (an EOF, a reset)
		// is told at once, without errors.As's reflection (microseconds
		// of a reconnect's cost on a cold cache).
		return false
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, ErrIdleTimeout) {
		return false // the watchdog's firing is a disconnect (watchdog.done decided)
	}
	return seq0&1 == 1 || moved || (!dl.IsZero() && !time.Now().Before(dl))
}

// SetDeadline sets the read and write deadlines, as net.Conn does. Deadlines
// apply across reconnects: an operation waiting for a reconnect returns
// os.ErrDeadlineExceeded when its deadline passes (the reconnect goes on), and
// each new connection gets the deadlines.
func (t *Tether) SetDeadline(tm time.Time) error {
	if err := t.SetReadDeadline(tm); err != nil {
		return err
	}
	return t.SetWriteDeadline(tm)
}

// SetReadDeadline sets the deadline for Read calls, pending ones included;
// see SetDeadline.
func (t *Tether) SetReadDeadline(tm time.Time) error {
	return t.setDeadline(tm, dirRead)
}

// SetWriteDeadline sets the deadline for Write calls, pending ones included;
// see SetDeadline.
func (t *Tether) SetWriteDeadline(tm time.Time) error {
	return t.setDeadline(tm, dirWrite)
}

func (t *Tether) setDeadline(tm time.Time, dir direction) error {
	if !t.valid() {
		return errZero
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return net.ErrClosed
	}
	// The time.Time itself is kept, so that every deadline keeps its
	// meaning: time.Unix(0, 0) is long past, not "none", and a deadline past
	// the year 2262 does not overflow.
	t.half[dir].dl = tm
	if ch := t.half[dir].dlCh; ch != nil {
		close(ch)
		t.half[dir].dlCh = nil
	}
	t.half[dir].seq.Add(1) // odd: operations that begin now cannot trust the connection's deadline
	defer t.half[dir].seq.Add(1)
	conn := t.cur.Load().conn
	if conn == nil && t.rec != nil {
		// The lost connection, until the handler has decided: an
		// operation may still be blocked on it.
		conn = t.rec.lost
		if conn == nil && dir == dirRead && t.rec.kept {
			// A connection the handler kept (Ignore) while the write
			// buffer is flushed to it: a Read may be blocked on it. (Not
			// the write deadline: the flush runs without one.)
			conn = t.rec.pending
		}
	}
	if conn == nil {
		return nil
	}
	// An error from a dead connection does not matter: the next one gets
	// the deadline.
	if dir == dirWrite {
		conn.SetWriteDeadline(tm)
	} else if t.wd != nil {
		conn.SetReadDeadline(sooner(t.wd.at, tm)) // a Read may be waiting
	} else {
		conn.SetReadDeadline(tm)
	}
	return nil
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
