package tethertest

import (
	"context"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Dialer is a tether.Dialer whose connections are in memory: each Dial
// makes a net.Pipe and returns one end; the test takes the other end, a
// *Conn, from Accept (or Server) and plays the server with it, or lets
// Serve answer each connection. A Conn can break its connection on command
// (Reset, Close, Blackhole), and the Dialer can fail dials (FailNext,
// FailWhen, Down), make them hang (Hold), and hand out a test's own
// net.Conn around the client's end (Wrap). History lists the dials made.
//
// It needs no network, and its Dial starts no goroutine (only Serve runs
// handlers in goroutines of their own, in the caller's bubble), so it works
// inside testing/synctest: a Tether blocked on one of its connections, or a test
// blocked in Accept, is durably blocked, and time-based behaviour (backoff,
// deadlines, the read idle timeout) runs in the bubble's virtual time. Use
// each Dialer within one bubble.
//
// As with net.Pipe, a connection has no buffer: a Write returns once the
// other end has read all of it, or on a deadline or an error.
//
// The zero value is ready to use; a Dialer is safe for concurrent use.
type Dialer struct {
	mu      sync.Mutex
	history []DialRecord
	conns   []*Conn         // every connection made, in order
	backlog []*Conn         // made and not yet accepted
	waiters []chan *Conn    // Accept calls waiting, oldest first
	fail    []error         // errors for the next dials, in order
	down    map[string]bool // addresses that refuse dials
	failFn  func(n int, addr string) error
	wrap    func(c *Conn) net.Conn
	hold    chan struct{} // non-nil while dials hang
}

// A DialRecord is one call of [Dialer.Dial].
type DialRecord struct {
	Addr string    // the address dialed
	At   time.Time // when Dial was called
	Err  error     // why the dial failed; nil once it made a connection, or while it is held
}

// Dial makes a connection to addr and returns its client end, unless the
// Dialer holds dials (it waits for Release or ctx) or fails this one
// (FailNext, then Down, then FailWhen). addr is only recorded: any non-empty string
// will do. The server end waits for Accept.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	n, hold := len(d.history), d.hold
	d.history = append(d.history, DialRecord{Addr: addr, At: time.Now()})
	d.mu.Unlock()
	c, err := d.dial(ctx, n, addr, hold)
	if err != nil {
		d.mu.Lock()
		d.history[n].Err = err
		d.mu.Unlock()
	}
	return c, err
}

func (d *Dialer) dial(ctx context.Context, n int, addr string, hold chan struct{}) (net.Conn, error) {
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: network, Addr: pipeAddr(addr), Err: ctx.Err()}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: pipeAddr(addr), Err: err}
	}

	d.mu.Lock()
	var err error
	if len(d.fail) > 0 {
		err, d.fail = d.fail[0], d.fail[1:]
		if err == errRefused {
			err = refused(addr)
		}
	} else if d.down[addr] {
		err = refused(addr)
	}
	failFn, wrap := d.failFn, d.wrap
	d.mu.Unlock()
	if err == nil && failFn != nil {
		err = failFn(n, addr)
	}
	if err != nil {
		return nil, err
	}

	d.mu.Lock()
	if d.down[addr] {
		// Down came while failFn ran: it saw no connection to close, so
		// this dial must not make one.
		d.mu.Unlock()
		return nil, refused(addr)
	}
	c := newConn(len(d.conns), addr)
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	// The client's end is wrapped before Accept can return c, and without
	// the Dialer's lock held while the test's function runs.
	client := net.Conn(c.client)
	if wrap != nil {
		client = wrap(c)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.waiters) > 0 {
		w := d.waiters[0]
		d.waiters = d.waiters[1:]
		w <- c // buffered: never blocks
	} else {
		d.backlog = append(d.backlog, c)
	}
	return client, nil
}

