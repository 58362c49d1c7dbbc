package tether

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/io-tether/tether/internal/tetheropts"
)

// Defaults of the options.
const (
	// DefaultStabilityPeriod is how long a connection must stay up before
	// its loss resets Event.Attempt to 0 (WithStabilityPeriod).
	DefaultStabilityPeriod = time.Second
	// DefaultOnConnectTimeout bounds each run of the OnConnect hook
	// (WithOnConnectTimeout).
	DefaultOnConnectTimeout = 10 * time.Second
)

// An Option configures a Tether in Dial or New. Options are made by the
// With... functions of this package.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// Propagation says which error the operations of a Tether return after its
// handler gave up (io-tether's ErrorPropagation). Whatever it says, Err
// reports the cause.
type Propagation int

const (
	// PropagateCause, the default, returns the error of the event on which
	// the handler gave up (or the error the handler set in Event.Err): the
	// I/O error after a Disconnected, the dial error after an Unreachable
	// (io-tether's All).
	PropagateCause Propagation = iota
	// PropagateIO returns the I/O error that began the outage, even when the
	// handler gave up later on a dial error (io-tether's IoOperations).
	PropagateIO
	// PropagateNone returns no cause: Read returns io.EOF and Write returns
	// ErrGaveUp (io-tether's None).
	PropagateNone
)

// String returns the lowercase name of p.
func (p Propagation) String() string {
	switch p {
	case PropagateCause:
		return "cause"
	case PropagateIO:
		return "io"
	case PropagateNone:
		return "none"
	}
	return "propagation(?)"
}

// config holds the options of one Tether; defaults are set in newConfig.
type config struct {
	stability        time.Duration
	onConnect        func(ctx context.Context, c net.Conn) error
	onConnectTimeout time.Duration
	readIdle         time.Duration
	buffer           int // the write buffer's size; 0: none
	observe          func(from, to State, in time.Duration)
	propagation      uint8 // a Propagation; small types keep an idle Tether small
	writePolicy      uint8 // a WritePolicy
	boundary         bool
	lazy             bool
	failFast         bool
	noInitialRetry   bool
}

// options is a config being built, with the first bad option's error,
// which the Tether does not keep.
type options struct {
	config
	err       error
	policySet bool // WithWritePolicy was given (for package session: tetheropts)
}

func init() {
	tetheropts.SetsWritePolicy = func(opts []any) bool {
		var c options
		for _, o := range opts {
			if o, ok := o.(Option); ok && o != nil {
				o.apply(&c)
			}
		}
		return c.policySet
	}
}

// newConfig applies opts to the defaults; it returns the error of the
// first bad option.
func newConfig(opts []Option) (config, error) {
	c := options{config: config{
		stability:        DefaultStabilityPeriod,
		onConnectTimeout: DefaultOnConnectTimeout,
	}}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.boundary && c.buffer > 0 {
		c.fail("WithReconnectBoundary and WithWriteBuffer do not go together: a buffered Write returns before its connection is known")
	}
	return c.config, c.err
}

func (c *options) fail(msg string) {
	if c.err == nil {
		c.err = errors.New("tether: " + msg)
	}
}

// WithStabilityPeriod sets how long a connection must stay up to count as
// stable (default DefaultStabilityPeriod). The loss of a stable connection
// resets Event.Attempt to 0; a connection lost sooner counts as one more
// failed dial, so the backoff grows against a server that accepts and closes
// at once. A negative d is an error from Dial; 0 makes every connection
// stable.
func WithStabilityPeriod(d time.Duration) Option {
	return optionFunc(func(c *options) {
		if d < 0 {
			c.fail("negative stability period")
			return
		}
		c.stability = d
	})
}

// WithOnConnect sets a hook that runs on every new connection, the first and
// each reconnect, after the dial and before the Connected or Reconnected event
// and before any blocked operation resumes. It has exclusive use of the
// connection (for a hello, an authentication exchange, a resubscription), and
// its ctx ends after the OnConnect timeout (WithOnConnectTimeout) or when the
// Tether is closed. An error closes the connection and counts as a failed
// dial: the handler sees Unreachable with that error.
//
// Deadlines that f sets on c are replaced by the Tether's afterwards.
func WithOnConnect(f func(ctx context.Context, c net.Conn) error) Option {
	return optionFunc(func(c *options) { c.onConnect = f })
}

