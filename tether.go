package tether

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A Tether is a net.Conn that re-dials its underlying connection, as its
// DisconnectHandler decides, whenever a Read or a Write fails. Code that reads
// and writes it sees a reconnect only through the handler's events (and, for
// writes, see the package documentation on what a lost connection may lose).
//
// Reads and Writes may run concurrently, as on any net.Conn; a Read blocked on
// the connection never blocks a Write, and the reverse. However many
// operations see one connection fail, the handler runs one reconnect sequence
// for it, in a goroutine started for that outage; the operations wait for its
// outcome, their deadline, or Close. A healthy Tether has no goroutine of its
// own.
type Tether struct {
	d   Dialer
	h   DisconnectHandler
	cfg config

	cur        atomic.Pointer[link] // never nil once the Tether is returned
	closed     atomic.Bool
	halfClosed atomic.Bool
	// dlNano holds the user's deadlines (UnixNano; 0: none), and dlSeq
	// counts their changes: odd while setDeadline is applying one. Each raw
	// operation notes dlSeq when it begins, to tell whether the deadline
	// moved under it (see userTimeout).
	dlNano [2]atomic.Int64
	dlSeq  [2]atomic.Uint64

	rsem, wsem sem // serialise Reads and Writes, separately

	// rpend is an error met by a Read that returned bytes: the next Read
	// handles it first. Guarded by rsem.
	rpend *pendingErr

	mu sync.Mutex
	// done is closed on Close or give-up; it is made when first needed, so
	// that an idle Tether costs less memory.
	done         chan struct{}
	addr         string        // the address of the next dial
	outage       *outage       // the reconnect in progress, if any
	err          error         // why the Tether ended: nil while alive
	rerr, werr   error         // what Read and Write return once it ended
	rdl, wdl     time.Time     // the user's deadlines
	rdlCh, wdlCh chan struct{} // closed when a deadline changes; made by waiters
	failures     int           // failed dials since the last stable connection
	total        int           // failed dials over the Tether's life
	since        time.Time     // when the current outage began
}

// pendingErr is an error met by a Read that returned bytes, on link c, with
// the deadline counter seq0 noted when that Read began.
type pendingErr struct {
	err  error
	c    *link
	seq0 uint64
}

// link is one connection of a Tether, immutable once published. A down link
// (conn == nil) stands for an outage or the end: it keeps the generation and
// the addresses of the connection it replaces.
type link struct {
	conn         net.Conn
	gen          uint64
	addr         string // the address dialed
	up           time.Time
	laddr, raddr net.Addr
}