// Accept returns the server end of the oldest connection not yet accepted,
// waiting for a Dial if there is none, or ctx's error when ctx ends first.
func (d *Dialer) Accept(ctx context.Context) (*Conn, error) {
	d.mu.Lock()
	if len(d.backlog) > 0 {
		c := d.backlog[0]
		d.backlog = d.backlog[1:]
		d.mu.Unlock()
		return c, nil
	}
	w := make(chan *Conn, 1)
	d.waiters = append(d.waiters, w)
	d.mu.Unlock()

	select {
	case c := <-w:
		return c, nil
	case <-ctx.Done():
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range d.waiters {
		if x == w {
			d.waiters = append(d.waiters[:i:i], d.waiters[i+1:]...)
			return nil, ctx.Err()
		}
	}
	// A Dial handed w a connection meanwhile: keep it for the next Accept.
	d.backlog = append([]*Conn{<-w}, d.backlog...)
	return nil, ctx.Err()
}

// Serve plays the server of every connection d makes, until ctx ends: it
// runs handle on each, in a goroutine of its own, and closes the
// connection when handle returns. When ctx ends, Serve closes the
// connections still open, so that handlers blocked on them return, waits
// for the handlers, and returns. Inside a synctest bubble, run it in the
// bubble: go d.Serve(t.Context(), handle).
//
// Use it where servers answer by themselves (greet, echo, close at once)
// and the test watches the client; handle may tell servers apart by
// [Conn.Addr], and [Dialer.Down] takes an address down. A test that plays
// the server step by step takes each connection with [Dialer.Server] or
// [Dialer.Accept] instead: do not mix the two over one Dialer.
func (d *Dialer) Serve(ctx context.Context, handle func(c *Conn)) {
	var handlers sync.WaitGroup
	for {
		c, err := d.Accept(ctx)
		if err != nil {
			break
		}
		handlers.Go(func() {
			defer c.Close()
			handle(c)
		})
	}
	for _, c := range d.Conns() {
		c.Close()
	}
	handlers.Wait()
}

// FailNext makes the next n dials fail with err, after any failures already
// queued. A nil err stands for a refused connection: a *net.OpError that
// wraps syscall.ECONNREFUSED, as a TCP dial to a closed port returns.
func (d *Dialer) FailNext(n int, err error) {
	if err == nil {
		err = errRefused // made with the address at each dial
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		d.fail = append(d.fail, err)
	}
}

// Down takes addrs down, as servers that shut down: later dials to them
// fail as refused (see FailNext), and their connections still open are
// closed (their clients read io.EOF) until Up brings them back. Failures
// that FailNext queued come first.
func (d *Dialer) Down(addrs ...string) {
	d.mu.Lock()
	if d.down == nil {
		d.down = make(map[string]bool)
	}
	for _, a := range addrs {
		d.down[a] = true
	}
	conns := d.conns
	d.mu.Unlock()
	for _, c := range conns {
		if slices.Contains(addrs, c.addr) {
			c.Close()
		}
	}
}

// Up brings addrs back after Down: later dials to them connect again.
func (d *Dialer) Up(addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range addrs {
		delete(d.down, a)
	}
}

// refused is the error of a dial to addr where nothing listens, as a TCP
// dial to a closed port returns it: transient for tether.IsPermanent.
func refused(addr string) error {
	var a net.Addr
	if addr != "" {
		a = pipeAddr(addr)
	}
	return &net.OpError{Op: "dial", Net: network, Addr: a, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// FailWhen makes every later dial ask f, after the failures FailNext
// queued: a dial fails with the error f returns, or goes on if it is nil.
// n numbers the dials from 0, failed ones included (it is the dial's index
// in History), and addr is the address dialed, so that f can fail a given
// dial, or the dials to an address that is down. f runs in Dial, without
// the Dialer's lock, and may be called from several goroutines at once.
// FailWhen(nil) removes it.
func (d *Dialer) FailWhen(f func(n int, addr string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failFn = f
}

// Wrap makes every later dial return f(c) in place of c.Client(), where c is
// the new connection: a test's net.Conn around the client's end that
// misbehaves in a way the Dialer's faults do not cover (a Read that returns
// a scripted error, or one that returns late). c.Index tells the
// connections apart. f runs in Dial, without the Dialer's lock, before
// Accept can return c. Wrap(nil) removes it.
func (d *Dialer) Wrap(f func(c *Conn) net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wrap = f
}

// Hold makes dials hang, as dials to a host that drops packets do, until
// Release or their ctx ends (a Tether's Close ends it).
func (d *Dialer) Hold() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hold == nil {
		d.hold = make(chan struct{})
	}
}

// Release lets the dials that Hold made hang go on, and later dials through.
func (d *Dialer) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hold != nil {
		close(d.hold)
		d.hold = nil
	}
}

// Dials returns how many times Dial was called, failed dials included.
func (d *Dialer) Dials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.history)
}

// History returns every call of Dial so far, failed ones included, oldest
// first: the addresses dialed and when (in virtual time inside a synctest
// bubble), for a test of a policy's dial rate or of where it sent each dial.
func (d *Dialer) History() []DialRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DialRecord(nil), d.history...)
}

// Conns returns every connection made so far, accepted or not, oldest
// first.
func (d *Dialer) Conns() []*Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Conn(nil), d.conns...)
}

const network = "tethertest"

// errRefused stands, in Dialer.fail, for refused(addr) of the dial.
var errRefused = refused("")

// pipeAddr is the net.Addr of an in-memory connection: the address dialed
// for the server's end, "client-N" for the client's.
type pipeAddr string

func (a pipeAddr) Network() string { return network }
func (a pipeAddr) String() string  { return string(a) }

// A Conn is the server end of one connection made by a Dialer; it is a
// net.Conn. Close closes it cleanly: the client's reads return io.EOF once
// they have read what was written before. Reset and Blackhole break the
// connection in the ways a network does.
type Conn struct {
	pipeEnd
	index  int
	addr   string
	client *pipeEnd
}

