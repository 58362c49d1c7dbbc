package tether

import (
	"context"
	"errors"
	"net"
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

	cur    atomic.Pointer[link] // never nil once the Tether is returned
	closed atomic.Bool
	// state is the State, written under mu by setStateLocked alone.
	state atomic.Int32
	// halfClosed is the generation of the connection whose writing side
	// CloseWrite shut (0: none): a loss of that connection is final.
	halfClosed atomic.Uint64
	// half holds what is per direction (dirRead, dirWrite).
	half [2]half
	// wd is the read watchdog (WithReadIdleTimeout), nil when off.
	wd *watchdog

	mu         sync.Mutex
	x          *extra    // what most Tethers never need, made when first needed
	addr       string    // the address of the next dial
	rec        *recovery // the reconnect in progress, if any
	err        error     // why the Tether ended: nil while alive
	rerr, werr error     // what Read and Write return once it ended
	failures   int       // failed dials since the last stable connection
	total      int       // failed dials over the Tether's life
	since      time.Time // when the current outage began
}

// half is what a Tether keeps per direction, reads or writes.
type half struct {
	lock opLock // serialises the operations of the direction
	// seq counts the changes of the user's deadline: odd while
	// setDeadline is applying one. Each raw operation notes it when it
	// begins, to tell whether the deadline moved under it (see
	// userTimeout).
	seq atomic.Uint64
	// pend is an error met by a Read that returned bytes: the next Read
	// handles it first (reads only). Guarded by lock.
	pend *pendingErr
	// Guarded by Tether.mu:
	dl   time.Time     // the user's deadline
	dlCh chan struct{} // closed when dl changes; made by waiters
}

// link is one connection of a Tether, immutable once published but for
// read and wrote. A down link (conn == nil) stands for an outage or the end:
// it keeps the generation and the addresses of the connection it replaces.
type link struct {
	conn         net.Conn
	gen          uint64
	addr         string // the address dialed
	up           time.Time
	laddr, raddr net.Addr
	// read and wrote record that the connection carried bytes each way: a
	// clean end after that ends an exchange, and is no flap.
	read, wrote atomic.Bool
	// writeTimedOut records that a Write failed at the user's deadline:
	// the connection may hold a partial record, and its peer may read
	// nothing more, so it closes as a lost one does (closeLost).
	writeTimedOut atomic.Bool
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
	errLazyNew    = errors.New("tether: WithLazy given to New, whose connection is up")
	errNilDialed  = errors.New("tether: Dialer returned a nil net.Conn and no error")
	errZero       = errors.New("tether: nil or zero Tether: make one with Dial or New")
)

// Dial connects to addr with d and returns a Tether that reconnects as h
// decides. A nil h is DefaultHandler().
//
// Dial returns once a connection is up and accepted (h saw Connected and did
// not give up), the handler gives up (Dial returns the cause), or ctx is done.
// The handler is asked about every failed dial (Unreachable) and may retry
// for as long as it likes: with context.Background() and a server that never
// comes up, Dial with the default policy retries for ever. Bound it with a
// ctx deadline, a middleware such as MaxDowntime (or Backoff's
// MaxAttempts), or WithNoInitialRetry.
// As with net.Dialer, once Dial has returned ctx no longer matters: the
// handler then gets the Tether's own ctx, done when the Tether ends.
func Dial(ctx context.Context, d Dialer, addr string, h DisconnectHandler, opts ...Option) (*Tether, error) {
	t, err := newTether(ctx, d, addr, h, opts)
	if err != nil {
		return nil, err
	}
	if t.cfg.lazy {
		t.cur.Store(&link{}) // down, generation 0: the first dial sends Connected
		return t, nil
	}
	ev := Event{Addr: addr, State: Connecting}
	if out, err := t.connect(ctx, &ev, time.Now(), true); out != connected {
		t.mu.Lock()
		t.setStateLocked(Shutdown) // the state observer's last call
		t.mu.Unlock()
		return nil, err
	}
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
	if t.cfg.lazy {
		t.mu.Lock()
		t.setStateLocked(Shutdown) // the state observer's last call
		t.mu.Unlock()
		return nil, errLazyNew
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
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = DefaultHandler()
	}
	t := &Tether{d: d, h: h, cfg: cfg, addr: addr}
	t.state.Store(int32(Connecting))
	if cfg.boundary {
		t.x = &extra{seen: [2]uint64{1, 1}} // the first connection raises no boundary
	}
	if cfg.lazy {
		t.state.Store(int32(Idle))
	}
	if cfg.observe != nil {
		x := t.extraLocked() // no other goroutine has t yet
		x.stateSince = time.Now()
		s := State(t.state.Load())
		cfg.observe(s, s, 0)
	}
	if cfg.readIdle > 0 {
		t.wd = &watchdog{d: cfg.readIdle}
	}
	return t, nil
}

