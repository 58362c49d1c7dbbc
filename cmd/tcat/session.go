package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/session"
	"github.com/io-tether/tether/tcp"
	tethertls "github.com/io-tether/tether/tls"
)

// The -session modes: a session (package session) carries the bytes, so
// that nothing is lost, duplicated or reordered across reconnects, and
// both ends must run tcat -session.

// dialer returns the dialer of cfg's transport.
func dialer(cfg config) (tether.Dialer, error) {
	tc, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.quic:
		return &tetherquic.Dialer{TLSConfig: tc}, nil
	case cfg.tls:
		return &tethertls.Dialer{Config: tc}, nil
	}
	return &tcp.Dialer{}, nil
}

// connectSession dials a session to cfg.addr and copies stdin to it and it
// to stdout until both have ended; with -L, it relays instead.
func connectSession(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) error {
	d, err := dialer(cfg)
	if err != nil {
		return err
	}
	if c, ok := d.(*tetherquic.Dialer); ok {
		defer c.Close()
	}
	if cfg.local != "" {
		return relayLocal(ctx, cfg, d, stderr)
	}
	c, err := session.Dial(ctx, d, cfg.addr, policy(cfg, stderr, nil), clientOptions(cfg)...)
	if err != nil {
		return err
	}
	name := "session to " + cfg.addr
	logf(stderr, cfg.verbose, "%s", name)
	return pipe(ctx, c, name, stdin, stdout, logTo(stderr, cfg.verbose, name))
}

// clientOptions are a session client's options: -w bounds the handshake
// too (a silent server costs no more than -w).
func clientOptions(cfg config) []session.Option {
	if cfg.wait > 0 && cfg.wait < session.DefaultHandshakeTimeout {
		return []session.Option{session.WithHandshakeTimeout(cfg.wait)}
	}
	return nil
}

// pipe copies stdin to c and c to stdout until both have ended (c's end is
// the peer's CloseWrite or Close), then closes c, which waits for the peer
// to acknowledge every byte. It logs the peer's end with log, and its
// errors begin with name ("session to ADDR"). When the session ends (the
// peer closed it) before stdin, or ctx ends, pipe returns without waiting
// for stdin, whose Read nothing can interrupt.
func pipe(ctx context.Context, c *session.Conn, name string, stdin io.Reader, stdout io.Writer, log func(string)) error {
	// Interrupted, the Close need not wait for the peer's acks (for the
	// linger time, 5 s, against a peer that is down): what is
	// unacknowledged will reach nobody, as the exit status says. The
	// client's transport goes first, and the session with it.
	interrupted := func() {
		if t := c.Tether(); t != nil {
			t.Close()
		}
	}
	stop := context.AfterFunc(ctx, func() {
		interrupted()
		c.Close()
	})
	defer stop()
	var stdinDone atomic.Bool
	wrote := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, stdin)
		if err == nil {
			stdinDone.Store(true) // before the final frame, which the peer's Close may answer
			err = c.CloseWrite()
		}
		wrote <- err
	}()
	_, rerr := io.Copy(stdout, c)
	var werr error
	if rerr == nil {
		log("the peer has finished")
		watch, cancel := context.WithCancel(ctx)
		defer cancel()
		select {
		case werr = <-wrote:
		case <-ended(watch, c):
			if stdinDone.Load() {
				werr = <-wrote // on its way
				break
			}
			// The peer closed the session, or it was lost: what stdin
			// has left would reach nobody. A Write says which.
			werr = errors.New("the session ended before the end of stdin")
			if _, err := c.Write(nil); err != nil {
				werr = fmt.Errorf("%w: %w", werr, err)
			}
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		interrupted() // this Close may come before the one above
	}
	cerr := c.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case rerr != nil:
		return fmt.Errorf("%s: %w", name, rerr)
	case werr != nil:
		return fmt.Errorf("%s: %w", name, werr)
	case cerr == nil, errors.Is(cerr, net.ErrClosed):
		return nil
	}
	return fmt.Errorf("%s: %w", name, cerr)
}

// ended returns a channel closed once c has ended (its state is Shutdown),
// unless ctx ends first.
func ended(ctx context.Context, c *session.Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for s := c.State(); s != tether.Shutdown; s = c.State() {
			if !c.WaitForStateChange(ctx, s) {
				return
			}
		}
		close(ch)
	}()
	return ch
}

