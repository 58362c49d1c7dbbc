package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/tetheropts"
)

// Dial opens a new session with the server at addr, over connections that
// d makes, and returns the client's end once the server accepted it. The
// session runs over a Tether (tether.Dial) whose handler h decides about
// reconnects, as for any Tether: a nil h is tether.DefaultHandler(), and
// middleware apply. After each reconnect the session resumes: the two ends
// prove they hold the session's key and replay what the other has not
// received.
//
// A lost session (the server forgot it, or ended it) and a server that
// does not speak tether-session end the session whatever h says: no retry
// can mend them. Dial returns an error matching ErrNotSession for the
// latter, at once when the server sends anything (a greeting, an echo, an
// error page); a plain server that waits in silence for its client to
// speak is only a failed handshake after WithHandshakeTimeout, which the
// handler sees as a transient error.
//
// Options: WithTether passes options to the Tether; WithBufferSize,
// WithLinger, WithKeepAlive and WithHandshakeTimeout apply to the client;
// listener options are an error.
func Dial(ctx context.Context, d tether.Dialer, addr string, h tether.DisconnectHandler, opts ...Option) (*Conn, error) {
	cfg := newConfig(opts)
	if cfg.err == nil && cfg.serverOnly {
		cfg.fail("a listener option given to Dial")
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	if f, ok := h.(tether.DisconnectHandlerFunc); ok && f == nil {
		return nil, errors.New("tether/session: nil DisconnectHandlerFunc")
	}
	if h == nil {
		h = tether.DefaultHandler()
	}
	if err := checkTetherOptions(cfg.tetherOpts); err != nil {
		return nil, err
	}
	c := newConn(cfg, true)
	topts := append(cfg.tetherOpts[:len(cfg.tetherOpts):len(cfg.tetherOpts)],
		tether.WithOnConnect(c.onConnect),
		tether.WithOnConnectTimeout(handshakeBackstop(cfg.handshakeTimeout)),
		tether.WithWritePolicy(tether.WriteDrop),
	)
	t, err := tether.Dial(ctx, d, addr, &handler{next: h, c: c}, topts...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.t = t
	c.laddr, c.raddr = t.LocalAddr(), t.RemoteAddr()
	c.startLocked()
	c.wg.Add(1)
	go c.readLoop()
	c.mu.Unlock()
	return c, nil
}

var errProbe = errors.New("probe")

// checkTetherOptions fails when opts set an OnConnect hook, the reconnect
// boundary or a write policy, which the session owns. It cannot see inside
// a tether.Option, so it probes: a dial over a connection that fails every
// operation, with a hook of its own first (if the hook does not run, opts
// replaced it), and the options with a write buffer, which tether.Dial
// refuses beside the boundary; the write policy, package tether tells
// (tetheropts).
func checkTetherOptions(opts []tether.Option) error {
	if len(opts) == 0 {
		return nil
	}
	probe := func(first, last []tether.Option) (ran, dialed bool, err error) {
		all := append([]tether.Option{tether.WithOnConnect(func(context.Context, net.Conn) error {
			ran = true
			return errProbe
		})}, first...)
		all = append(all, opts...)
		// The probe's own observer: the user's sees no probe's states.
		all = append(all, tether.WithStateObserver(func(tether.State, tether.State, time.Duration) {}))
		all = append(all, last...)
		all = append(all, tether.WithNoInitialRetry())
		d := tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
			dialed = true
			a, b := net.Pipe()
			b.Close()
			return a, nil
		})
		t, err := tether.Dial(context.Background(), d, "probe", nil, all...)
		if t != nil {
			t.Close()
		}
		return ran, dialed, err
	}
	ran, dialed, err := probe(nil, nil)
	switch {
	case !dialed && err == nil:
		return errors.New("tether/session: WithTether: WithLazy does not go with a session, whose Dial runs its handshake")
	case !dialed:
		return fmt.Errorf("tether/session: WithTether: %w", err)
	case !ran:
		return errors.New("tether/session: WithTether: the session owns the Tether's OnConnect hook (its handshake)")
	}
	if _, dialed, _ := probe(nil, []tether.Option{tether.WithWriteBuffer(1)}); !dialed {
		return errors.New("tether/session: WithTether: the session owns the reconnect boundary (it replays across reconnects)")
	}
	as := make([]any, len(opts))
	for i, o := range opts {
		as[i] = o
	}
	if tetheropts.SetsWritePolicy(as) {
		return errors.New("tether/session: WithTether: the session owns the Tether's write policy (WriteDrop: it replays what a failed Write sent)")
	}
	return nil
}