// endErrLocked is the error an operation returns once the Tether ended.
func (t *Tether) endErrLocked(dir direction) error {
	if dir == dirRead {
		return t.rerr
	}
	return t.werr
}

func (l *link) genOrZero() uint64 {
	if l == nil {
		return 0
	}
	return l.gen
}

// Close closes the Tether: it stops any reconnect (a backoff wait, a dial,
// OnConnect), closes the current connection and any new one, and makes every
// blocked and later operation return net.ErrClosed. It does not wait for a
// handler that ignores its ctx. A second Close returns net.ErrClosed; Close
// after a give-up returns nil and Err keeps the cause.
func (t *Tether) Close() error {
	if !t.valid() {
		return errZero
	}
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
	t.setStateLocked(Shutdown)
	broken := t.cur.Load().writeTimedOut.Load()
	conns := t.takeDownLocked()
	t.mu.Unlock()
	closeAll(conns, broken)
	return nil
}

// takeDownLocked takes the current link down, once t.err is set, and
// returns every connection the Tether holds, for the caller to close outside
// mu: the current one, and during an outage the lost one (a handler may
// still be deciding about it, and operations may be blocked on it) and a new
// one not yet installed.
func (t *Tether) takeDownLocked() [3]net.Conn {
	c := t.cur.Load()
	t.cur.Store(c.down())
	conns := [3]net.Conn{c.conn}
	if o := t.rec; o != nil {
		conns[1], conns[2] = o.lost, o.pending
		o.lost, o.pending = nil, nil
	}
	return conns
}

// closeAll closes the connections takeDownLocked returned: the lost one
// as such, and the current one too when broken (a Write on it timed out).
func closeAll(conns [3]net.Conn, broken bool) {
	for i, c := range conns {
		switch {
		case c == nil:
		case i == 1, i == 0 && broken:
			closeLost(c)
		default:
			closeConn(c)
		}
	}
}

// closeGrace is how long closeConn lets a TLS connection write its
// close_notify alert before it closes the connection under it.
const closeGrace = 50 * time.Millisecond

// closeConn closes a healthy connection. A TLS connection's Close writes a
// close_notify alert first, and crypto/tls waits up to 5 s for a peer that
// reads nothing (a frozen peer or middlebox whose buffers are full): after
// closeGrace the connection under it is closed, so that the alert fails and
// Close returns promptly (semantics 7).
func closeConn(c net.Conn) {
	under := netConnOf(c)
	if under == nil {
		c.Close()
		return
	}
	cut := time.AfterFunc(closeGrace, func() { under.Close() })
	c.Close()
	cut.Stop()
}

// closeLost closes a lost connection. A TLS connection's Close first
// writes a close_notify alert, and waits up to 5 s for a dead peer whose
// buffers are full (a frozen peer or middlebox): the connection under it
// is closed first, so that the alert fails at once.
func closeLost(c net.Conn) {
	if under := netConnOf(c); under != nil {
		under.Close()
	}
	c.Close()
}

// netConnOf returns the connection under c (a TLS connection's), or nil
// when c has none, or a NetConn method that returns nil.
func netConnOf(c net.Conn) net.Conn {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return nil
}

// valid reports whether t was made by Dial or New: every method of a nil or
// zero Tether returns an error (or a zero value) instead of panicking.
func (t *Tether) valid() bool { return t != nil && t.d != nil }

// link returns the current link, or an empty down link for a nil or zero
// Tether.
func (t *Tether) link() *link {
	if t != nil {
		if c := t.cur.Load(); c != nil {
			return c
		}
	}
	return &link{}
}

