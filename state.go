package tether

import (
	"context"
	"strconv"
	"time"
)

// State is where a Tether stands in its life. A Tether is in exactly one
// state at a time; State and WaitForStateChange read it.
//
// States reflect what the Tether has seen: with nobody reading or writing, a
// dead connection is noticed by the next operation or the read watchdog, and
// until then the Tether stays Ready.
type State int

const (
	// Idle: no connection and no dial in progress. A lazy Tether
	// (WithLazy) starts here, and a Tether whose handler returned Ignore
	// on Unreachable returns here. The next Read, Write or Connect dials
	// (to Connecting).
	Idle State = iota
	// Connecting: dialing, running OnConnect, or waiting for the handler's
	// decision on an event. It ends in Ready (a connection accepted),
	// TransientFailure (a delay to wait), Idle (Ignore on Unreachable) or
	// Shutdown (give-up or Close).
	Connecting
	// Ready: a connection is up and accepted. A failure seen by an
	// operation, a watchdog or Reconnect leads to Connecting; Close to
	// Shutdown.
	Ready
	// TransientFailure: waiting out the delay (Event.Delay) a handler set
	// after a failure. It ends in Connecting when the delay is over or
	// ResetBackoff cuts it short, or in Shutdown on Close.
	TransientFailure
	// Shutdown: closed, or the handler gave up. It is final.
	Shutdown
)

// String returns the lowercase name of s ("idle", "connecting", "ready",
// "transient-failure", "shutdown").
func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Connecting:
		return "connecting"
	case Ready:
		return "ready"
	case TransientFailure:
		return "transient-failure"
	case Shutdown:
		return "shutdown"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// setStateLocked makes every change of a Tether's state; t.mu is held. It
// wakes every WaitForStateChange by closing stateCh. Shutdown is final.
//
// The transitions (from, what happens, to):
//
//	(Dial)            Dial begins                                   Connecting
//	(Dial)            Dial with WithLazy returns                    Idle
//	(New)             New begins                                    Connecting
//	Connecting        New installs its connection                   Ready
//	Idle              a Read, a Write or Connect dials              Connecting
//	Connecting        a connection accepted (Connected/Reconnected) Ready
//	Connecting        Ignore on Disconnected: the connection kept   Ready
//	Connecting        Reconnect with a Delay to wait                TransientFailure
//	Connecting        Ignore on Unreachable                         Idle
//	TransientFailure  the delay is over, or ResetBackoff            Connecting
//	Ready             a loss met by an operation or the watchdog,   Connecting
//	                  or Reconnect
//	any               Close, or the handler gives up                Shutdown
//	Connecting,       Dial fails: its ctx ends (also in a delay),   Shutdown
//	TransientFailure  WithNoInitialRetry, Ignore on Unreachable
func (t *Tether) setStateLocked(to State) {
	from := State(t.state.Load())
	if from == to || from == Shutdown {
		return
	}
	t.state.Store(int32(to))
	if f := t.cfg.observe; f != nil {
		now := time.Now()
		f(from, to, now.Sub(t.x.stateSince))
		t.x.stateSince = now
	}
	if t.x != nil && t.x.stateCh != nil {
		close(t.x.stateCh)
		t.x.stateCh = nil
	}
}

// State returns the Tether's state: Idle, Connecting, Ready,
// TransientFailure or Shutdown (see State). A nil or zero Tether is
// Shutdown.
func (t *Tether) State() State {
	if !t.valid() {
		return Shutdown
	}
	return State(t.state.Load())
}

// WaitForStateChange waits until the Tether's state is not from, as
// grpc-go's ClientConn.WaitForStateChange: it returns true at once if the
// state is not from, true when it changes, and false when ctx ends first
// (a nil ctx never ends). Any number of goroutines may wait; none costs a
// goroutine of its own.
func (t *Tether) WaitForStateChange(ctx context.Context, from State) bool {
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		if !t.valid() {
			if from != Shutdown {
				return true
			}
			<-ctx.Done()
			return false
		}
		t.mu.Lock()
		if State(t.state.Load()) != from {
			t.mu.Unlock()
			return true
		}
		x := t.extraLocked()
		if x.stateCh == nil {
			x.stateCh = make(chan struct{})
		}
		ch := x.stateCh
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Connect makes an Idle Tether dial now (a lazy one, or one whose handler
// ignored a failed dial), without waiting for a Read or a Write. It returns
// at once; in any other state it does nothing.
func (t *Tether) Connect() {
	if !t.valid() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil && t.rec == nil && t.cur.Load().conn == nil {
		t.startLocked(nil, nil)
	}
}

// ResetBackoff cuts short the delay that a TransientFailure Tether is
// waiting (Event.Delay) and dials now: for a network that just came back.
// Unlike grpc-go's ResetConnectBackoff, it leaves the count of failed
// dials as it is: if that dial fails too, the handler sees the next
// Attempt, and its backoff goes on from there. It returns at once; in any
// other state it does nothing.
func (t *Tether) ResetBackoff() {
	if !t.valid() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.rec; o != nil && State(t.state.Load()) == TransientFailure {
		select {
		case o.reset <- struct{}{}:
		default:
		}
	}
}

// Reconnect drops the current connection and reconnects as after a loss,
// for a network change or a server that asked its clients to move: the
// handler sees Disconnected with an Err matching ErrForcedReconnect, and
// decides as usual. A forced reconnect is the user's choice, not a failure:
// it never counts as a failed attempt. It raises the reconnect boundary
// (WithReconnectBoundary). Reconnect returns at once; it does nothing unless
// the Tether is Ready.
func (t *Tether) Reconnect() {
	if !t.valid() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.cur.Load(); t.err == nil && t.rec == nil && c.conn != nil {
		t.startLocked(c, ErrForcedReconnect)
	}
}