// handler wraps the user's handler: it ends the session on errors no
// retry mends, turns Ignore into Reconnect (a session cannot go on with
// a failed transport), and gives a Disconnected that the session itself
// caused the session's reason instead of the transport's error: the
// liveness check's (matching tether.ErrIdleTimeout) for the connection it
// closed, the failed send's for the read deadline that ended the
// connection after it (sendFailed).
type handler struct {
	next tether.DisconnectHandler
	c    *Conn
}

func (h *handler) HandleDisconnect(ctx context.Context, ev *tether.Event) tether.Action {
	if ev.Kind == tether.Disconnected {
		h.c.mu.Lock()
		dropped, gen := h.c.dropped, h.c.droppedGen
		h.c.dropped = nil
		h.c.mu.Unlock()
		if dropped != nil && gen == ev.Generation && (errors.Is(ev.Err, net.ErrClosed) || errors.Is(ev.Err, os.ErrDeadlineExceeded)) {
			ev.Err = dropped
		}
	}
	if ev.Kind == tether.Unreachable && fatal(ev.Err) {
		err := ev.Err
		h.next.HandleDisconnect(ctx, ev) // for its logs and counts: the decision is made
		ev.Err, ev.Delay = err, 0
		return tether.GiveUp
	}
	a := h.next.HandleDisconnect(ctx, ev)
	if a == tether.Ignore {
		a = tether.Reconnect
	}
	return a
}

// handshakeBackstop is the Tether's OnConnect timeout for a handshake
// timeout d: longer than d, so that the session's own deadline, set as its
// hook begins, ends a handshake first.
func handshakeBackstop(d time.Duration) time.Duration {
	if d > math.MaxInt64/2 {
		return d
	}
	return 2 * d
}

// onConnect is the Tether's OnConnect hook: the handshake on every new
// transport connection. Its errors name the server (the Tether's handler
// and the session's end see them).
//
// It times the handshake itself: the Tether's OnConnect timeout began a
// moment before the hook, and its end could not be told from that of
// Dial's ctx. Only past the session's own deadline does an error say that
// the handshake timed out.
func (c *Conn) onConnect(ctx context.Context, raw net.Conn) error {
	deadline := time.Now().Add(c.cfg.handshakeTimeout)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := c.handshake(hctx, raw)
	if err == nil {
		return nil
	}
	if hctx.Err() != nil {
		err = hctx.Err()
	}
	if (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) &&
		!time.Now().Before(deadline) {
		err = fmt.Errorf("no answer within the handshake timeout (%v): %w", c.cfg.handshakeTimeout, err)
	}
	return &handshakeError{raw.RemoteAddr(), err}
}

// handshake runs onConnect's handshake.
func (c *Conn) handshake(ctx context.Context, raw net.Conn) error {
	// A TLS connection whose handshake has not run yet (tls.Client returns
	// one: it runs on the first Read or Write) runs it now, since the
	// exporter needs it. After a handshake it returns at once.
	if hs, ok := raw.(interface{ HandshakeContext(context.Context) error }); ok {
		if err := hs.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
	}
	exp, err := exporter(raw)
	if err != nil {
		return err
	}
	var flags byte
	if exp != nil {
		flags = flagExporter
	}
	c.mu.Lock()
	resume, closed := c.key != nil, c.ended
	c.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	// ctx's end (Dial's ctx cancelled, the Tether closed) interrupts the
	// handshake, not only its deadline: a past deadline fails its I/O.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if resume {
		err = c.resume(raw, flags, exp)
	} else {
		err = c.open(raw, flags, exp)
	}
	return err
}

// open runs the handshake of a new session.
func (c *Conn) open(raw net.Conn, flags byte, exp []byte) error {
	priv, err := newKeyPair()
	if err != nil {
		return err
	}
	h := hello{typ: msgNew, flags: flags, window: uint32(c.rwin)}
	copy(h.pub[:], priv.PublicKey().Bytes())
	// The window is announced as NEW leaves: the server may send as soon
	// as its ACCEPT has, so that its first bytes can come right behind
	// it, a round trip after NEW, not after ACCEPT arrived.
	announced := time.Now()
	r, err := exchange(raw, &h)
	if err != nil {
		return err
	}
	if r.typ != msgAccept {
		return protoErr("unexpected reply %#x to a new session", r.typ)
	}
	shared, err := sharedSecret(priv, r.pub)
	if err != nil {
		return protoErr("server's key: %v", err)
	}
	key, err := deriveKey(shared, exp, h.pub[:], r.pub[:], r.id)
	if err != nil {
		return err
	}
	if want := acceptMAC(key, h.pub[:], r.pub[:], r.id); !hmac.Equal(want[:], r.mac[:]) {
		if exp != nil {
			return errExporter
		}
		return protoErr("server's key confirmation does not match")
	}
	c.mu.Lock()
	c.id, c.key = r.id, key
	c.peerLimit, c.ackEvery = uint64(r.window), ackEvery(r.window)
	c.announceLocked(uint64(h.window), announced)
	c.epoch = 1
	c.tconn = raw
	c.lastRecv = time.Now()
	c.mu.Unlock()
	return nil
}

