package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode says what the proxy does with new connections.
type Mode int

const (
	// ModeForward accepts new connections and forwards them upstream.
	ModeForward Mode = iota
	// ModeRefuse stops listening: dials fail with "connection refused"
	// until another mode listens again on the same port.
	ModeRefuse
	// ModeHold makes dials hang: the proxy listens with a full accept
	// queue, so the kernel drops SYNs and the client retransmits them until
	// its dial times out (Linux only). Live connections are unaffected. A
	// dial still pending when the hold ends completes at its next SYN
	// retransmission (1 s, then 2 s, 4 s, ... after it began).
	ModeHold
	// ModeAcceptClose accepts each new connection and closes it at once
	// (FIN): the dial succeeds and the first Read returns io.EOF.
	ModeAcceptClose
	// ModeAcceptReset accepts each new connection and resets it at once
	// (RST).
	ModeAcceptReset
)

// String returns the lowercase name of m.
func (m Mode) String() string {
	switch m {
	case ModeForward:
		return "forward"
	case ModeRefuse:
		return "refuse"
	case ModeHold:
		return "hold"
	case ModeAcceptClose:
		return "accept-close"
	case ModeAcceptReset:
		return "accept-reset"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Shape is how connections forward their bytes. The zero Shape forwards
// every chunk at once, whole.
type Shape struct {
	// Delay is how long each chunk read from one side waits before it is
	// written to the other; Jitter adds a uniform draw in [0, Jitter).
	// Chunks stay in order.
	Delay, Jitter time.Duration
	// Slice, when positive, writes each chunk in pieces of 1 to Slice
	// bytes, waiting SliceGap between pieces.
	Slice    int
	SliceGap time.Duration
	// CutAfter, when positive, resets each connection once it has forwarded
	// CutAfter bytes, both directions together, since it was accepted: the
	// byte after the CutAfter-th never passes.
	CutAfter int64
}

// Stats counts what a Proxy did.
type Stats struct {
	Accepted         int   // connections accepted, in every mode
	Forwarded        int   // connections that reached the upstream server
	UpstreamFailures int   // connections reset because the upstream dial failed
	AcceptClosed     int   // connections closed or reset at once (ModeAcceptClose, ModeAcceptReset)
	Resets           int   // connections reset by ResetAll
	Closes           int   // connections closed by CloseAll
	Cuts             int   // connections reset by Shape.CutAfter
	Faults           int   // faults injected: calls that broke something
	BytesUp          int64 // bytes forwarded from clients to the upstream server
	BytesDown        int64 // bytes forwarded from the upstream server to clients
	Writes           int64 // writes the proxy made, both directions (Shape.Slice makes more)
}

// DefaultUpstreamTimeout bounds the proxy's dial to the upstream server.
const DefaultUpstreamTimeout = 5 * time.Second

// normalBacklog is the accept backlog outside ModeHold (the kernel caps it
// at net.core.somaxconn).
const normalBacklog = 4096

var errClosed = errors.New("tether/tethertest/faultproxy: closed")

// A Proxy forwards TCP connections from its loopback address to an upstream
// address and breaks them on command. Its methods are safe for concurrent
// use. Make one with New.
type Proxy struct {
	upstream string
	addr     *net.TCPAddr // fixed for the Proxy's life
	seed     uint64
	dialer   net.Dialer
	ctx      context.Context // done on Close: aborts the upstream dials
	cancel   context.CancelFunc

	wg sync.WaitGroup // accept loops, upstream dials and pumps

	bytesUp, bytesDown, writes atomic.Int64

	mu        sync.Mutex
	closed    bool
	mode      Mode
	ln        net.Listener  // accepting: every mode but ModeRefuse and ModeHold
	served    chan struct{} // closed when ln's accept loop has ended
	held      net.Listener  // ModeHold: a listener whose accept queue is full
	filler    net.Conn      // ModeHold: the connection that fills it
	conns     map[*conn]struct{}
	draining  int // connections torn down whose pumps still run
	nextID    uint64
	blackhole bool
	healed    chan struct{} // closed when the blackhole ends
	shape     Shape
	sockBuf   int // SO_RCVBUF and SO_SNDBUF of new connections' sockets; 0: the system's
	stats     Stats
}

// New starts a Proxy on 127.0.0.1 (an ephemeral port) that forwards to
// upstream. seed makes its random choices; Close stops it.
func New(upstream string, seed uint64) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("tether/tethertest/faultproxy: upstream: %w", err)
	}
	ln, err := listenBacklog(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, normalBacklog)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		upstream: upstream,
		addr:     ln.Addr().(*net.TCPAddr),
		seed:     seed,
		dialer:   net.Dialer{Timeout: DefaultUpstreamTimeout},
		ln:       ln,
		conns:    make(map[*conn]struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.startServing(ln)
	return p, nil
}

// startServing makes ln the listener, and starts its accept loop.
func (p *Proxy) startServing(ln net.Listener) {
	p.ln, p.served = ln, make(chan struct{})
	p.wg.Add(1)
	go p.serve(ln, p.served)
}

// Addr returns the proxy's address, "127.0.0.1:port". It stays the same when
// the proxy stops listening and comes back.
func (p *Proxy) Addr() string { return p.addr.String() }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Seed returns the seed of the proxy's random choices.
func (p *Proxy) Seed() uint64 { return p.seed }

// Stats returns what the proxy did so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	s := p.stats
	p.mu.Unlock()
	s.BytesUp, s.BytesDown, s.Writes = p.bytesUp.Load(), p.bytesDown.Load(), p.writes.Load()
	return s
}