func newLink(c net.Conn, gen uint64, addr string) *link {
	return &link{conn: c, gen: gen, addr: addr, up: time.Now(), laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
}

func (l *link) down() *link {
	if l.conn == nil {
		return l
	}
	return &link{gen: l.gen, addr: l.addr, laddr: l.laddr, raddr: l.raddr}
}

// outage is one reconnect sequence. Its results are written before done is
// closed.
type outage struct {
	done    chan struct{}
	ctx     context.Context // the handler's and the dials' ctx: Close cancels it
	cancel  context.CancelFunc
	down    *link    // the down link that stands for the lost one, if any
	pending net.Conn // a new connection in OnConnect, for Close to find
	ignored bool     // Ignore on Disconnected: each operation gets its own error
	err     error    // the error for waiting operations (Ignore on Unreachable)
}

type direction int

const (
	dirRead direction = iota
	dirWrite
)

var (
	errNilDialer  = errors.New("tether: nil Dialer")
	errEmptyAddr  = errors.New("tether: empty address")
	errNilContext = errors.New("tether: nil Context")
	errNilConn    = errors.New("tether: nil net.Conn")
	errEmptyNext  = errors.New("tether: handler set an empty address")
	errNilDialed  = errors.New("tether: Dialer returned a nil net.Conn and no error")
)

// Dial connects to addr with d and returns a Tether that reconnects as h
// decides. A nil h is DefaultHandler().
//
// Dial returns once a connection is up and accepted (h saw Connected and did
// not give up), the handler gives up (Dial returns the cause), or ctx is done.
// The handler is asked about every failed dial (Unreachable) and may retry
// for as long as it likes: with context.Background() and a server that never
// comes up, Dial with the default policy retries for ever. Bound it with a
// ctx deadline, a middleware such as MaxAttempts, or WithNoInitialRetry.
// As with net.Dialer, once Dial has returned ctx no longer matters: the
// handler then gets the Tether's own ctx, done when the Tether ends.
func Dial(ctx context.Context, d Dialer, addr string, h DisconnectHandler, opts ...Option) (*Tether, error) {
	t, err := newTether(ctx, d, addr, h, opts)
	if err != nil {
		return nil, err
	}
	ev := Event{Addr: addr}
	l, err, out := t.connect(ctx, &ev, time.Now(), true)
	if out != connected {
		return nil, err
	}
	t.install(l)
	return t, nil
}

// New returns a Tether over conn, a connection the caller already has, that
// re-dials addr with d when conn fails (io-tether's Tether::new). No Connected
// event is sent for conn. A nil h is DefaultHandler().
func New(conn net.Conn, d Dialer, addr string, h DisconnectHandler, opts ...Option) (*Tether, error) {
	if conn == nil {
		return nil, errNilConn
	}
	t, err := newTether(context.Background(), d, addr, h, opts)
	if err != nil {
		return nil, err
	}
	t.install(newLink(conn, 1, addr))
	return t, nil
}

func newTether(ctx context.Context, d Dialer, addr string, h DisconnectHandler, opts []Option) (*Tether, error) {
	switch {
	case ctx == nil:
		return nil, errNilContext
	case d == nil:
		return nil, errNilDialer
	case addr == "":
		return nil, errEmptyAddr
	}
	if f, ok := d.(DialerFunc); ok && f == nil {
		return nil, errNilDialerFunc
	}
	if f, ok := h.(DisconnectHandlerFunc); ok && f == nil {
		return nil, errNilHandlerFunc
	}
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	if h == nil {
		h = DefaultHandler()
	}
	t := &Tether{d: d, h: h, cfg: cfg, addr: addr}
	return t, nil
}

// Read reads from the current connection. When the connection fails, Read
// waits for the reconnect and reads from the next one; bytes that arrived
// with an error are returned first. After CloseWrite, the peer's clean EOF
// is returned as io.EOF without a reconnect.
//
// After the handler gave up, Read returns io.EOF when the connection ended
// with the peer's clean EOF (or under PropagateNone), and otherwise an error
// that wraps ErrGaveUp and the cause. After Close it returns net.ErrClosed.
func (t *Tether) Read(p []byte) (int, error) {
	n, _, err := t.read(p)
	return n, err
}

// ReadGeneration reads as Read does, and also returns the generation of the
// connection the bytes came from (see Generation; 0 with an error). The bytes
// of one Read always come from one connection, so a framed protocol that
// compares the generations of its reads never splices a frame from two
// connections. Comparing Generation() around a Read is not enough when
// another goroutine (a writer) can reconnect the Tether meanwhile.
func (t *Tether) ReadGeneration(p []byte) (n int, gen uint64, err error) {
	n, c, err := t.read(p)
	if c != nil {
		gen = c.gen
	}
	return n, gen, err
}

// read is Read, returning the link that served the bytes.
func (t *Tether) read(p []byte) (int, *link, error) {
	if !t.rsem.tryLock() {
		if err := t.lockSlow(&t.rsem, dirRead); err != nil {
			return 0, nil, err
		}
	}
	defer t.rsem.unlock()
	if p := t.rpend; p != nil {
		t.rpend = nil
		if err := t.recover(p.c, p.err, dirRead, p.seq0); err != nil {
			return 0, nil, err
		}
	}
	for {
		c := t.cur.Load()
		if c.conn == nil {
			if err := t.awaitLink(c, dirRead); err != nil {
				return 0, nil, err
			}
			continue
		}
		seq0 := t.dlSeq[dirRead].Load()
		if t.cfg.readIdle > 0 {
			t.armWatchdog(c.conn, time.Now(), t.dlNano[dirRead].Load())
		}
		n, err := c.conn.Read(p)
		if err == nil {
			return n, c, nil
		}
		if t.cfg.readIdle > 0 {
			err = t.watchdogErr(err, seq0)
		}
		if n > 0 {
			if !t.userTimeout(err, dirRead, seq0) {
				t.rpend = &pendingErr{err, c, seq0}
			}
			return n, c, nil
		}
		if err := t.recover(c, err, dirRead, seq0); err != nil {
			return 0, nil, err
		}
	}
}

// Write writes p to the current connection and returns len(p), nil, or an
// error. When the connection fails, the bytes it did not accept go to the
// next connection, before any later Write's bytes; under WithDropUnwritten
// they are dropped and Write returns at once with an error wrapping
// ErrDropped.
//
// A connection that the peer closed cleanly often accepts one more Write
// (the peer's kernel answers it with a reset): those bytes are lost, and only
// the next Write learns of the loss.
//
// After the handler gave up, Write returns an error wrapping ErrGaveUp (never
// io.EOF). After Close it returns net.ErrClosed.
func (t *Tether) Write(p []byte) (int, error) {
	if !t.wsem.tryLock() {
		if err := t.lockSlow(&t.wsem, dirWrite); err != nil {
			return 0, err
		}
	}
	defer t.wsem.unlock()
	n := 0
	for {
		c := t.cur.Load()
		if c.conn == nil {
			if err := t.awaitLink(c, dirWrite); err != nil {
				return n, err
			}
			continue
		}
		seq0 := t.dlSeq[dirWrite].Load()
		m, err := c.conn.Write(p[n:])
		n += m
		if err == nil {
			if n < len(p) {
				continue
			}
			return n, nil
		}
		o, started, e := t.fail(c, err, dirWrite, seq0)
		if e == nil && t.cfg.dropUnwritten && (started || n > 0) {
			// This Write met the loss, or left part of its bytes on the
			// dead connection: it drops the rest. A Write that merely
			// found the loss already being handled waits, as later
			// Writes do.
			return n, fmt.Errorf("%w (%d of %d bytes): %w", ErrDropped, len(p)-n, len(p), err)
		}
		if o != nil {
			e = t.await(o, dirWrite, err)
		}
		if e != nil {
			return n, e
		}
	}
}

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

// recover handles err, met on link c: it returns nil when the operation
// should go on with the current link, or the error the operation returns.
func (t *Tether) recover(c *link, err error, dir direction, seq0 uint64) error {
	o, _, e := t.fail(c, err, dir, seq0)
	if o != nil {
		return t.await(o, dir, err)
	}
	return e
}

// fail decides about err, met by an operation on link c. It returns the
// error the operation returns, or the outage to wait for (started reports
// whether this call started it), or neither when a newer link is already
// there. seq0 is dlSeq[dir] when the operation began.
func (t *Tether) fail(c *link, err error, dir direction, seq0 uint64) (o *outage, started bool, _ error) {
	if t.closed.Load() {
		return nil, false, net.ErrClosed
	}
	if t.userTimeout(err, dir, seq0) {
		return nil, false, err
	}
	if t.halfClosed.Load() {
		// After CloseWrite the exchange is ending: the peer's EOF is
		// final, and a Write fails on the half-closed connection.
		if dir == dirWrite || err == io.EOF {
			return nil, false, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return nil, false, t.endErrLocked(dir)
	}
	if t.cur.Load() != c {
		return nil, false, nil // stale: an error of a connection already replaced
	}
	if t.outage != nil {
		return t.outage, false, nil
	}
	return t.startLocked(c, err), true, nil
}

// awaitLink waits for a connection when the current link c is down.
func (t *Tether) awaitLink(c *link, dir direction) error {
	t.mu.Lock()
	if t.err != nil {
		defer t.mu.Unlock()
		return t.endErrLocked(dir)
	}
	if t.cur.Load() != c {
		t.mu.Unlock()
		return nil
	}
	o := t.outage
	if o == nil {
		// The last outage ended without a connection (Ignore on
		// Unreachable): this operation dials again.
		o = t.startLocked(nil, nil)
	}
	t.mu.Unlock()
	return t.await(o, dir, nil)
}

// await waits for the outcome of o; own is the error the operation met.
func (t *Tether) await(o *outage, dir direction, own error) error {
	if err := t.block(dir, o.done); err != nil {
		return err
	}
	switch {
	case o.ignored && own != nil:
		return own
	case o.ignored:
		return nil // it waited on a connection put back: go on with it
	case o.err != nil:
		return o.err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.endErrLocked(dir)
	}
	return nil
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

// lockSlow acquires s when tryLock failed, honouring the deadline of dir and
// the end of the Tether.
func (t *Tether) lockSlow(s *sem, dir direction) error {
	t.mu.Lock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1) // made when first needed: most Tethers never wait
	}
	wake := s.wake
	t.mu.Unlock()
	// unlock reads s.wake only after it sees this waiter: the write above
	// happens before.
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	for !s.tryLock() {
		if err := t.block(dir, wake); err != nil {
			return err
		}
	}
	return nil
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

// endErrLocked is the error an operation returns once the Tether ended.
func (t *Tether) endErrLocked(dir direction) error {
	if dir == dirRead {
		return t.rerr
	}
	return t.werr
}

// startLocked starts the reconnect for the loss of lost (nil: a dial after an
// ignored Unreachable). It takes the link down at once, so that no operation
// uses the failed connection while the handler decides (a half-closed TCP
// connection would swallow a Write's bytes).
func (t *Tether) startLocked(lost *link, cause error) *outage {
	o := &outage{done: make(chan struct{})}
	// Each outage has a ctx of its own, dropped when it ends, so that a
	// healthy Tether keeps none (nor what dials leave in one).
	o.ctx, o.cancel = context.WithCancel(context.Background())
	if lost != nil {
		o.down = lost.down()
		t.cur.Store(o.down)
	}
	t.outage = o
	go t.run(o, lost, cause)
	return o
}

// run is the goroutine of one outage: the Disconnected event, then dials until
// a connection is accepted, the handler gives up or ignores, or the Tether is
// closed.
func (t *Tether) run(o *outage, lost *link, cause error) {
	defer func() {
		t.mu.Lock()
		t.outage = nil
		t.mu.Unlock()
		o.cancel()
		close(o.done)
	}()
	ctx := o.ctx
	var ev Event
	now := time.Now()
	t.mu.Lock()
	if lost != nil {
		uptime := now.Sub(lost.up)
		if uptime >= t.cfg.stability {
			t.failures = 0
		} else {
			t.failures++
			t.total++
		}
		t.since = now
		ev = Event{Kind: Disconnected, Err: cause, Addr: t.addr, Attempt: t.failures, Dialed: lost.addr,
			Total: t.total, Uptime: uptime, Since: now, Generation: lost.gen}
	} else {
		ev.Addr = t.addr
	}
	since := t.since
	t.mu.Unlock()

	if lost != nil {
		switch t.handle(ctx, &ev) {
		case Ignore:
			// Put the connection back: operations that waited meanwhile
			// go on with it.
			t.mu.Lock()
			if t.err == nil && t.cur.Load() == o.down {
				t.cur.Store(lost)
			}
			t.mu.Unlock()
			o.ignored, o.err = true, cause
			return
		case GiveUp:
			t.end(orErr(ev.Err, cause), cause)
			return
		}
		// Close the lost connection so that operations blocked on it wake
		// (and wait for the new one).
		lost.conn.Close()
	}
	l, err, out := t.connect(ctx, &ev, since, false)
	switch out {
	case connected:
		t.install(l)
	case gaveUp:
		t.end(err, orErr(cause, err))
	case ignored:
		o.err = err
	}
}

func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

type outcome int

const (
	connected outcome = iota // a connection was accepted
	gaveUp                   // err is the cause
	ignored                  // err is the dial error
	stopped                  // ctx is done
)

// connect dials until a connection is accepted, the handler gives up or
// ignores a failed dial, or ctx is done. ev is the event that led here: its
// Addr and Delay apply to the first dial.
func (t *Tether) connect(ctx context.Context, ev *Event, since time.Time, first bool) (*link, error, outcome) {
	var last error
	for {
		if ev.Delay > 0 && !sleep(ctx, ev.Delay) {
			return nil, stopErr(ctx, last), stopped
		}
		if ctx.Err() != nil {
			return nil, stopErr(ctx, last), stopped
		}
		addr := ev.Addr
		start := time.Now()
		conn, err := t.dialOnce(ctx, addr)
		dialTime := time.Since(start)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil, stopErr(ctx, orErr(err, last)), stopped
		}
		if err != nil {
			last = err
			if first && t.cfg.noInitialRetry {
				return nil, err, gaveUp
			}
			t.mu.Lock()
			t.failures++
			t.total++
			*ev = Event{Kind: Unreachable, Err: err, Addr: addr, Dialed: addr, Attempt: t.failures,
				Total: t.total, Since: since, Generation: t.cur.Load().genOrZero(), DialTime: dialTime}
			t.mu.Unlock()
			switch t.handle(ctx, ev) {
			case GiveUp:
				return nil, orErr(ev.Err, err), gaveUp
			case Ignore:
				return nil, err, ignored
			}
			continue
		}
		kind := Reconnected
		if first {
			kind = Connected
		}
		t.mu.Lock()
		*ev = Event{Kind: kind, Addr: addr, Dialed: addr, Attempt: t.failures, Total: t.total,
			Since: since, Generation: t.cur.Load().genOrZero() + 1, DialTime: dialTime, Conn: conn}
		t.mu.Unlock()
		if t.handle(ctx, ev) == GiveUp {
			conn.Close()
			return nil, orErr(ev.Err, ErrRejected), gaveUp
		}
		if ctx.Err() != nil {
			conn.Close()
			return nil, stopErr(ctx, nil), stopped
		}
		return newLink(conn, ev.Generation, addr), nil, connected
	}
}

func (l *link) genOrZero() uint64 {
	if l == nil {
		return 0
	}
	return l.gen
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
	if t.cfg.onConnect == nil {
		return conn, nil
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		conn.Close()
		return nil, net.ErrClosed
	}
	o := t.outage // nil inside Dial, where Close cannot happen
	if o != nil {
		o.pending = conn
	}
	t.mu.Unlock()

	octx, cancel := context.WithTimeout(ctx, t.cfg.onConnectTimeout)
	dl, _ := octx.Deadline()
	conn.SetDeadline(dl)
	err = t.cfg.onConnect(octx, conn)
	cancel()

	if o != nil {
		t.mu.Lock()
		o.pending = nil
		t.mu.Unlock()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("tether: OnConnect: %w", err)
	}
	return conn, nil
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

// install makes l the current link, with the user's deadlines, unless the
// Tether ended meanwhile.
func (t *Tether) install(l *link) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		l.conn.Close()
		return
	}
	l.conn.SetReadDeadline(t.rdl)
	l.conn.SetWriteDeadline(t.wdl)
	t.halfClosed.Store(false) // CloseWrite applied to the connection replaced
	t.cur.Store(l)
}

