package session

import (
	"errors"
	"log/slog"
	"time"

	"github.com/io-tether/tether"
)

// Defaults of the options.
const (
	// DefaultBufferSize bounds each direction of a session: the bytes
	// written and not yet acknowledged (WithBufferSize), and the bytes
	// received and not yet read.
	DefaultBufferSize = 4 << 20
	// DefaultLinger bounds how long Close waits for the peer to
	// acknowledge everything written (WithLinger).
	DefaultLinger = 5 * time.Second
	// DefaultKeepAlive is how long a session's transport may stay silent
	// before a ping, and DefaultKeepAliveTimeout how much longer it may
	// stay silent before it counts as dead (WithKeepAlive).
	DefaultKeepAlive        = 5 * time.Second
	DefaultKeepAliveTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds each handshake, on either end
	// (WithHandshakeTimeout).
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxSessions and DefaultMaxHandshakes are a Listener's caps
	// (WithMaxSessions, WithMaxHandshakes).
	DefaultMaxSessions   = 10000
	DefaultMaxHandshakes = 256
	// DefaultDetachedLifetime is how long a Listener keeps a session whose
	// client went away (WithDetachedLifetime).
	DefaultDetachedLifetime = 5 * time.Minute
)

// startWindow is the receive window a session starts with: initialWindow
// (see tuneWindowLocked), or the buffer if that is smaller.
func (c *config) startWindow() int { return min(initialWindow, c.bufSize) }

// minWindow is the smallest buffer a peer may announce.
const minWindow = 4 << 10

// An Option configures Dial or NewListener. Options that apply to one end
// only say so; given to the other end they are an error.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tetherOpts       []tether.Option
	clientOnly       bool // a client-only option was given
	serverOnly       bool // a server-only option was given
	bufSize          int
	linger           time.Duration
	keepAlive        time.Duration
	keepAliveTimeout time.Duration
	handshakeTimeout time.Duration
	maxSessions      int
	maxHandshakes    int
	lifetime         time.Duration
	logger           *slog.Logger
	err              error
}

func newConfig(opts []Option) *config {
	c := &config{
		bufSize:          DefaultBufferSize,
		linger:           DefaultLinger,
		keepAlive:        DefaultKeepAlive,
		keepAliveTimeout: DefaultKeepAliveTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		maxSessions:      DefaultMaxSessions,
		maxHandshakes:    DefaultMaxHandshakes,
		lifetime:         DefaultDetachedLifetime,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	return c
}

func (c *config) fail(msg string) {
	if c.err == nil {
		c.err = errors.New("tether/session: " + msg)
	}
}

// WithTether passes options to the client's Tether (client only). The
// session owns the Tether's OnConnect hook (it runs the handshake), the
// reconnect boundary, its write policy (tether.WriteDrop: the session
// replays, a failed Write goes to no other connection) and its OnConnect
// timeout (WithHandshakeTimeout): Dial fails with a clear error when opts
// set an OnConnect hook, the boundary or a write policy, and sets the
// OnConnect timeout over whatever opts say.
func WithTether(opts ...tether.Option) Option {
	return optionFunc(func(c *config) {
		c.clientOnly = true
		c.tetherOpts = append(c.tetherOpts, opts...)
	})
}

// WithBufferSize bounds each direction of the session to n bytes (default
// DefaultBufferSize): a Write blocks while n bytes written are not yet
// acknowledged by the peer (sooner while the peer acknowledges: see the
// package doc's Limits), and this end lets the peer send at most n bytes
// ahead of what its reader has read (its window, which starts at 512 KiB if
// n is larger and grows where the path needs it). The buffers are
// allocated as they fill, and freed while the session is idle. n must be
// at least 4 KiB.
func WithBufferSize(n int) Option {
	return optionFunc(func(c *config) {
		if n < minWindow || n > 1<<30 {
			c.fail("buffer size must be between 4 KiB and 1 GiB")
			return
		}
		c.bufSize = n
	})
}

// WithLinger bounds how long Close waits for the peer to acknowledge every
// byte written and the final frame (default DefaultLinger); 0 makes Close
// return at once, dropping what the peer has not acknowledged (and then
// Close reports only bytes unacknowledged, not the final frame).
func WithLinger(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.fail("negative linger")
			return
		}
		c.linger = d
	})
}

// WithKeepAlive sets the liveness check: after idle with nothing received
// on the transport, the session sends a ping; when timeout more passes
// with nothing received, the transport counts as dead and is dropped (the
// client reconnects and resumes; its handler's Disconnected has an error
// that matches tether.ErrIdleTimeout). This replaces the Tether's read
// watchdog, and detects a frozen peer that TCP keep-alive cannot see.
// Defaults: DefaultKeepAlive, DefaultKeepAliveTimeout.
func WithKeepAlive(idle, timeout time.Duration) Option {
	return optionFunc(func(c *config) {
		if idle <= 0 || timeout <= 0 {
			c.fail("keep-alive durations must be positive")
			return
		}
		c.keepAlive, c.keepAliveTimeout = idle, timeout
	})
}

// WithHandshakeTimeout bounds each handshake (default
// DefaultHandshakeTimeout): on the client, each run of the Tether's
// OnConnect; on the listener, the time from accepting a connection to its
// handshake's end, so that a client that connects and sends nothing costs
// a goroutine for at most that long.
func WithHandshakeTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.fail("handshake timeout must be positive")
			return
		}
		c.handshakeTimeout = d
	})
}

// WithMaxSessions caps the sessions a Listener holds, attached or not
// (listener only; default DefaultMaxSessions). A new session beyond it is
// refused; the client's handler sees a transient error and retries.
func WithMaxSessions(n int) Option {
	return optionFunc(func(c *config) {
		c.serverOnly = true
		if n <= 0 {
			c.fail("max sessions must be positive")
			return
		}
		c.maxSessions = n
	})
}

// WithMaxHandshakes caps the handshakes a Listener runs at once (listener
// only; default DefaultMaxHandshakes). A connection accepted beyond it is
// closed at once; its client retries as its handler says.
func WithMaxHandshakes(n int) Option {
	return optionFunc(func(c *config) {
		c.serverOnly = true
		if n <= 0 {
			c.fail("max handshakes must be positive")
			return
		}
		c.maxHandshakes = n
	})
}

// WithDetachedLifetime sets how long a Listener keeps a session whose
// transport is gone, waiting for its client to resume (listener only;
// default DefaultDetachedLifetime). Then the session ends: its Conn's
// operations return an error matching ErrSessionLost (after Read drained
// what was received), and the client's resume is refused.
func WithDetachedLifetime(d time.Duration) Option {
	return optionFunc(func(c *config) {
		c.serverOnly = true
		if d <= 0 || d > 1000*time.Hour {
			c.fail("detached lifetime must be positive and at most 1000 h")
			return
		}
		c.lifetime = d
	})
}

// WithLogger makes a Listener log the handshakes it refuses and the
// sessions that end, at debug level, with the reason (listener only;
// default none).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		c.serverOnly = true
		c.logger = l
	})
}