// WithOnConnectTimeout bounds each run of the OnConnect hook (default
// DefaultOnConnectTimeout); the hook's ctx ends then, and the connection's
// deadlines are set to it. A d of 0 or less is an error from Dial.
func WithOnConnectTimeout(d time.Duration) Option {
	return optionFunc(func(c *options) {
		if d <= 0 {
			c.fail("OnConnect timeout must be positive")
			return
		}
		c.onConnectTimeout = d
	})
}

// WritePolicy says what happens to a Write that a lost connection cut
// short or failed (WithWritePolicy).
type WritePolicy int

const (
	// WriteWhole, the default, sends a Write of which the failed connection
	// accepted nothing whole to the next connection, and reports a Write cut
	// in the middle: it returns the count the lost connection accepted and
	// an error matching ErrDropped, and its rest goes to no connection. A
	// framed or request/response protocol never sees half a message on a
	// new connection, and its client learns which message was cut.
	WriteWhole WritePolicy = iota
	// WriteResume sends the rest of a cut Write to the next connection,
	// before any later Write: for unframed byte streams (a netcat, a log
	// shipper), where a gap is tolerable and a resent tail is not harmful.
	WriteResume
	// WriteDrop sends no failed Write to another connection: a Write whose
	// connection failed under it returns at once with the count accepted
	// and an error matching ErrDropped, while the reconnect goes on; Writes
	// made during an outage wait for the next connection. For protocols
	// that resend by themselves (package session does).
	WriteDrop
)

// String returns the lowercase name of p ("whole", "resume", "drop").
func (p WritePolicy) String() string {
	switch p {
	case WriteWhole:
		return "whole"
	case WriteResume:
		return "resume"
	case WriteDrop:
		return "drop"
	}
	return "write-policy(" + strconv.Itoa(int(p)) + ")"
}

// WithWritePolicy sets what happens to a Write that a lost connection cut
// short or failed (default WriteWhole). An unknown policy is an error from
// Dial.
func WithWritePolicy(p WritePolicy) Option {
	return optionFunc(func(c *options) {
		c.policySet = true
		if p < WriteWhole || p > WriteDrop {
			c.fail("unknown WritePolicy")
			return
		}
		c.writePolicy = uint8(p)
	})
}

// WithReconnectBoundary makes every reconnect visible to the operations,
// for framed and request/response protocols: after a reconnect, the first
// Read and the first Write (each direction once) return 0 and a
// *ReconnectedError that matches ErrReconnected and carries the old and new
// generations. So does an operation that was blocked on the lost connection
// (a Read waiting for a reply) or cut by it (a half-written Write returns
// its count, and its error also matches ErrDropped). The new connection is
// already up, OnConnect done; the call itself reads and sends nothing. A
// codec resets its framing on it, and a client resends or fails its
// outstanding requests instead of waiting for ever for replies that died
// with the connection. A client that writes and reads meets one reconnect
// in both directions, with the same New: the requests written on a
// connection older than New lost their replies, and one written again
// after the Write's boundary did not (see the example). The first
// connection raises no boundary. With the boundary no failed Write goes to
// another connection, whatever the write policy.
func WithReconnectBoundary() Option {
	return optionFunc(func(c *options) { c.boundary = true })
}

// WithLazy makes Dial return at once, in state Idle, after checking its
// arguments: the first Read, Write or Connect dials, and the operations
// wait for the connection as they do during an outage (bounded by their
// deadlines and Close). The first connection is reported as Connected. Lazy
// dials run on the Tether's own context, never on Dial's (which callers
// often cancel as soon as Dial returns). For a client that starts before
// its server.
func WithLazy() Option {
	return optionFunc(func(c *options) { c.lazy = true })
}