// Done returns a channel that is closed once the Tether is closed or its
// handler gave up, and its reconnect has stopped: no handler, dial or
// OnConnect hook of the Tether's is running, and no event reaches the
// handler after it (a channel that Notify sends to may then be closed).
// Close does not wait for a handler, Dialer or hook that ignores its ctx;
// Done does.
func (t *Tether) Done() <-chan struct{} {
	if !t.valid() {
		return closedChan
	}
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

// doneLocked returns the Done channel, made when first needed.
func (t *Tether) doneLocked() chan struct{} {
	if t.x == nil || t.x.done == nil {
		if t.err != nil && t.rec == nil {
			return closedChan
		}
		t.extraLocked().done = make(chan struct{})
	}
	return t.x.done
}

// endedLocked returns a channel closed once the Tether ends (t.err is set),
// made when first needed: what blocked operations wait on, which unlike
// Done does not wait for the handler.
func (t *Tether) endedLocked() chan struct{} {
	if t.x == nil || t.x.ended == nil {
		if t.err != nil {
			return closedChan
		}
		t.extraLocked().ended = make(chan struct{})
	}
	return t.x.ended
}

// closeDoneLocked closes Done, once t.err is set and no outage (whose
// goroutine runs the handler) is under way.
func (t *Tether) closeDoneLocked() {
	if t.rec != nil || t.x == nil || t.x.done == nil {
		return
	}
	select {
	case <-t.x.done:
	default:
		close(t.x.done)
	}
}

// extra holds the fields that most Tethers never need, out of line so that
// an idle Tether costs less memory. Its fields are guarded by mu, but seen,
// which the direction locks guard.
type extra struct {
	done    chan struct{} // Done: closed on Close or give-up, once no handler runs
	ended   chan struct{} // closed on Close or give-up
	stateCh chan struct{} // closed on the next change of state; made by waiters
	buf     *writeBuffer  // WithWriteBuffer's, made when first used
	// seen is, per direction, the generation of the connection its last
	// operation used, for WithReconnectBoundary; x is made with it in
	// newTether.
	seen [2]uint64
	// stateSince is when the Tether entered its state, for the state
	// observer (WithStateObserver).
	stateSince time.Time
}

// extraLocked returns t.x, made when first needed.
func (t *Tether) extraLocked() *extra {
	if t.x == nil {
		t.x = &extra{}
	}
	return t.x
}

// bufLocked returns the write buffer, or nil.
func (t *Tether) bufLocked() *writeBuffer {
	if t.x == nil {
		return nil
	}
	return t.x.buf
}

// stopLocked cancels the outage's ctx, once t.err is set, and closes Done
// unless the outage's goroutine has yet to end (endLocked closes it then).
func (t *Tether) stopLocked() {
	if t.x != nil && t.x.ended != nil {
		close(t.x.ended)
	}
	if t.rec != nil {
		t.rec.cancel()
	}
	t.closeDoneLocked()
}

// Err returns nil while the Tether is alive; then why it ended: the cause of
// the give-up (Event.Err), or net.ErrClosed after Close.
func (t *Tether) Err() error {
	if !t.valid() {
		return errZero
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Generation returns the number of the current connection: 1 for the first,
// incremented by each reconnect (during an outage, the lost connection's).
// To know which connection the bytes of a Read came from, use
// ReadGeneration: a writer may reconnect the Tether between a Read and a
// call to Generation.
func (t *Tether) Generation() uint64 { return t.link().gen }

// Conn returns the current underlying connection, for its TLS state or peer
// certificates, or nil during an outage and after the end. It is valid until
// the next reconnect; reading from or writing to it bypasses the Tether.
func (t *Tether) Conn() net.Conn { return t.link().conn }

// Addr returns the address of the next dial (the handler may have changed it).
func (t *Tether) Addr() string {
	if !t.valid() {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

// LocalAddr returns the local address of the current connection, or of the
// last one during an outage. Before the first connection (WithLazy) it is
// an address of network "tether" with an empty String, never nil.
func (t *Tether) LocalAddr() net.Addr {
	if a := t.link().laddr; a != nil {
		return a
	}
	return notDialed("")
}

// RemoteAddr returns the remote address of the current connection, or of the
// last one during an outage. Before the first connection (WithLazy) it is
// an address of network "tether" whose String is the address to dial, never
// nil.
func (t *Tether) RemoteAddr() net.Addr {
	if a := t.link().raddr; a != nil {
		return a
	}
	return notDialed(t.Addr())
}

// notDialed is the address of a Tether that has not connected yet.
type notDialed string

func (a notDialed) Network() string { return "tether" }
func (a notDialed) String() string  { return string(a) }
