package tether

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/io-tether/tether/internal/tetheropts"
)

// The dial loop of an outage: dials, each with its OnConnect, and the
// handler's decision about each outcome.

// outcome is how connect ended.
type outcome int

const (
	connected outcome = iota // a connection was accepted
	gaveUp                   // err is the cause
	ignored                  // err is the dial error
	stopped                  // ctx is done
)

// connect dials until a connection is accepted and installed, the handler
// gives up or ignores a failed dial, or ctx is done; it returns the outcome
// and its error (the cause of a give-up, the dial error of an Ignore). ev is
// the event that led here: its Addr and Delay apply to the first dial. first
// says that a connection would be the Tether's first (Connected).
func (t *Tether) connect(ctx context.Context, ev *Event, since time.Time, first bool) (outcome, error) {
	var last error
	for {
		if ev.Delay > 0 && !t.wait(ctx, ev.Delay) {
			return stopped, stopErr(ctx, last)
		}
		if ctx.Err() != nil {
			return stopped, stopErr(ctx, last)
		}
		addr := ev.Addr
		start := time.Now()
		conn, err := t.dialOnce(ctx, addr)
		dialTime := time.Since(start)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return stopped, stopErr(ctx, orErr(err, last))
		}
		if err == nil {
			kind := Reconnected
			if first {
				kind = Connected
			}
			t.mu.Lock()
			gen := t.cur.Load().genOrZero() + 1 // the handler may change the Event, not this
			*ev = Event{Kind: kind, Addr: addr, Dialed: addr, Attempt: t.failures, Total: t.total,
				Since: since, Generation: gen, DialTime: dialTime, Conn: conn, State: Connecting}
			t.mu.Unlock()
			if t.handle(ctx, ev) == GiveUp {
				t.setPending(nil)
				conn.Close()
				return gaveUp, orErr(ev.Err, ErrRejected)
			}
			if ctx.Err() != nil {
				t.setPending(nil)
				conn.Close()
				return stopped, stopErr(ctx, nil)
			}
			if err = t.install(newLink(conn, gen, addr)); err == nil {
				return connected, nil
			}
			// The write buffer could not be written to the new
			// connection: it failed before any use, as a dial.
			t.setPending(nil)
			conn.Close()
			if ctx.Err() != nil {
				return stopped, stopErr(ctx, err)
			}
		}
		last = err
		if first && t.cfg.noInitialRetry {
			return gaveUp, err
		}
		t.mu.Lock()
		t.failures++
		t.total++
		*ev = Event{Kind: Unreachable, Err: err, Addr: addr, Dialed: addr, Attempt: t.failures,
			Total: t.total, Since: since, Generation: t.cur.Load().genOrZero(), DialTime: dialTime, State: Connecting}
		t.mu.Unlock()
		switch t.handle(ctx, ev) {
		case GiveUp:
			return gaveUp, orErr(ev.Err, err)
		case Ignore:
			return ignored, err
		}
	}
}

// wait waits out a handler's delay in TransientFailure, until it is over,
// ResetBackoff cuts it short, or ctx is done (false).
func (t *Tether) wait(ctx context.Context, d time.Duration) bool {
	var reset chan struct{}
	t.mu.Lock()
	if o := t.rec; o != nil { // nil inside Dial
		if o.reset == nil {
			o.reset = make(chan struct{}, 1) // before the state that lets ResetBackoff send
		}
		reset = o.reset
	}
	t.setStateLocked(TransientFailure)
	t.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-reset:
	case <-ctx.Done():
		return false
	}
	t.mu.Lock()
	t.setStateLocked(Connecting)
	select {
	case <-reset: // a token that came as the delay ended is spent
	default:
	}
	t.mu.Unlock()
	return true
}

// dialOnce dials addr and runs the OnConnect hook on the new connection.
func (t *Tether) dialOnce(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := t.d.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errNilDialed
	}
	// From here until it is installed or closed, Close finds the new
	// connection (during OnConnect and the Connected or Reconnected event).
	if !t.setPending(conn) {
		conn.Close()
		return nil, net.ErrClosed
	}
	if t.cfg.onConnect == nil {
		return conn, nil
	}
	octx, cancel := context.WithTimeout(ctx, t.cfg.onConnectTimeout)
	dl, _ := octx.Deadline()
	conn.SetDeadline(dl)
	err = t.cfg.onConnect(octx, conn)
	cancel()
	// OnConnect's deadline ends with it: the write buffer's flush and the
	// Connected or Reconnected decision take their time, and install
	// gives the connection the Tether's deadlines.
	conn.SetDeadline(time.Time{})
	if err != nil {
		t.setPending(nil)
		conn.Close()
		if _, own := err.(tetheropts.OwnHookError); own {
			return nil, err
		}
		return nil, fmt.Errorf("tether: OnConnect: %w", err)
	}
	return conn, nil
}

// setPending records c as the outage's new connection, for Close to find
// (nil: none). It reports false when the Tether is closed, where c must not
// be used. Inside Dial there is no outage, and Close cannot happen.
func (t *Tether) setPending(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	if t.rec != nil {
		t.rec.pending = c
	}
	return true
}

// handle asks the handler about ev and records the address it chose.
func (t *Tether) handle(ctx context.Context, ev *Event) Action {
	a := t.h.HandleDisconnect(ctx, ev)
	switch a {
	case Reconnect, GiveUp, Ignore:
	default:
		ev.Err = fmt.Errorf("tether: handler returned an unknown Action %d", int(a))
		a = GiveUp
	}
	if ev.Delay < 0 {
		ev.Delay = 0
	}
	if ev.Addr == "" && a != GiveUp {
		ev.Err, a = errEmptyNext, GiveUp
	}
	if ev.Addr != "" {
		t.mu.Lock()
		t.addr = ev.Addr
		t.mu.Unlock()
	}
	return a
}
