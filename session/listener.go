package session

import (
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/io-tether/tether"
)

// A Listener is the server's end of sessions: a net.Listener over an inner
// listener (TCP, TLS through tls.NewListener, QUIC streams, Unix) whose
// Accept returns one *Conn per new session. A client that resumes after a
// reconnect is joined to its session inside the Listener and never reaches
// Accept.
//
// The Listener accepts and runs handshakes in goroutines of its own, from
// NewListener on, within its caps (WithMaxHandshakes, WithMaxSessions,
// WithHandshakeTimeout); sessions that wait for Accept count toward the
// session cap. Its methods are safe for concurrent use.
type Listener struct {
	inner   net.Listener
	cfg     *config
	hs      chan struct{} // a slot per handshake in progress
	acceptq chan *Conn
	done    chan struct{}
	stopped chan struct{}  // closed when the accept loop failed
	wg      sync.WaitGroup // the accept loop and the handshakes

	mu       sync.Mutex
	sessions map[[16]byte]*Conn
	// held counts the sessions in sessions and those that ended while
	// they waited for Accept, which hold their unread bytes until Accept
	// takes them: the session cap counts both.
	held       int
	handshakes map[net.Conn]struct{} // connections in a handshake
	closed     bool
	unstarted  bool  // bad options: inner is still to close
	err        error // why Accept fails: the inner listener's error or a bad option
}

// NewListener returns a Listener of sessions over inner, which it owns:
// Close closes it. Bad options make Accept return the error. The client
// options (WithTether) are an error here.
func NewListener(inner net.Listener, opts ...Option) *Listener {
	cfg := newConfig(opts)
	if cfg.err == nil && cfg.clientOnly {
		cfg.fail("WithTether given to NewListener")
	}
	if cfg.err == nil && inner == nil {
		cfg.fail("nil net.Listener")
	}
	l := &Listener{
		inner:      inner,
		cfg:        cfg,
		hs:         make(chan struct{}, cfg.maxHandshakes),
		acceptq:    make(chan *Conn),
		done:       make(chan struct{}),
		stopped:    make(chan struct{}),
		sessions:   make(map[[16]byte]*Conn),
		handshakes: make(map[net.Conn]struct{}),
	}
	if cfg.err != nil {
		l.err, l.closed, l.unstarted = cfg.err, true, true
		close(l.done)
		return l
	}
	l.wg.Add(1)
	go l.serve()
	return l
}

// Accept waits for a new session and returns its server end, a *Conn.
// After Close it returns an error matching net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptSession()
	if err != nil {
		return nil, err // never a typed nil
	}
	return c, nil
}

// AcceptSession is Accept with the concrete type.
func (l *Listener) AcceptSession() (*Conn, error) {
	select {
	case c := <-l.acceptq:
		l.mu.Lock()
		c.pending = false
		if c.removed {
			l.held--
		}
		l.mu.Unlock()
		return c, nil
	case <-l.done:
	case <-l.stopped:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return nil, net.ErrClosed
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr {
	if l.inner == nil {
		return nil
	}
	return l.inner.Addr()
}

// Len returns the number of sessions the Listener holds, as its session
// cap counts them: those not ended, and those that ended while they waited
// for Accept (Accept still returns them, with the bytes they received).
func (l *Listener) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Close stops accepting, closes the inner listener, and ends every session
// at once, accepted or not: each is told so, if its transport is up, and
// its client's operations return an error matching ErrSessionLost once
// they have read what they had received (as http.Server.Close ends its
// connections). The server's Conns return it too. Close waits for the
// Listener's goroutines and the sessions' to stop. A second Close returns
// net.ErrClosed.
//
// The close frames go before the bytes the sessions have not sent yet, and
// Close gives them 250 ms in all: a client whose path still carries more
// than that (bytes in the socket buffers, on a slow link) is not told, and
// its Tether redials the closed listener as its handler decides.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		unstarted := l.unstarted
		l.unstarted = false
		l.mu.Unlock()
		if unstarted && l.inner != nil {
			return l.inner.Close() // it owns inner, started or not
		}
		if unstarted {
			return nil
		}
		return net.ErrClosed
	}
	l.closed = true
	close(l.done)
	ss := make([]*Conn, 0, len(l.sessions))
	for _, c := range l.sessions {
		ss = append(ss, c)
	}
	for raw := range l.handshakes {
		closeHard(raw)
	}
	l.mu.Unlock()
	// Tell every attached client, then end every session. The inner
	// listener closes after the clients' answers (or the wait's end):
	// closing a QUIC listener closes its connections at once, with the
	// close frames not yet sent.
	told := make([]*Conn, 0, len(ss))
	for _, c := range ss {
		c.mu.Lock()
		if w, _ := c.writerLocked(); !c.ended && w != nil {
			c.queueCloseLocked(closeLost) // unless its Close queued one: it is told all the same
			told = append(told, c)
		}
		c.mu.Unlock()
	}
	// One wait for them all: a client answers once it has read the close
	// frame, which ends the session (done); one whose sender is stuck on a
	// peer that does not read, or that does not answer, costs the wait.
	t := time.NewTimer(250 * time.Millisecond)
wait:
	for _, c := range told {
		select {
		case <-c.done:
		case <-t.C:
			break wait
		}
	}
	t.Stop()
	err := l.inner.Close()
	for _, c := range ss {
		c.finish(lost(errShutdown))
	}
	l.wg.Wait()
	for _, c := range ss {
		c.wg.Wait()
	}
	return err
}

