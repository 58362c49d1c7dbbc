package tether

import (
	"log/slog"
	"net"
	"strconv"
	"time"
)

// EventKind says what happened to a Tether's connection.
type EventKind int

const (
	// Connected reports that Dial's first connection is up.
	Connected EventKind = iota + 1
	// Disconnected reports that an established connection failed in Read or
	// Write. Event.Err is the cause: io.EOF when the peer closed cleanly.
	Disconnected
	// Unreachable reports that a dial failed, the first one or a reconnect.
	// Event.Err is the dial (or OnConnect) error.
	Unreachable
	// Reconnected reports that a reconnect succeeded.
	Reconnected
)

// String returns the lowercase name of k ("connected", "disconnected",
// "unreachable", "reconnected").
func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Unreachable:
		return "unreachable"
	case Reconnected:
		return "reconnected"
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event describes one thing that happened to a Tether's connection. The Tether
// passes a *Event to its DisconnectHandler, which may change Addr, Delay and,
// when it returns GiveUp, Err. An *Event is valid only during the call; copy
// the Event to keep it.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Err is the cause: the I/O error for Disconnected, the dial error for
	// Unreachable, nil for Connected and Reconnected. A handler that returns
	// GiveUp may set Err to the error it wants reported.
	Err error
	// Addr is the address the next dial uses. A handler may change it: the
	// change sticks for every later dial (Failover does this).
	Addr string
	// Attempt counts failed dials since the last stable connection. A
	// connection that dies within the stability period (WithStabilityPeriod)
	// counts as a failed dial, so a server that accepts and closes at once
	// makes Attempt grow, and so does one that the read watchdog
	// (WithReadIdleTimeout) ends before it delivered a byte, however long it
	// was up. It is 0 on a Disconnected after a stable connection, and on
	// Connected and Reconnected it is the failed dials it took.
	Attempt int

	// Dialed is the address that failed (Disconnected, Unreachable) or just
	// connected (Connected, Reconnected). Unlike Addr it is informational:
	// a change to it has no effect.
	Dialed string
	// Delay is how long the Tether waits before the next dial, when the
	// handler returns Reconnect on Disconnected or Unreachable. The Tether
	// waits it, not the handler, so Close interrupts it at once and outer
	// middleware can see it. It starts at 0 for every event.
	Delay time.Duration
	// Total counts failed dials over the Tether's life, as Attempt does but
	// never reset.
	Total int
	// Uptime is how long the lost connection lived (Disconnected only).
	Uptime time.Duration
	// Since is when the current outage began: when the connection was lost
	// (for Disconnected and the Unreachable and Reconnected events that
	// follow it), or when Dial began (for the events inside Dial), or a
	// lazy Tether's first dial.
	Since time.Time
	// Generation is the connection number: 1 for Dial's first connection,
	// incremented by every reconnect. On Disconnected it is the lost
	// connection's; on Unreachable, the last connection's (0 inside Dial).
	Generation uint64
	// DialTime is how long the dial that this event reports took, OnConnect
	// included (Unreachable, Connected, Reconnected).
	DialTime time.Duration
	// Conn is the new connection on Connected and Reconnected, for TLS state
	// or peer certificates; nil otherwise. The handler must not read from or
	// write to it.
	Conn net.Conn
	// State is the Tether's state: Connecting while the handlers decide;
	// on the copies that Notify sends after their decision, the state the
	// Tether enters on it (see NextState). A change to it has no effect.
	State State
}

// NextState returns the state a Tether enters when its handler answers a to
// e: Ready for a connection accepted or kept, Connecting for a dial now,
// TransientFailure for a dial after e.Delay, Idle after Ignore on
// Unreachable, Shutdown after GiveUp. Middleware that act after next use it
// to report the outcome of a decision.
func (e *Event) NextState(a Action) State {
	switch {
	case a == GiveUp:
		return Shutdown
	case e.Kind == Connected || e.Kind == Reconnected:
		return Ready
	case a == Ignore && e.Kind == Unreachable:
		return Idle
	case a == Ignore:
		return Ready
	case e.Delay > 0:
		return TransientFailure
	}
	return Connecting
}

// Outage returns how long the current outage has lasted at now: now.Sub(Since),
// or 0 when Since is the zero time.
func (e *Event) Outage(now time.Time) time.Duration {
	if e.Since.IsZero() {
		return 0
	}
	return now.Sub(e.Since)
}

// LogValue implements slog.LogValuer: the event as a group of its non-zero
// fields.
func (e Event) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("kind", e.Kind.String()))
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	attrs = append(attrs, slog.String("addr", e.Addr))
	if e.Dialed != "" && e.Dialed != e.Addr {
		attrs = append(attrs, slog.String("dialed", e.Dialed))
	}
	attrs = append(attrs, slog.Int("attempt", e.Attempt), slog.Int("total", e.Total),
		slog.Uint64("generation", e.Generation))
	if e.Delay > 0 {
		attrs = append(attrs, slog.Duration("delay", e.Delay))
	}
	if e.Uptime > 0 {
		attrs = append(attrs, slog.Duration("uptime", e.Uptime))
	}
	if e.DialTime > 0 {
		attrs = append(attrs, slog.Duration("dial_time", e.DialTime))
	}
	return slog.GroupValue(attrs...)
}