// end gives up for good: cause is what Err reports, ioErr the I/O error that
// began the outage (for PropagateIO).
func (t *Tether) end(cause, ioErr error) {
	t.mu.Lock()
	if t.err != nil {
		t.mu.Unlock()
		return
	}
	t.err = cause
	var e error
	switch t.cfg.propagation {
	case PropagateCause:
		e = cause
	case PropagateIO:
		e = orErr(ioErr, cause)
	}
	switch e {
	case nil:
		t.rerr, t.werr = io.EOF, ErrGaveUp
	case io.EOF:
		t.rerr, t.werr = io.EOF, fmt.Errorf("%w: %w", ErrGaveUp, ErrPeerClosed)
	default:
		t.rerr = fmt.Errorf("%w: %w", ErrGaveUp, e)
		t.werr = t.rerr
	}
	c := t.cur.Load()
	if c != nil {
		t.cur.Store(c.down())
	}
	t.stopLocked()
	t.mu.Unlock()
	if c != nil && c.conn != nil {
		c.conn.Close()
	}
}

// Close closes the Tether: it stops any reconnect (a backoff wait, a dial,
// OnConnect), closes the current connection and any new one, and makes every
// blocked and later operation return net.ErrClosed. It does not wait for a
// handler that ignores its ctx. A second Close returns net.ErrClosed; Close
// after a give-up returns nil and Err keeps the cause.
func (t *Tether) Close() error {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return net.ErrClosed
	}
	t.closed.Store(true)
	if t.err == nil {
		t.err = net.ErrClosed
		t.stopLocked()
	}
	t.rerr, t.werr = net.ErrClosed, net.ErrClosed
	c := t.cur.Load()
	t.cur.Store(c.down())
	var p net.Conn
	if t.outage != nil {
		p = t.outage.pending
	}
	t.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
	}
	if p != nil {
		p.Close()
	}
	return nil
}