// resume runs the handshake that resumes the session on a new transport.
func (c *Conn) resume(raw net.Conn, flags byte, exp []byte) error {
	c.mu.Lock()
	c.attempt++
	h := hello{typ: msgResume, flags: flags, id: c.id, attempt: c.attempt, recv: c.rRecv}
	key := c.key
	c.mu.Unlock()
	rand.Read(h.nonce[:])
	h.mac = resumeMAC(key, &h, exp)
	r, err := exchange(raw, &h)
	if err != nil {
		return err
	}
	if r.typ != msgResumed {
		return protoErr("unexpected reply %#x to a resume", r.typ)
	}
	if want := resumedMAC(key, &h, r.recv, exp); !hmac.Equal(want[:], r.mac[:]) {
		return errBadReply
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.recv < c.sAcked || r.recv > c.sWritten {
		return lost(protoErr("server received %d bytes of %d written, %d acknowledged", r.recv, c.sWritten, c.sAcked))
	}
	c.resumedLocked(r.recv, time.Now())
	c.tconn = raw
	return nil
}

// exchange sends the client's preface and h, and reads the server's
// preface and reply; a reject becomes its error.
func exchange(raw net.Conn, h *hello) (reply, error) {
	b := make([]byte, 0, prefaceLen+resumeLen)
	b = putPreface(b, roleClient)
	b = h.append(b)
	if _, err := raw.Write(b); err != nil {
		return reply{}, err
	}
	if err := readPreface(raw, roleServer); err != nil {
		return reply{}, err
	}
	var buf [acceptLen]byte
	if _, err := io.ReadFull(raw, buf[:1]); err != nil {
		return reply{}, err
	}
	n := replyLen(buf[0])
	if n == 0 {
		return reply{}, protoErr("unknown handshake reply %#x", buf[0])
	}
	if _, err := io.ReadFull(raw, buf[1:n]); err != nil {
		return reply{}, err
	}
	r, err := decodeReply(buf[:n])
	if err != nil {
		return r, err
	}
	if r.typ == msgReject {
		return r, rejectErr(r.code)
	}
	return r, nil
}

// rejectErr is the client's error for a server's reject code.
func rejectErr(code byte) error {
	switch code {
	case rejectLost:
		return lost(errUnknown)
	case rejectBusy:
		return errBusy
	case rejectVersion:
		return errVersion
	case rejectBad:
		return errRejected
	case rejectStale:
		return errStale
	case rejectShutdown:
		return lost(errShutdown)
	}
	return protoErr("unknown reject code %d", code)
}

// readPreface reads the peer's preface, failing at the first byte that
// differs from the magic (a plain server's greeting fails at once); the
// error quotes what the peer sent.
func readPreface(r io.Reader, role byte) error {
	var p [prefaceLen]byte
	n := 0
	for n < prefaceLen {
		m, err := r.Read(p[n:])
		for i := n; i < n+m && i < len(magic); i++ {
			if p[i] != magic[i] {
				return fmt.Errorf("%w: it sent %q", ErrNotSession, p[:n+m])
			}
		}
		n += m
		if err != nil && n < prefaceLen {
			if err == io.EOF {
				if n > 0 {
					return fmt.Errorf("%w: it sent %q, then closed the connection", ErrNotSession, p[:n])
				}
				err = io.ErrUnexpectedEOF
				if role == roleServer {
					// This end is the client: the hints are a server's.
					err = fmt.Errorf("the server closed the connection before its preface (a TLS port? a server at its cap of handshakes?): %w", err)
				}
			}
			return err
		}
	}
	return checkPreface(p[:], role)
}

// readLoop is the client's transport reader: it reads the Tether and
// feeds the frames to the session.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	var (
		r   frameReader
		gen uint64
	)
	for {
		p := c.next(&r)
		n, g, err := c.t.ReadGeneration(p)
		if n > 0 {
			if g != gen {
				r.dec.reset() // a partial frame of the lost connection
				gen = g
			}
			if !c.took(&r, p[:n], 0) {
				return
			}
		}
		if err != nil {
			if terr := c.t.Err(); terr != nil {
				c.finish(c.endOf(terr))
				return
			}
		}
	}
}

// endOf is the session's end after its Tether ended with err.
func (c *Conn) endOf(err error) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed && !errors.Is(err, ErrSessionLost) { // a lost session even during Close, which reports it
		return net.ErrClosed
	}
	return asLost(err)
}