// Conns returns the number of live connections. A connection torn down
// counts until the proxy has stopped forwarding its bytes, so that once
// Conns returns 0, Stats counts every byte forwarded.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) + p.draining
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode sets what happens to new connections; see Mode. Going from
// ModeRefuse or ModeHold to another mode listens again on the same port.
// Going to ModeRefuse or ModeHold stops listening: SetMode returns once a
// connection accepted just before is among the live ones (ResetAll finds
// it); those still in the kernel's accept queue are reset.
func (p *Proxy) SetMode(m Mode) error {
	if m < ModeForward || m > ModeAcceptReset {
		return fmt.Errorf("tether/tethertest/faultproxy: unknown mode %d", int(m))
	}
	if m == ModeHold && !canHold {
		return fmt.Errorf("tether/tethertest/faultproxy: %v: %w", m, errors.ErrUnsupported)
	}
	served, err := p.setMode(m)
	if served != nil {
		<-served
	}
	return err
}

// setMode is SetMode but for the wait: it returns the channel closed once
// the accept loop of the listener it closed has ended, if it closed one.
func (p *Proxy) setMode(m Mode) (served <-chan struct{}, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if m == p.mode {
		return nil, nil
	}
	if m != ModeForward {
		p.stats.Faults++
	}
	// Leave the old listening state.
	switch p.mode {
	case ModeHold:
		p.held.Close()
		p.filler.Close()
		p.held, p.filler = nil, nil
	case ModeRefuse:
	default:
		if m == ModeRefuse || m == ModeHold {
			p.ln.Close()
			served = p.served
			p.ln, p.served = nil, nil
		}
	}
	p.mode = m
	switch {
	case m == ModeHold:
		err = p.holdLocked()
	case m != ModeRefuse && p.ln == nil:
		err = p.listenLocked()
	}
	if err != nil {
		// Nothing listens: the proxy refuses, and says so (Mode, and a
		// Heal that listens again).
		p.mode = ModeRefuse
	}
	return served, err
}

// listenLocked listens again on the proxy's port and starts accepting.
func (p *Proxy) listenLocked() error {
	var (
		ln  net.Listener
		err error
	)
	// The port is free, unless a connection from the ephemeral range took
	// it in the meantime; retry briefly.
	for i := 0; i < 50; i++ {
		if ln, err = listenBacklog(p.addr, normalBacklog); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("tether/tethertest/faultproxy: listen again on %v: %w", p.addr, err)
	}
	p.startServing(ln)
	return nil
}

