package faultproxy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// Loss is the fraction of datagrams that the relay drops in each direction,
// each in [0, 1]: 0 drops none, 1 drops them all.
type Loss struct {
	Up   float64 // from the clients to the upstream server
	Down float64 // from the upstream server to the clients
}

// BothWays returns the Loss of rate in both directions.
func BothWays(rate float64) Loss { return Loss{Up: rate, Down: rate} }

func (l Loss) check() error {
	for _, r := range []float64{l.Up, l.Down} {
		if math.IsNaN(r) || r < 0 || r > 1 {
			return fmt.Errorf("tether/tethertest/faultproxy: loss rate %v outside [0, 1]", r)
		}
	}
	return nil
}

// UDPStats counts what a UDPRelay did.
type UDPStats struct {
	Sessions    int   // client addresses seen
	Up, Down    int64 // datagrams forwarded to the upstream server, to the clients
	BytesUp     int64 // bytes forwarded to the upstream server
	BytesDown   int64 // bytes forwarded to the clients
	DroppedUp   int64 // datagrams from the clients dropped (loss or blackhole)
	DroppedDown int64 // datagrams from the upstream server dropped (loss or blackhole)
	Stray       int64 // datagrams to a session from an address other than the upstream, dropped
	Errors      int64 // datagrams that the relay failed to send on
	Faults      int   // faults injected: SetLoss and LoseFor with a loss, Blackhole(true), SetUpstream
}

// A UDPRelay forwards UDP datagrams between clients and an upstream address and
// loses them on command. Its methods are safe for concurrent use.
type UDPRelay struct {
	pc   *net.UDPConn // the clients' side, on 127.0.0.1
	seed uint64
	wg   sync.WaitGroup

	up, down, bytesUp, bytesDown atomic.Int64
	droppedUp, droppedDown       atomic.Int64
	stray, errs                  atomic.Int64

	mu        sync.Mutex
	closed    bool
	upstream  netip.AddrPort
	sessions  map[netip.AddrPort]*udpSession
	loss      Loss
	lossEnd   chan struct{} // closed when the current loss is replaced or ends
	lossTimer *time.Timer   // ends a LoseFor
	blackhole bool
	faults    int
}

// udpSession is the relay's socket for one client address.
type udpSession struct {
	id     uint64
	client netip.AddrPort
	conn   *net.UDPConn // towards the upstream server, on its loopback address
	// rngUp is used only by UDPRelay.serve, rngDown only by the session's own
	// goroutine: each is one direction's sequence of draws.
	rngUp, rngDown *rand.Rand
}

// NewUDPRelay starts a UDPRelay on 127.0.0.1 (an ephemeral port) that forwards to
// upstream, a loopback address ("127.0.0.1:port" or "[::1]:port"). seed
// makes its losses; Close stops it.
func NewUDPRelay(upstream string, seed uint64) (*UDPRelay, error) {
	up, err := parseUDPUpstream(upstream)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r := &UDPRelay{
		pc:       pc,
		seed:     seed,
		upstream: up,
		sessions: make(map[netip.AddrPort]*udpSession),
		lossEnd:  make(chan struct{}),
	}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// parseUDPUpstream checks that addr is a loopback IP address with a port: the
// relay is for tests on this machine only.
func parseUDPUpstream(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("tether/tethertest/faultproxy: upstream: %w", err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().IsLoopback() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("tether/tethertest/faultproxy: upstream %s: want a loopback address and a port", addr)
	}
	return ap, nil
}

// Addr returns the relay's address, "127.0.0.1:port", which the clients dial.
func (r *UDPRelay) Addr() string { return r.pc.LocalAddr().String() }

// Upstream returns the address the relay forwards to.
func (r *UDPRelay) Upstream() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upstream.String()
}

// Seed returns the seed of the relay's losses.
func (r *UDPRelay) Seed() uint64 { return r.seed }

// Sessions returns the number of client addresses the relay has seen (it
// keeps their sessions until it is closed).
func (r *UDPRelay) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Stats returns what the relay did so far. A datagram is counted once it
// has been forwarded, dropped or failed.
func (r *UDPRelay) Stats() UDPStats {
	r.mu.Lock()
	s := UDPStats{Sessions: len(r.sessions), Faults: r.faults}
	r.mu.Unlock()
	s.Up, s.Down = r.up.Load(), r.down.Load()
	s.BytesUp, s.BytesDown = r.bytesUp.Load(), r.bytesDown.Load()
	s.DroppedUp, s.DroppedDown = r.droppedUp.Load(), r.droppedDown.Load()
	s.Stray, s.Errors = r.stray.Load(), r.errs.Load()
	return s
}

// Loss returns the current loss.
func (r *UDPRelay) Loss() Loss {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loss
}

// SetLoss sets the fraction of datagrams dropped in each direction, for
// every session, live or new, until the next SetLoss, LoseFor or Heal. It
// ends a LoseFor in progress.
func (r *UDPRelay) SetLoss(l Loss) error {
	if err := l.check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.setLossLocked(l)
	return nil
}