// WithWriteBuffer gives the Tether a buffer of n bytes for Writes made while
// it is not Ready (during an outage, or before a lazy Tether's first
// connection): a Write that fits whole in what is left of the buffer is
// copied and returns len(p), nil at once, and the buffer goes first, in
// order, to the next connection, before any later Write. A Write that does
// not fit waits for a connection as without a buffer (or fails at once,
// with WithFailFast); so does one made while the buffer is being written to
// a new connection, which then takes no more Writes, so that a producer
// that keeps up with the flush cannot keep it from ending. For producers
// that must not block during an outage (nats.go's ReconnectBufSize).
//
// Under WriteResume, the rest of a Write that a loss cut goes to the buffer
// the same way, ahead of any later Write, and the Write returns len(p),
// nil (or, with WithFailFast and no room, its count and ErrBufferFull).
//
// The Write whose connection fails does not wait for the handler either:
// it is buffered as the others of the outage, so it returns len(p), nil,
// even when the handler answers Ignore (whose error would otherwise go to
// it), and its bytes then go to the kept connection.
//
// A buffered Write has returned, so a failure of what it wrote cannot be
// reported to it: the buffer keeps Writes whole, and if a connection dies
// while the buffer is being written to it, the write policy applies to the
// Write being written (by default, the rest of a cut one is dropped) and
// the rest of the buffer goes to the next connection. A new connection
// that fails so has had its Reconnected event: an Unreachable event follows,
// as for a failed dial. Dropped counts the
// bytes so lost, and those never sent when the Tether is closed or gives
// up; Buffered counts those waiting. The buffer is allocated when first
// used; the healthy path does not touch it. A negative n is an error from
// Dial, and so is a buffer with WithReconnectBoundary: they are for
// different protocols (fire-and-forget against framed request/response).
func WithWriteBuffer(n int) Option {
	return optionFunc(func(c *options) {
		if n < 0 {
			c.fail("negative write buffer size")
			return
		}
		c.buffer = n
	})
}

// WithFailFast makes a Write that cannot go out now return at once instead
// of waiting for a connection: while the Tether is not Ready, a Write that
// does not fit whole in what is left of the write buffer (WithWriteBuffer;
// without one, every Write) returns 0 and an error matching ErrBufferFull,
// and writes nothing. Reads still wait.
func WithFailFast() Option {
	return optionFunc(func(c *options) { c.failFast = true })
}

// WithStateObserver sets f to be told of every change of the Tether's state
// (see State): the state it left, the state it entered, and how long it was
// in the one it left. For metrics: a count of Tethers per state, the time
// spent in each (package otel's Recorder and middleware.ExpvarMetrics give
// one). f is first called as the Tether is made, with from and to both its
// first state (Connecting, or Idle with WithLazy) and in 0, and last when it
// enters Shutdown. Calls for one Tether come one at a time, in order; f
// runs while the Tether holds its lock, so it must return quickly and must
// not call the Tether's methods. A nil f is an error from Dial.
func WithStateObserver(f func(from, to State, in time.Duration)) Option {
	return optionFunc(func(c *options) {
		if f == nil {
			c.fail("nil state observer")
			return
		}
		c.observe = f
	})
}

// WithErrorPropagation sets which error operations return after the handler
// gave up (default PropagateCause).
func WithErrorPropagation(p Propagation) Option {
	return optionFunc(func(c *options) {
		if p < PropagateCause || p > PropagateNone {
			c.fail("unknown Propagation")
			return
		}
		c.propagation = uint8(p)
	})
}

// WithNoInitialRetry makes Dial return the first dial's error at once, without
// asking the handler (io-tether's connect_without_retry). Reconnects after the
// first connection still follow the handler. With WithLazy, the first dial is
// the first operation's (or Connect's): its failure ends the Tether, the
// operation gets the error, and the handler sees no event.
func WithNoInitialRetry() Option {
	return optionFunc(func(c *options) { c.noInitialRetry = true })
}

// WithReadIdleTimeout sets a watchdog on reads: a Read that receives nothing
// for d counts as a disconnect, with an Event.Err that wraps ErrIdleTimeout,
// and the Tether reconnects as its handler decides. It detects a peer that
// vanished without a word (a blackhole, a half-open connection) on a
// connection where the peer is expected to send at least every d (a
// heartbeat); TCP keep-alive cannot see such a peer when a proxy or a
// middlebox still answers for it. It costs each Read two clock reads, a
// deadline update and the Tether's lock, so that a deadline the user sets
// concurrently is never lost. The user's read deadline still applies and
// takes precedence when it is sooner. A connection that the watchdog ends
// before it delivered a byte to a Read of the Tether (what an OnConnect hook
// read does not count) counts as a failed dial (Event.Attempt grows),
// however long it was up: a frozen server whose kernel still accepts
// connections makes the backoff grow, rather than being redialed every d. A d
// of 0 (the default) turns it off; a negative d is an error from Dial.
func WithReadIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *options) {
		if d < 0 {
			c.fail("negative read idle timeout")
			return
		}
		c.readIdle = d
	})
}