// holdLocked listens with an accept queue of one and fills it, so that the
// kernel drops the SYNs of later dials.
func (p *Proxy) holdLocked() error {
	held, err := listenBacklog(p.addr, 0)
	if err != nil {
		return fmt.Errorf("tether/tethertest/faultproxy: hold: %w", err)
	}
	filler, err := net.DialTimeout("tcp", p.addr.String(), time.Second)
	if err != nil {
		held.Close()
		return fmt.Errorf("tether/tethertest/faultproxy: hold: fill the accept queue: %w", err)
	}
	p.held, p.filler = held, filler
	return nil
}

// SetSocketBuffers sets the kernel's receive and send buffers (SO_RCVBUF,
// SO_SNDBUF) of the sockets of new connections, both sides, to n bytes; 0
// leaves the system's (autotuned) buffers. Small buffers bound what the
// proxy holds in flight, so a test can bound what a dead connection loses.
//
// On loopback, whose MTU is 64 KiB, keep n at 32 KiB or more (the kernel
// doubles it): a receive window smaller than one segment stalls TCP on its
// persist timer. A 12 MiB stream through 16 KiB buffers took from 0.2 s to
// 80 s, against 10 to 14 ms through 32 or 64 KiB ones.
func (p *Proxy) SetSocketBuffers(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sockBuf = max(n, 0)
}

// ResetAll resets every live connection, both sides (RST), and returns how
// many there were.
func (p *Proxy) ResetAll() int { return p.breakAll(true) }

// CloseAll closes every live connection cleanly, both sides (FIN), and
// returns how many there were. Bytes the proxy has read but not yet written
// are lost, as in a server that exits; so are the bytes that have reached
// the proxy's sockets and that it has not read (a delay or a strand held
// them back): it drops them, so that the close is a FIN, where Linux would
// reset a socket closed with bytes unread. What a side sends after the
// close is reset.
func (p *Proxy) CloseAll() int { return p.breakAll(false) }

func (p *Proxy) breakAll(rst bool) int {
	p.mu.Lock()
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	if len(cs) > 0 {
		p.stats.Faults++
	}
	if rst {
		p.stats.Resets += len(cs)
	} else {
		p.stats.Closes += len(cs)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup // a clean close may wait 1 ms (closeClean): all at once
	for _, c := range cs {
		wg.Go(func() { c.teardown(rst) })
	}
	wg.Wait()
	return len(cs)
}

// Strand makes every live connection forward nothing, for the rest of its
// life, while both sides stay open: a peer that vanished without a word.
// The proxy stops reading them once it holds bytes it cannot forward, so
// the senders' buffers fill and their writes block, as with a dead TCP peer,
// and it passes on neither a close nor a reset. A stranded connection lasts
// until ResetAll, CloseAll or Close. New connections are not affected. It
// returns how many there were.
func (p *Proxy) Strand() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.stranded.Store(true)
	}
	if len(p.conns) > 0 {
		p.stats.Faults++
	}
	return len(p.conns)
}

// Blackhole makes every connection, the live ones and new ones, forward
// nothing while on is true: both sides stay open, and the bytes the proxy
// has read wait, as does a close (FIN) or a reset of either side: the
// other side sees it once the blackhole ends, after the bytes held.
// Blackhole(false) or Heal lets them through again.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.blackhole {
		return
	}
	p.blackhole = on
	if on {
		p.stats.Faults++
		p.healed = make(chan struct{})
	} else {
		close(p.healed)
	}
}

// SetShape sets how every connection, live or new, forwards its bytes.
func (p *Proxy) SetShape(s Shape) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s != (Shape{}) {
		p.stats.Faults++
	}
	p.shape = s
}

// Heal ends every lasting fault: the proxy forwards new connections again,
// with no blackhole and the zero Shape. Stranded connections stay stranded.
func (p *Proxy) Heal() error {
	p.Blackhole(false)
	p.mu.Lock()
	p.shape = Shape{}
	p.mu.Unlock()
	return p.SetMode(ModeForward)
}