// serveSessions is the listen mode with -session: it serves the first
// session as a pipe with stdin and stdout (later ones are refused), or with
// -to relays each session to a TCP server.
func serveSessions(ctx context.Context, cfg config, ln listener, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	var opts []session.Option
	if cfg.to == "" {
		// One pipe: a later session is refused at its handshake, so that
		// its client retries until its -w and fails. Accepting it and
		// closing it would acknowledge its bytes, and its client would
		// exit 0 with them dropped.
		opts = append(opts, session.WithMaxSessions(1))
	}
	if cfg.verbose {
		// The handshakes it refuses (a client without -session, say),
		// and the sessions that resume, expire or end.
		opts = append(opts, session.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	sl := session.NewListener(netListenerOf(ln), opts...)
	defer func() {
		if ql, ok := ln.(*quicListener); ok && err == nil {
			// Closing the listener closes its QUIC connections, and with
			// them the frames not yet sent (the answer to the peer's
			// close frame, which the peer's Close waits for): wait for
			// the peer to close them first, as listen does.
			ql.drain(closeGrace)
		}
		sl.Close()
	}()
	stop := context.AfterFunc(ctx, func() { sl.Close() })
	defer stop()
	if cfg.to != "" {
		return relayEach(ctx, cfg, stderr, sl, "session", cfg.to, func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", cfg.to)
		})
	}
	c, err := sl.AcceptSession()
	if err != nil {
		return closedBy(ctx, err)
	}
	from := fmt.Sprintf("session from %v", c.RemoteAddr())
	logf(stderr, cfg.verbose, "%s", from)
	return pipe(ctx, c, from, stdin, stdout, logTo(stderr, cfg.verbose, from))
}

// relayLocal accepts TCP connections on cfg.local and relays each over a
// session of its own to cfg.addr, until ctx ends.
func relayLocal(ctx context.Context, cfg config, d tether.Dialer, stderr io.Writer) error {
	ln, err := net.Listen("tcp", listenAddr(cfg.local))
	if err != nil {
		return err
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	fmt.Fprintf(stderr, "tcat: relaying %s to %s over sessions (%s)\n", ln.Addr(), cfg.addr, proto(cfg))
	return relayEach(ctx, cfg, stderr, ln, "connection", cfg.addr, func(ctx context.Context) (net.Conn, error) {
		c, err := session.Dial(ctx, d, cfg.addr, policy(cfg, stderr, nil), clientOptions(cfg)...)
		if err != nil {
			return nil, err
		}
		return c, nil
	})
}

// relayEach accepts on ln until it fails, and relays each connection (a
// what) to one that dial opens for it, to, in a goroutine of its own. It
// returns once every relay has ended.
func relayEach(ctx context.Context, cfg config, stderr io.Writer, ln net.Listener, what, to string,
	dial func(context.Context) (net.Conn, error)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var delay time.Duration
	for {
		a, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
				// As net/http: a passing shortage of file descriptors
				// (the relays hold two each) ends no relay.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				logf(stderr, cfg.verbose, "accept: %v; again in %v", err, delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				continue
			}
			return closedBy(ctx, err)
		}
		delay = 0
		wg.Go(func() {
			from := fmt.Sprintf("%s from %v", what, a.RemoteAddr())
			b, err := dial(ctx)
			if err != nil {
				// An error, said without -v: the application sees only
				// a reset.
				if ctx.Err() == nil {
					fmt.Fprintf(stderr, "tcat: %s: %v\n", from, err)
				}
				reset(a) // no service: an error for the application, not an empty reply
				return
			}
			logf(stderr, cfg.verbose, "%s: relayed to %s", from, to)
			stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
			defer stop()
			if err := relay(a, b); err != nil && ctx.Err() == nil {
				fmt.Fprintf(stderr, "tcat: %s: broken: %v\n", from, err)
				return
			}
			logf(stderr, cfg.verbose, "%s: ended", from)
		})
	}
}

// logTo returns a func that logs a line about what to w, when verbose.
func logTo(w io.Writer, verbose bool, what string) func(string) {
	return func(s string) { logf(w, verbose, "%s: %s", what, s) }
}

// closedBy returns ctx's error when ctx has ended (and closed the listener
// whose Accept failed), else err.
func closedBy(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// relay copies between a and b, both ways, passing each end of stream on
// as a half-close, until both directions are done; then it closes both. A
// direction that breaks passes the break on, as a reset, to the connection
// it writes to, so that an application sees an error, not an end of stream
// that would pass a cut reply for a whole one: a lost or aborted session
// resets the TCP connection, and a reset (or any failure) of the TCP
// connection aborts the session, whose other end resets its own. It
// returns the first break, if any.
func relay(a, b net.Conn) error {
	var once sync.Once
	var broken error
	pass := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err != nil {
			once.Do(func() { broken = err })
			reset(dst)
			return
		}
		closeWrite(dst)
	}
	var wg sync.WaitGroup
	wg.Go(func() { pass(a, b) })
	wg.Go(func() { pass(b, a) })
	wg.Wait()
	a.Close()
	b.Close()
	return broken
}

// reset ends c as a break, not an end of stream: a TCP connection with a
// reset, a session with Abort.
func reset(c net.Conn) {
	switch c := c.(type) {
	case *net.TCPConn:
		c.SetLinger(0)
		c.Close()
	case *session.Conn:
		c.Abort()
	default:
		c.Close()
	}
}

// netListenerOf returns ln as a net.Listener, for session.NewListener.
func netListenerOf(ln listener) net.Listener {
	if nl, ok := ln.(netListener); ok {
		return nl.Listener
	}
	return addrListener{ln}
}

// addrListener is a listener (QUIC streams) as a net.Listener.
type addrListener struct{ listener }

// Addr returns the address listened on.
func (l addrListener) Addr() net.Addr { return stringAddr(l.listener.Addr()) }

type stringAddr string

func (a stringAddr) Network() string { return "udp" }
func (a stringAddr) String() string  { return string(a) }
