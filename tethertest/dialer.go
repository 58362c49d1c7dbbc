package tethertest

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// A Dialer is a tether.Dialer whose connections are in memory: each Dial
// makes a net.Pipe and returns one end; the test takes the other end, a
// *Conn, from Accept and plays the server with it. A Conn can break its
// connection on command (Reset, Close, Blackhole), and the Dialer can fail
// the next dials (FailNext) or make them hang (Hold).
//
// It needs no network and starts no goroutine, so it works inside
// testing/synctest: a Tether blocked on one of its connections, or a test
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
	dials   int
	conns   []*Conn       // every connection made, in order
	backlog []*Conn       // made and not yet accepted
	waiters []chan *Conn  // Accept calls waiting, oldest first
	fail    []error       // errors for the next dials, in order
	hold    chan struct{} // non-nil while dials hang
}

// Dial makes a connection to addr and returns its client end, unless the
// Dialer holds dials (it waits for Release or ctx) or has failures queued
// (FailNext). addr is only recorded: any non-empty string will do. The
// server end waits for Accept.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials++
	n, hold := d.dials, d.hold
	d.mu.Unlock()
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
	defer d.mu.Unlock()
	if len(d.fail) > 0 {
		err := d.fail[0]
		d.fail = d.fail[1:]
		return nil, err
	}
	c := newConn(len(d.conns), n, addr)
	d.conns = append(d.conns, c)
	if len(d.waiters) > 0 {
		w := d.waiters[0]
		d.waiters = d.waiters[1:]
		w <- c // buffered: never blocks
	} else {
		d.backlog = append(d.backlog, c)
	}
	return c.client, nil
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

// FailNext makes the next n dials fail with err, after any failures already
// queued. A nil err stands for a refused connection: a *net.OpError that
// wraps syscall.ECONNREFUSED, as a TCP dial to a closed port returns.
func (d *Dialer) FailNext(n int, err error) {
	if err == nil {
		err = &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		d.fail = append(d.fail, err)
	}
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
	return d.dials
}

// Conns returns every connection made so far, accepted or not, oldest
// first.
func (d *Dialer) Conns() []*Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Conn(nil), d.conns...)
}

const network = "tethertest"

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
	dial   int
	addr   string
	client *pipeEnd
}

// state is what the faults did to a connection, shared by its two ends.
type state struct {
	reset     atomic.Bool
	blackhole atomic.Bool
}

func newConn(index, dial int, addr string) *Conn {
	c, s := net.Pipe()
	st := &state{}
	caddr := pipeAddr("client-" + strconv.Itoa(index))
	client := &pipeEnd{Conn: c, st: st, local: caddr, remote: pipeAddr(addr)}
	return &Conn{
		pipeEnd: pipeEnd{Conn: s, st: st, local: pipeAddr(addr), remote: caddr},
		index:   index,
		dial:    dial,
		addr:    addr,
		client:  client,
	}
}

// Addr returns the address that was dialed.
func (c *Conn) Addr() string { return c.addr }

// Index returns the connection's number: 0 for the Dialer's first
// connection, then 1, 2, ... (failed dials make no connection).
func (c *Conn) Index() int { return c.index }

// Client returns the client's end of the connection, the net.Conn that Dial
// returned.
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
// goroutine can end.
func (c *Conn) Blackhole() { c.st.blackhole.Store(true) }

// pipeEnd is one end of a connection: a net.Pipe end with the faults of the
// shared state applied.
type pipeEnd struct {
	net.Conn
	st            *state
	local, remote pipeAddr
	closed        atomic.Bool
}

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
	if e.st.blackhole.Load() && !e.closed.Load() && !e.st.reset.Load() {
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
	e.closed.Store(true)
	return e.Conn.Close()
}

func (e *pipeEnd) LocalAddr() net.Addr  { return e.local }
func (e *pipeEnd) RemoteAddr() net.Addr { return e.remote }

// fault turns the pipe's error into the one the connection's faults call
// for.
func (e *pipeEnd) fault(op string, err error) error {
	if e.closed.Load() || !e.st.reset.Load() {
		return err // io.EOF, io.ErrClosedPipe, os.ErrDeadlineExceeded
	}
	return &net.OpError{Op: op, Net: network, Source: e.local, Addr: e.remote,
		Err: os.NewSyscallError(op, syscall.ECONNRESET)}
}