// Close stops the proxy: it stops listening, aborts the upstream dials in
// progress, resets every connection and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed
	}
	p.closed = true
	for _, c := range []io.Closer{p.ln, p.held, p.filler} {
		if c != nil {
			c.Close()
		}
	}
	p.ln, p.held, p.filler = nil, nil, nil
	p.cancel()
	if p.blackhole {
		p.blackhole = false
		close(p.healed)
	}
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.teardown(true)
	}
	p.wg.Wait()
	return nil
}

// serve accepts on ln until it is closed, then closes served.
func (p *Proxy) serve(ln net.Listener, served chan<- struct{}) {
	defer p.wg.Done()
	defer close(served)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or a connection aborted in the
			// queue: keep accepting.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		p.accept(c.(*net.TCPConn))
	}
}

func (p *Proxy) accept(client *net.TCPConn) {
	p.mu.Lock()
	p.stats.Accepted++
	if p.closed {
		p.mu.Unlock()
		resetConn(client)
		return
	}
	switch p.mode {
	case ModeAcceptClose:
		p.stats.AcceptClosed++
		p.mu.Unlock()
		closeClean(client)
		return
	case ModeAcceptReset:
		p.stats.AcceptClosed++
		p.mu.Unlock()
		resetConn(client)
		return
	}
	if p.sockBuf > 0 {
		client.SetReadBuffer(p.sockBuf)
		client.SetWriteBuffer(p.sockBuf)
	}
	c := &conn{p: p, id: p.nextID, client: client, done: make(chan struct{})}
	p.nextID++
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go p.connect(c)
}

// connect dials upstream for c and starts its pumps.
func (p *Proxy) connect(c *conn) {
	defer p.wg.Done()
	up, err := p.dialer.DialContext(p.ctx, "tcp", p.upstream)
	p.mu.Lock()
	if err != nil {
		if !p.closed { // else Close aborted the dial
			p.stats.UpstreamFailures++
		}
		p.mu.Unlock()
		c.teardown(true)
		return
	}
	server := up.(*net.TCPConn)
	if p.sockBuf > 0 {
		server.SetReadBuffer(p.sockBuf)
		server.SetWriteBuffer(p.sockBuf)
	}
	select {
	case <-c.done:
		p.mu.Unlock()
		resetConn(server)
		return
	default:
	}
	c.server = server
	p.stats.Forwarded++
	c.pumps = 2
	p.wg.Add(2)
	p.mu.Unlock()
	go p.pump(c, c.client, server, true)
	go p.pump(c, server, c.client, false)
}

func resetConn(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// closeClean closes tc with a FIN, not a reset: Linux resets a socket
// closed with bytes unread (a client that wrote first, bytes a delay or a
// strand held back). So it sends the FIN first, then reads and drops what
// has arrived, waiting 1 ms at most for more: a reset that the close still
// sends, for more than that drained, comes after the FIN, and the peer
// reads io.EOF. What the peer sends after the close is reset, as by a
// server that exited.
func closeClean(tc *net.TCPConn) {
	tc.CloseWrite()
	tc.SetReadDeadline(time.Now().Add(time.Millisecond))
	io.Copy(io.Discard, tc)
	tc.Close()
}

// conn is one proxied connection.
type conn struct {
	p        *Proxy
	id       uint64
	client   *net.TCPConn
	server   *net.TCPConn // nil until the upstream dial succeeds; guarded by p.mu
	done     chan struct{}
	once     sync.Once
	stranded atomic.Bool
	fwd      atomic.Int64 // bytes forwarded, both directions
	pumps    int          // pumps running; guarded by p.mu
	torn     bool         // guarded by p.mu
	eofs     atomic.Int32 // directions that ended with a clean EOF
	cut      atomic.Bool  // Shape.CutAfter cut c (counted once)
}

// teardown closes both sides of c, with a reset when rst is true.
func (c *conn) teardown(rst bool) {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		if c.torn = true; c.pumps > 0 {
			c.p.draining++
		}
		server := c.server
		close(c.done)
		c.p.mu.Unlock()
		for _, tc := range []*net.TCPConn{c.client, server} {
			if tc == nil {
				continue
			}
			if rst {
				resetConn(tc)
			} else {
				closeClean(tc)
			}
		}
	})
}