func (l *Listener) logf(msg string, args ...any) {
	if l.cfg.logger != nil {
		l.cfg.logger.Debug(msg, args...)
	}
}

// serve is the accept loop.
func (l *Listener) serve() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// As net/http: a passing shortage of file descriptors.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-l.done:
					t.Stop()
					return
				}
				continue
			}
			l.mu.Lock()
			if l.err == nil {
				l.err = err
			}
			l.mu.Unlock()
			close(l.stopped)
			return
		}
		delay = 0
		select {
		case l.hs <- struct{}{}:
		default:
			// Too many handshakes in progress: shed this one. Its client
			// retries as its handler says.
			l.logf("tether/session: handshake refused: too many in progress", "remote", raw.RemoteAddr())
			raw.Close()
			continue
		}
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

// handshake runs the server's side of one handshake on raw.
func (l *Listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	released := false
	release := func() { // the handshake's slot, once
		if !released {
			released = true
			<-l.hs
		}
	}
	defer release()
	raw.SetDeadline(time.Now().Add(l.cfg.handshakeTimeout))
	kept := false
	defer func() {
		if !kept {
			raw.Close()
		}
	}()
	if !l.track(raw, true) {
		return
	}
	defer l.track(raw, false)
	if _, err := raw.Write(putPreface(make([]byte, 0, prefaceLen), roleServer)); err != nil {
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	if err := readPreface(raw, roleClient); err != nil {
		if errors.Is(err, ErrNotSession) || errors.Is(err, errVersion) {
			l.reject(raw, rejectVersion)
			// Drain what the client sent before the end, so that it gets
			// a clean EOF after the reject rather than a reset.
			if cw, ok := raw.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				io.Copy(io.Discard, io.LimitReader(raw, 64<<10))
			}
		}
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	var buf [resumeLen]byte
	if _, err := io.ReadFull(raw, buf[:1]); err != nil {
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	n := helloLen(buf[0])
	if n == 0 {
		l.reject(raw, rejectBad)
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", protoErr("unknown handshake message %#x", buf[0]))
		return
	}
	if _, err := io.ReadFull(raw, buf[1:n]); err != nil {
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	h, err := decodeHello(buf[:n])
	if err != nil {
		l.reject(raw, rejectBad)
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	exp, err := exporter(raw)
	if err != nil || (h.flags&flagExporter != 0) != (exp != nil) {
		l.reject(raw, rejectBad)
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", errExporter)
		return
	}
	var (
		code byte
		c    *Conn
	)
	if h.typ == msgNew {
		c, code, err = l.open(raw, &h, exp)
	} else {
		code, err = l.resume(raw, &h, exp)
	}
	if err != nil {
		if code != 0 {
			l.reject(raw, code)
		}
		l.logf("tether/session: handshake failed", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	kept = true
	if c == nil {
		return
	}
	// A new session waits for Accept without its handshake's slot, so
	// that resumes go on while the application is slow to accept.
	release()
	l.track(raw, false)
	select {
	case l.acceptq <- c:
	case <-l.done: // Close ends it
	}
}

// track adds raw to the handshakes in progress (false: the Listener is
// closed), or removes it: Close closes them.
func (l *Listener) track(raw net.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.handshakes, raw)
		return true
	}
	if l.closed {
		return false
	}
	l.handshakes[raw] = struct{}{}
	return true
}

func (l *Listener) reject(raw net.Conn, code byte) {
	r := reply{typ: msgReject, code: code}
	raw.Write(r.append(nil))
}

// open creates a new session. It returns a reject code with an error.
func (l *Listener) open(raw net.Conn, h *hello, exp []byte) (*Conn, byte, error) {
	priv, err := newKeyPair()
	if err != nil {
		return nil, rejectBusy, err
	}
	shared, err := sharedSecret(priv, h.pub)
	if err != nil {
		return nil, rejectBad, protoErr("client's key: %v", err)
	}
	r := reply{typ: msgAccept, window: uint32(l.cfg.startWindow()), lifetime: uint32(l.cfg.lifetime / time.Millisecond)}
	copy(r.pub[:], priv.PublicKey().Bytes())
	rand.Read(r.id[:])
	key, err := deriveKey(shared, exp, h.pub[:], r.pub[:], r.id)
	if err != nil {
		return nil, rejectBusy, err
	}
	r.mac = acceptMAC(key, h.pub[:], r.pub[:], r.id)

	c := newConn(l.cfg, false)
	c.l, c.id, c.key = l, r.id, key
	c.peerLimit, c.ackEvery = uint64(h.window), ackEvery(h.window)
	c.announceLocked(uint64(r.window), time.Now())
	// A resume of the session (its client lost this connection as soon as
	// the accept reached it) waits until this connection is attached, so
	// that it is not attached over the resume's.
	c.resumeMu.Lock()
	defer c.resumeMu.Unlock()
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return nil, rejectShutdown, errShutdown
	case l.held >= l.cfg.maxSessions:
		l.mu.Unlock()
		return nil, rejectBusy, errBusy
	}
	l.sessions[c.id] = c
	l.held++
	c.pending = true
	l.mu.Unlock()

	if _, err := raw.Write(r.append(make([]byte, 0, acceptLen))); err != nil {
		l.mu.Lock()
		c.pending = false // never to be accepted
		l.mu.Unlock()
		l.remove(c)
		return nil, 0, err
	}
	raw.SetDeadline(time.Time{})
	c.mu.Lock()
	if c.ended { // the Listener closed meanwhile
		c.mu.Unlock()
		return nil, 0, errShutdown
	}
	c.startLocked()
	c.attachLocked(raw, time.Now())
	c.mu.Unlock()
	l.logf("tether/session: new session", "remote", raw.RemoteAddr(), "id", c.id[:])
	return c, 0, nil
}

// resume joins raw to the session it names. It returns a reject code with
// an error.
func (l *Listener) resume(raw net.Conn, h *hello, exp []byte) (byte, error) {
	l.mu.Lock()
	c := l.sessions[h.id]
	l.mu.Unlock()
	if c == nil {
		// The same work and the same answer as for a bad MAC: no oracle.
		resumeMAC(make([]byte, 32), h, exp)
		return rejectLost, errors.New("tether/session: resume of an unknown session")
	}
	if want := resumeMAC(c.key, h, exp); !hmac.Equal(want[:], h.mac[:]) {
		return rejectLost, errors.New("tether/session: resume with a bad MAC")
	}
	c.resumeMu.Lock()
	defer c.resumeMu.Unlock()
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return rejectLost, errors.New("tether/session: resume of an ended session")
	}
	if h.attempt <= c.attempt {
		c.mu.Unlock()
		return rejectStale, errors.New("tether/session: resume with a stale attempt counter")
	}
	c.attempt = h.attempt
	// Detach the old transport (the new epoch: its reader feeds no more
	// frames, so the received count is final) and wait until its reader
	// has stopped: a Read of it may still be copying a data frame's
	// payload into the receive buffer (next), where the new transport's
	// reader writes the replay.
	old, oldDone := c.tr, c.trDone
	c.detachLocked()
	c.mu.Unlock()
	if old != nil {
		closeHard(old)
	}
	if oldDone != nil {
		<-oldDone
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return rejectLost, errors.New("tether/session: resume of an ended session")
	}
	if h.recv < c.sAcked || h.recv > c.sWritten {
		c.mu.Unlock()
		return rejectBad, protoErr("client received %d bytes of %d written, %d acknowledged", h.recv, c.sWritten, c.sAcked)
	}
	r := reply{typ: msgResumed, recv: c.rRecv}
	c.mu.Unlock()
	r.mac = resumedMAC(c.key, h, r.recv, exp)
	if _, err := raw.Write(r.append(make([]byte, 0, resumedLen))); err != nil {
		return 0, err
	}
	raw.SetDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return 0, errors.New("tether/session: session ended during its resume")
	}
	c.resumedLocked(h.recv, time.Now())
	c.attachLocked(raw, time.Now())
	l.logf("tether/session: resumed", "remote", raw.RemoteAddr(), "id", c.id[:], "attempt", h.attempt)
	return 0, nil
}

// remove forgets c.
func (l *Listener) remove(c *Conn) {
	l.mu.Lock()
	if l.sessions[c.id] == c {
		delete(l.sessions, c.id)
		// A session not yet accepted stays held until Accept takes it.
		if c.removed = true; !c.pending {
			l.held--
		}
	}
	l.mu.Unlock()
}

// attachLocked makes raw the server session's transport and starts its
// reader.
func (c *Conn) attachLocked(raw net.Conn, now time.Time) {
	c.epoch++
	c.tr = raw
	c.trDone = make(chan struct{})
	c.laddr, c.raddr = raw.LocalAddr(), raw.RemoteAddr()
	c.blocked = false
	c.lastRecv = now
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	c.setStateLocked(tether.Ready)
	if c.watchdog != nil {
		// The liveness check sleeps while detached (watch).
		c.watchdog.Reset(c.cfg.keepAlive + c.cfg.keepAliveTimeout)
	}
	c.wg.Add(1)
	go c.serveTransport(raw, c.epoch, c.trDone)
	c.kickLocked()
}

// detachLocked drops the server session's transport (the caller closes
// it) and starts the detached-lifetime clock.
func (c *Conn) detachLocked() {
	c.tr = nil
	c.epoch++
	c.setStateLocked(tether.Connecting)
	if c.expiry == nil && !c.ended {
		// The clock runs from the first detach: a failed resume keeps it.
		c.expiryGen++
		gen := c.expiryGen
		c.expiry = time.AfterFunc(c.cfg.lifetime, func() { c.expire(gen) })
	}
}

// detach drops the transport of epoch, if it is still the current one.
func (c *Conn) detach(epoch uint64) {
	c.mu.Lock()
	if c.epoch != epoch || c.tr == nil {
		c.mu.Unlock()
		return
	}
	tr := c.tr
	c.detachLocked()
	c.mu.Unlock()
	closeHard(tr)
}

// expire ends a session that stayed detached for its lifetime; gen names
// the timer that fired (an attach may have stopped it too late).
func (c *Conn) expire(gen uint64) {
	c.mu.Lock()
	stale := c.tr != nil || c.expiry == nil || c.expiryGen != gen
	c.mu.Unlock()
	if !stale {
		c.l.logf("tether/session: detached session expired", "id", c.id[:])
		c.finish(lost(errExpired))
	}
}

// serveTransport is a server session's transport reader for one epoch.
func (c *Conn) serveTransport(raw net.Conn, epoch uint64, done chan struct{}) {
	defer c.wg.Done()
	defer close(done)
	var r frameReader
	for {
		p := c.next(&r)
		n, err := raw.Read(p)
		if n > 0 && !c.took(&r, p[:n], epoch) {
			return
		}
		if err != nil {
			c.detach(epoch)
			return
		}
	}
}
