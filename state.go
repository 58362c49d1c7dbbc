package tether

import "strconv"

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