// CloseWrite shuts down the writing side of the current connection, when it
// supports it (*net.TCPConn, *tls.Conn, a QUIC stream; otherwise it returns an
// error wrapping errors.ErrUnsupported). It never triggers a reconnect, and
// after it the peer's clean EOF is final: Read returns io.EOF. CloseWrite
// applies to the current connection only; a connection that later fails with
// another error is still replaced.
func (t *Tether) CloseWrite() error {
	if !t.wsem.tryLock() {
		if err := t.lockSlow(&t.wsem, dirWrite); err != nil {
			return err
		}
	}
	defer t.wsem.unlock()
	for {
		c := t.cur.Load()
		if c.conn == nil {
			if err := t.awaitLink(c, dirWrite); err != nil {
				return err
			}
			continue
		}
		cw, ok := c.conn.(interface{ CloseWrite() error })
		if !ok {
			return fmt.Errorf("tether: CloseWrite on %T: %w", c.conn, errors.ErrUnsupported)
		}
		t.halfClosed.Store(true)
		return cw.CloseWrite()
	}
}

// Done returns a channel that is closed once the Tether is closed or its
// handler gave up.
func (t *Tether) Done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.doneLocked()
}

// closedChan is the Done channel of a Tether that ended before anyone asked
// for it.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// doneLocked returns t.done, made when first needed.
func (t *Tether) doneLocked() chan struct{} {
	if t.done == nil {
		if t.err != nil {
			return closedChan
		}
		t.done = make(chan struct{})
	}
	return t.done
}