// LoseFor sets the loss l for d, then heals it (as SetLoss(Loss{}) would).
// It returns at once, with a channel that is closed when this loss ends:
// after d, or sooner if SetLoss, another LoseFor, Heal or Close replaces it.
func (r *UDPRelay) LoseFor(l Loss, d time.Duration) (<-chan struct{}, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, fmt.Errorf("tether/tethertest/faultproxy: LoseFor: duration %v, want more than 0", d)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	r.setLossLocked(l)
	end := r.lossEnd
	r.lossTimer = time.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.lossEnd == end && !r.closed { // not replaced meanwhile
			r.setLossLocked(Loss{})
		}
	})
	return end, nil
}

// setLossLocked replaces the current loss with l, ending it.
func (r *UDPRelay) setLossLocked(l Loss) {
	if r.lossTimer != nil {
		r.lossTimer.Stop()
		r.lossTimer = nil
	}
	close(r.lossEnd)
	r.lossEnd = make(chan struct{})
	r.loss = l
	if l != (Loss{}) {
		r.faults++
	}
}

// Blackhole makes the relay drop every datagram, both ways and for every
// session, live or new, while on is true: the server and its clients hear
// nothing from each other, as behind a network that went down. It adds to
// the loss and leaves it as it is.
func (r *UDPRelay) Blackhole(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on && !r.blackhole {
		r.faults++
	}
	r.blackhole = on
}

// SetUpstream makes the relay forward every datagram, of the live sessions
// too, to addr from now on; addr must be a loopback address of the same
// family as the first upstream. Datagrams that the old address sends
// afterwards are dropped (counted as Stray). To the clients, a server that
// restarted on another port looks like one that restarted on the same port.
func (r *UDPRelay) SetUpstream(addr string) error {
	up, err := parseUDPUpstream(addr)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	if up.Addr().Is4() != r.upstream.Addr().Is4() {
		return fmt.Errorf("tether/tethertest/faultproxy: SetUpstream(%s): the relay forwards to %s, another address family", addr, r.upstream)
	}
	r.upstream = up
	r.faults++
	return nil
}

// Heal ends the loss (a LoseFor included) and the blackhole. The upstream
// address stays as it is.
func (r *UDPRelay) Heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blackhole = false
	if !r.closed {
		r.setLossLocked(Loss{})
	}
}

// Close stops the relay: it closes its sockets, ends a loss in progress and
// waits for its goroutines. A second Close returns an error.
func (r *UDPRelay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errClosed
	}
	r.closed = true
	if r.lossTimer != nil {
		r.lossTimer.Stop()
		r.lossTimer = nil
	}
	close(r.lossEnd)
	r.pc.Close()
	for _, s := range r.sessions {
		s.conn.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// serve reads the clients' datagrams until the relay is closed, and forwards
// them upstream.
func (r *UDPRelay) serve() {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := r.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // a passing error: do not spin on it
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s, up, drop := r.route(from)
		switch {
		case s == nil: // closed, or no socket for a new session
		case drop:
			r.droppedUp.Add(1)
		default:
			// An unconnected socket: a closed upstream port makes no
			// error here, as a crashed server makes none on the network.
			// Counted before it goes, so that whoever sees its answer
			// sees it counted; uncounted if it could not go.
			r.up.Add(1)
			r.bytesUp.Add(int64(n))
			if _, err := s.conn.WriteToUDPAddrPort(buf[:n], up); err != nil {
				r.up.Add(-1)
				r.bytesUp.Add(-int64(n))
				r.errs.Add(1)
			}
		}
	}
}

// route returns the session of a client (making it at its first datagram),
// the address to forward to, and whether to drop the datagram. It returns a
// nil session when the relay is closed or cannot open a socket.
func (r *UDPRelay) route(client netip.AddrPort) (*udpSession, netip.AddrPort, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, netip.AddrPort{}, false
	}
	s := r.sessions[client]
	if s == nil {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.upstream.Addr(), 0)))
		if err != nil {
			return nil, netip.AddrPort{}, false
		}
		id := uint64(len(r.sessions))
		s = &udpSession{
			id:      id,
			client:  client,
			conn:    conn,
			rngUp:   rand.New(rand.NewPCG(r.seed, id<<1)),
			rngDown: rand.New(rand.NewPCG(r.seed, id<<1|1)),
		}
		r.sessions[client] = s
		r.wg.Add(1)
		go r.pump(s)
	}
	lost := s.rngUp.Float64() < r.loss.Up // one draw per datagram, always
	return s, r.upstream, lost || r.blackhole
}

// pump forwards the upstream server's datagrams to the session's client
// until the relay is closed.
func (r *UDPRelay) pump(s *udpSession) {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		r.mu.Lock()
		stray, drop := from != r.upstream, r.blackhole
		if !stray {
			drop = s.rngDown.Float64() < r.loss.Down || drop // one draw per datagram, always
		}
		r.mu.Unlock()
		switch {
		case stray:
			r.stray.Add(1)
		case drop:
			r.droppedDown.Add(1)
		default:
			r.down.Add(1) // as up: counted before it goes
			r.bytesDown.Add(int64(n))
			if _, err := r.pc.WriteToUDPAddrPort(buf[:n], s.client); err != nil {
				r.down.Add(-1)
				r.bytesDown.Add(-int64(n))
				r.errs.Add(1)
			}
		}
	}
}
