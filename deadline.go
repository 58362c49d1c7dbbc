package tether

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// armWatchdog sets c's read deadline to the sooner of now plus the read idle
// timeout and the user's read deadline.
func (t *Tether) armWatchdog(c net.Conn, now time.Time, u int64) {
	dl := now.Add(t.cfg.readIdle)
	if u != 0 && u < dl.UnixNano() {
		dl = time.Unix(0, u)
	}
	c.SetReadDeadline(dl)
}

// watchdogErr names a deadline error that is not the user's as the
// watchdog's. Other timeouts (a QUIC idle timeout, TCP's ETIMEDOUT) are the
// connection's own and keep their error.
func (t *Tether) watchdogErr(err error, seq0 uint64) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) || t.userTimeout(err, dirRead, seq0) {
		return err
	}
	return fmt.Errorf("%w (%v): %w", ErrIdleTimeout, t.cfg.readIdle, err)
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
		dl, changed := t.rdl, &t.rdlCh
		if dir == dirWrite {
			dl, changed = t.wdl, &t.wdlCh
		}
		if *changed == nil {
			*changed = make(chan struct{})
		}
		ch2, done := *changed, t.doneLocked()
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
// operation ran (seq0 is dlSeq[dir] when it began). A moved deadline may be
// the one that fired, and a false disconnect would cost a reconnect where a
// false timeout costs one error (a dead connection fails the next operation
// again). Any other timeout (a dead peer, a QUIC idle timeout, the watchdog)
// is a disconnect.
func (t *Tether) userTimeout(err error, dir direction, seq0 uint64) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	if seq0&1 == 1 || t.dlSeq[dir].Load() != seq0 {
		return true
	}
	dl := t.dlNano[dir].Load()
	return dl != 0 && time.Now().UnixNano() >= dl
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
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return net.ErrClosed
	}
	dl, changed := &t.rdl, &t.rdlCh
	if dir == dirWrite {
		dl, changed = &t.wdl, &t.wdlCh
	}
	*dl = tm
	if *changed != nil {
		close(*changed)
		*changed = nil
	}
	t.dlSeq[dir].Add(1) // odd: operations that begin now cannot trust the connection's deadline
	defer t.dlSeq[dir].Add(1)
	t.dlNano[dir].Store(unixNano(tm))
	c := t.cur.Load()
	if c.conn == nil {
		return nil
	}
	// An error from a dead connection does not matter: the next one gets
	// the deadline.
	if dir == dirRead {
		if t.cfg.readIdle > 0 {
			t.armWatchdog(c.conn, time.Now(), unixNano(tm)) // a Read may be waiting
		} else {
			c.conn.SetReadDeadline(tm)
		}
	} else {
		c.conn.SetWriteDeadline(tm)
	}
	return nil
}

func unixNano(tm time.Time) int64 {
	if tm.IsZero() {
		return 0
	}
	return tm.UnixNano()
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