// state is what the faults did to a connection, shared by its two ends.
type state struct {
	reset     atomic.Bool
	blackhole atomic.Bool
	closed    [2]atomic.Bool // by side: whether that end was closed
}

// The sides of a connection, which index state.closed.
const (
	clientSide = 0
	serverSide = 1
)

func newConn(index int, addr string) *Conn {
	c, s := net.Pipe()
	st := &state{}
	caddr := pipeAddr("client-" + strconv.Itoa(index))
	client := &pipeEnd{Conn: c, st: st, side: clientSide, local: caddr, remote: pipeAddr(addr)}
	return &Conn{
		pipeEnd: pipeEnd{Conn: s, st: st, side: serverSide, local: pipeAddr(addr), remote: caddr},
		index:   index,
		addr:    addr,
		client:  client,
	}
}

// Addr returns the address that was dialed.
func (c *Conn) Addr() string { return c.addr }

// Index returns the connection's number: 0 for the Dialer's first
// connection, then 1, 2, ... (failed dials make no connection).
func (c *Conn) Index() int { return c.index }

// Client returns the client's end of the connection: the net.Conn that Dial
// returned, or, under Wrap, the end that the wrapping function was given.
func (c *Conn) Client() net.Conn { return c.client }

// Reset resets the connection, as a TCP RST does: pending and later
// operations on both ends fail with a *net.OpError that wraps
// syscall.ECONNRESET, and bytes not yet read are lost.
func (c *Conn) Reset() {
	c.st.reset.Store(true)
	c.pipeEnd.Conn.Close()
	c.client.Conn.Close()
}

// Blackhole makes the connection carry no bytes, for the rest of its life,
// while both ends stay open, as when the peer vanished without a word:
// Writes on either end succeed and their bytes are lost, and Reads wait for
// their deadline or a Close. Only a read deadline (or the Tether's
// WithReadIdleTimeout) tells a blackholed connection from a quiet one. A
// Close of either end still reaches the other, so that the test's server
// goroutine can end: its Reads return io.EOF and its Writes
// io.ErrClosedPipe, as on net.Pipe.
func (c *Conn) Blackhole() { c.st.blackhole.Store(true) }

// pipeEnd is one end of a connection: a net.Pipe end with the faults of the
// shared state applied.
type pipeEnd struct {
	net.Conn
	st            *state
	side          int // clientSide or serverSide
	local, remote pipeAddr
	wdl           atomic.Int64 // the write deadline in Unix ns; 0: none
}

func (e *pipeEnd) SetDeadline(t time.Time) error {
	e.storeWriteDeadline(t)
	return e.Conn.SetDeadline(t)
}

func (e *pipeEnd) SetWriteDeadline(t time.Time) error {
	e.storeWriteDeadline(t)
	return e.Conn.SetWriteDeadline(t)
}

func (e *pipeEnd) storeWriteDeadline(t time.Time) {
	if t.IsZero() {
		e.wdl.Store(0)
	} else {
		e.wdl.Store(t.UnixNano())
	}
}

func (e *pipeEnd) closed() bool     { return e.st.closed[e.side].Load() }
func (e *pipeEnd) peerClosed() bool { return e.st.closed[1-e.side].Load() }

func (e *pipeEnd) Read(p []byte) (int, error) {
	for {
		n, err := e.Conn.Read(p)
		if err != nil {
			return n, e.fault("read", err)
		}
		if !e.st.blackhole.Load() {
			return n, nil
		}
		// The bytes went into the blackhole; keep waiting.
	}
}

func (e *pipeEnd) Write(p []byte) (int, error) {
	if e.st.blackhole.Load() && !e.closed() && !e.st.reset.Load() {
		if e.peerClosed() {
			return 0, io.ErrClosedPipe // as net.Pipe's Write after the other end's Close
		}
		if dl := e.wdl.Load(); dl != 0 && time.Now().UnixNano() >= dl {
			return 0, os.ErrDeadlineExceeded // as net.Pipe's Write after its deadline
		}
		return len(p), nil
	}
	n, err := e.Conn.Write(p)
	if err != nil {
		return n, e.fault("write", err)
	}
	return n, nil
}

// Close closes this end: the other end reads io.EOF.
func (e *pipeEnd) Close() error {
	e.st.closed[e.side].Store(true)
	return e.Conn.Close()
}

func (e *pipeEnd) LocalAddr() net.Addr  { return e.local }
func (e *pipeEnd) RemoteAddr() net.Addr { return e.remote }

// fault turns the pipe's error into the one the connection's faults call
// for.
func (e *pipeEnd) fault(op string, err error) error {
	if e.closed() || !e.st.reset.Load() {
		return err // io.EOF, io.ErrClosedPipe, os.ErrDeadlineExceeded
	}
	return &net.OpError{Op: op, Net: network, Source: e.local, Addr: e.remote,
		Err: os.NewSyscallError(op, syscall.ECONNRESET)}
}