// stopLocked closes Done and cancels the outage's ctx, once t.err is set.
func (t *Tether) stopLocked() {
	if t.done != nil {
		close(t.done)
	}
	if t.outage != nil {
		t.outage.cancel()
	}
}

// Err returns nil while the Tether is alive; then why it ended: the cause of
// the give-up (Event.Err), or net.ErrClosed after Close.
func (t *Tether) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Generation returns the number of the current connection: 1 for the first,
// incremented by each reconnect (during an outage, the lost connection's).
// To know which connection the bytes of a Read came from, use
// ReadGeneration: a writer may reconnect the Tether between a Read and a
// call to Generation.
func (t *Tether) Generation() uint64 { return t.cur.Load().gen }

// Conn returns the current underlying connection, for its TLS state or peer
// certificates, or nil during an outage and after the end. It is valid until
// the next reconnect; reading from or writing to it bypasses the Tether.
func (t *Tether) Conn() net.Conn { return t.cur.Load().conn }

// Addr returns the address of the next dial (the handler may have changed it).
func (t *Tether) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

// LocalAddr returns the local address of the current connection, or of the
// last one during an outage.
func (t *Tether) LocalAddr() net.Addr { return t.cur.Load().laddr }

// RemoteAddr returns the remote address of the current connection, or of the
// last one during an outage.
func (t *Tether) RemoteAddr() net.Addr { return t.cur.Load().raddr }

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

func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func stopErr(ctx context.Context, last error) error {
	err := context.Cause(ctx)
	if err == nil {
		err = net.ErrClosed
	}
	if last != nil {
		return fmt.Errorf("tether: %w (last dial error: %w)", err, last)
	}
	return err
}

// sem is a mutex whose waiters can give up: the fast path is one atomic
// compare-and-swap; waiters select on wake with their deadline and Close.
type sem struct {
	state   atomic.Int32
	waiters atomic.Int32
	wake    chan struct{} // made by the first waiter, under Tether.mu
}

func (s *sem) tryLock() bool { return s.state.CompareAndSwap(0, 1) }

func (s *sem) unlock() {
	s.state.Store(0)
	if s.waiters.Load() > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