// pump forwards from src to dst until either fails or c is torn down. A
// clean EOF from src is passed on as a half-close; an error is passed on as
// a reset of both sides. A blackhole holds them as it holds bytes, until
// it ends; on a stranded connection, nothing is passed on.
func (p *Proxy) pump(c *conn, src, dst *net.TCPConn, up bool) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		if c.pumps--; c.pumps == 0 && c.torn {
			p.draining--
		}
		p.mu.Unlock()
	}()
	dir := uint64(0)
	if up {
		dir = 1
	}
	rng := rand.New(rand.NewPCG(p.seed, c.id<<1|dir))
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.forward(c, dst, buf[:n], rng, up) {
			return
		}
		if err != nil {
			switch {
			case c.stranded.Load():
			case !c.waitOpen(): // torn down during a blackhole
			case err == io.EOF:
				if dst.CloseWrite() != nil || c.eofs.Add(1) == 2 {
					c.teardown(false)
				}
			default:
				c.teardown(true)
			}
			return
		}
	}
}

// forward writes b to dst under the current faults. It returns false when c
// was torn down.
func (p *Proxy) forward(c *conn, dst *net.TCPConn, b []byte, rng *rand.Rand, up bool) bool {
	if !c.waitOpen() {
		return false
	}
	sh := p.currentShape()
	if d := sh.Delay + jitter(rng, sh.Jitter); d > 0 {
		if !c.sleep(d) {
			return false
		}
	}
	for len(b) > 0 {
		if !c.waitOpen() {
			return false
		}
		sh = p.currentShape()
		n := len(b)
		if sh.Slice > 0 {
			n = min(n, 1+rng.IntN(sh.Slice))
		}
		cut, claimed := false, false
		if sh.CutAfter > 0 {
			// Claim the bytes before writing them: the two directions
			// share the budget, and must not both spend what is left.
			for {
				f := c.fwd.Load()
				k := int64(n)
				if left := sh.CutAfter - f; left <= k {
					k, cut = max(left, 0), true
				}
				if c.fwd.CompareAndSwap(f, f+k) {
					n, claimed = int(k), true
					break
				}
				cut = false
			}
		}
		if n > 0 {
			m, err := dst.Write(b[:n])
			p.writes.Add(1)
			if claimed {
				c.fwd.Add(int64(m - n)) // what the write did not take
			} else {
				c.fwd.Add(int64(m))
			}
			if up {
				p.bytesUp.Add(int64(m))
			} else {
				p.bytesDown.Add(int64(m))
			}
			if err != nil {
				c.teardown(true)
				return false
			}
		}
		if cut {
			// Both directions may find the budget spent: the first
			// counts the cut, before the reset that a client may see.
			if c.cut.CompareAndSwap(false, true) {
				p.mu.Lock()
				p.stats.Cuts++
				p.mu.Unlock()
			}
			c.teardown(true)
			return false
		}
		b = b[n:]
		if len(b) > 0 && sh.Slice > 0 && sh.SliceGap > 0 && !c.sleep(sh.SliceGap) {
			return false
		}
	}
	return true
}

func jitter(rng *rand.Rand, j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(j)))
}

func (p *Proxy) currentShape() Shape {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shape
}

// waitOpen waits while c is stranded or the proxy blackholed; it returns
// false when c was torn down.
func (c *conn) waitOpen() bool {
	for {
		if c.stranded.Load() {
			<-c.done
			return false
		}
		c.p.mu.Lock()
		bh, healed := c.p.blackhole, c.p.healed
		c.p.mu.Unlock()
		if !bh {
			select {
			case <-c.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-healed:
		case <-c.done:
			return false
		}
	}
}

// sleep waits d; it returns false when c was torn down meanwhile.
func (c *conn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

// IsRefused reports whether err is a refused connection (ECONNREFUSED), as
// a dial to a proxy in ModeRefuse returns.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// IsReset reports whether err is a reset connection (ECONNRESET or EPIPE).
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
