package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/attempt"
	"github.com/io-tether/tether/internal/sessioncache"
	"github.com/quic-go/quic-go"
)

// Defaults of a Dialer, for the fields of its Config that are zero. They
// suit a client that wants to learn of a lost server within seconds;
// quic-go's own defaults (30 s idle, no keep-alive, 5 s handshake idle
// timeout) would leave a Tether blind for half a minute.
const (
	// DefaultMaxIdleTimeout is the idle timeout the Dialer asks for: a
	// connection that receives nothing for this long is gone, and the
	// Tether reconnects. The peer may ask for less. quic-go counts it from
	// the last packet received or, when later, from the first packet sent
	// after it that needs an answer: a server that vanished is noticed
	// between DefaultMaxIdleTimeout and DefaultMaxIdleTimeout plus
	// DefaultKeepAlivePeriod after its last packet (5.0 to 6.0 s; measured
	// against a SIGKILLed ngtcp2 server, see the package documentation).
	DefaultMaxIdleTimeout = 5 * time.Second
	// DefaultKeepAlivePeriod is how often a connection that has heard
	// nothing sends a PING (at most every half idle timeout). A second is
	// short enough to keep alive a connection to a server whose own idle
	// timeout is as short as 2 s (quic-go reads a peer's idle timeout
	// below 5 s as 5 s, so it cannot adapt to one), and it lets the Dialer
	// tell within about 2.5 s that a connection no longer hears from its
	// server.
	DefaultKeepAlivePeriod = time.Second
	// DefaultHandshakeIdleTimeout bounds the wait for the server's first
	// answer. A dial to an address where no QUIC server listens fails only
	// then: QUIC has no "connection refused".
	DefaultHandshakeIdleTimeout = 3 * time.Second
)

var (
	// ErrDialerClosed is wrapped by the errors of Dial after Close. It is
	// permanent (tether.IsPermanent reports true), so a Tether using a
	// closed Dialer gives up.
	ErrDialerClosed = errors.New("tether/quic: Dialer closed")

	errNoTLSConfig     = errors.New("tether/quic: Dialer has no TLSConfig")
	errNoNextProtos    = errors.New("tether/quic: TLSConfig.NextProtos is empty (QUIC requires ALPN)")
	errNegativeTimeout = errors.New("tether/quic: negative Timeout")
	errNegativeIdle    = errors.New("tether/quic: negative Config.MaxIdleTimeout")
	errNegativeHSIdle  = errors.New("tether/quic: negative Config.HandshakeIdleTimeout")
	errLongHSIdle      = fmt.Errorf("tether/quic: Config.HandshakeIdleTimeout above %v", time.Duration(maxHandshakeIdleTimeout))
	errNilDialer       = errors.New("tether/quic: nil *Dialer")
	errNilConn         = errors.New("tether/quic: Conn not made by a Dialer")
)

// A Dialer opens QUIC streams for Tethers, one bidirectional stream per
// connection of a Tether. It keeps one QUIC connection per address and opens
// the streams of all the Tethers it serves on it, so that a reconnect after a
// stream failure costs no handshake, and it keeps a TLS session cache so that
// a redial after the connection is lost resumes the session.
//
// A Dialer needs a TLSConfig; the rest of its zero value is usable. It is safe
// for concurrent use by many Tethers, as long as its fields are not changed
// after its first Dial. Close it when its Tethers are done: until then it
// keeps its connections up (they send keep-alives). Its UDP socket, and the
// goroutines that serve it, live only while it has a connection or a dial in
// progress: once its connections are gone (closed by the servers, timed
// out), so is the socket, and the next Dial makes a new one.
//
// A nil *Dialer returns an error from Dial and Close.
type Dialer struct {
	// TLSConfig configures TLS for every connection. It must be non-nil
	// and set NextProtos (QUIC requires ALPN, and the server must offer a
	// matching protocol). When ServerName is empty, the host part of the
	// address is used (the loopback address dialed, for an address whose
	// host is empty or unspecified).
	//
	// The Dialer clones it at its first Dial and never changes the
	// caller's: when ClientSessionCache is nil, the clone gets an LRU cache
	// of its own, so that redials resume the TLS session.
	TLSConfig *tls.Config

	// Config configures QUIC; nil is the zero Config. It is copied at the
	// first Dial and never changed. Its zero fields take the Dialer's
	// defaults: MaxIdleTimeout DefaultMaxIdleTimeout, HandshakeIdleTimeout
	// DefaultHandshakeIdleTimeout, KeepAlivePeriod DefaultKeepAlivePeriod
	// or half the idle timeout, whichever is shorter (a negative
	// KeepAlivePeriod turns keep-alives off, and with them the Dialer's
	// check that a connection still hears from its server), TokenStore an
	// LRU store (so that a redial skips address validation). Its other
	// fields take quic-go's defaults. A negative MaxIdleTimeout or
	// HandshakeIdleTimeout, a HandshakeIdleTimeout above math.MaxInt64/2
	// (about 146 years), or a version in Versions other than quic.Version1
	// and quic.Version2, is an error.
	Config *quic.Config

	// Timeout bounds each Dial that makes a new connection: a dial to an
	// address where no server answers fails at the sooner of Timeout and
	// the handshake idle timeout. 0 means tcp.DefaultTimeout, the default
	// of every dialer of this module; a negative Timeout is an error. (A
	// Dial on a live connection returns at once: the stream opens at the
	// first Write.)
	Timeout time.Duration

	// Enable0RTT makes redials that resume a TLS session send the first
	// bytes written in 0-RTT, saving a round trip, when the server accepts
	// it (a server whose quic.Config has Allow0RTT: quic-go's Listen or
	// ListenEarly, and this package's Listen). Off by default,
	// because 0-RTT data can be replayed by an attacker who captured it:
	// turn it on only when the first bytes written after a (re)connect
	// (an OnConnect hello, say) are safe to receive twice.
	//
	// When the server rejects 0-RTT, the bytes written in it are sent again
	// on a fresh stream once the handshake completes, unseen by the Tether.
	//
	// A 0-RTT dial returns before the server answers, so a dial to a
	// server that is down succeeds, and the connection fails at the
	// handshake idle timeout instead. After such a failure, dials to that
	// address wait for the handshake (1-RTT, still resuming the session)
	// until one succeeds: they fail as dials do, and a Tether's count of
	// failed dials (Event.Attempt, Backoff's MaxAttempts) grows.
	//
	// quic-go v0.65 has an open data race of its own here (quic-go issue
	// 4303): a stream opened during the 0-RTT handshake reads the server's
	// transport parameters while the handshake writes them. The race
	// detector may report it in programs that set Enable0RTT.
	Enable0RTT bool

	// StreamErrorCode is the application error code of the RESET_STREAM
	// and STOP_SENDING frames with which a Conn ends a stream it abandons
	// (see Conn.Close). Application protocols define their own codes:
	// HTTP/3's H3_NO_ERROR is 0x100 and H3_REQUEST_CANCELLED 0x10c. The
	// default is 0.
	StreamErrorCode quic.StreamErrorCode

	// ResetOnClose makes Close reset a stream that CloseWrite did not end,
	// instead of sending a FIN after the bytes written. Set it for framed
	// request/response protocols (HTTP/3 and the like), where a FIN after
	// part of a request is an error, so that a Tether closed in the middle
	// of a request cancels it; leave it off for byte streams, where Close
	// delivers what was written, as on TCP. Either way a stream that never
	// carried a byte, or that failed, is reset (see Conn).
	ResetOnClose bool

	// ConnErrorCode is the application error code of the
	// CONNECTION_CLOSE frame with which the Dialer closes a connection: on
	// Close, and when it retires a connection that stopped hearing from its
	// server. HTTP/3's H3_NO_ERROR is 0x100. The default is 0.
	ConnErrorCode quic.ApplicationErrorCode

	mu        sync.Mutex
	inited    bool
	initErr   error // a bad configuration, returned by every Dial
	closed    bool
	ctx       context.Context // done on Close: aborts the dials in progress
	cancel    context.CancelFunc
	tls       *tls.Config
	conf      *quic.Config
	timeout   time.Duration
	keepAlive time.Duration       // the keep-alive interval in effect; 0: none
	tr        *quic.Transport     // nil while the Dialer has no connection and no dial
	udp       *net.UDPConn        // tr's socket
	conns     map[string]*entry   // the connection new streams to each address go on
	unheard   map[string]bool     // addresses whose last 0-RTT handshake went unanswered: no 0-RTT to them
	live      map[*qconn]struct{} // every connection not yet gone, retired ones included
	dialing   int                 // dials in progress
	wg        sync.WaitGroup      // the dials in progress, for Close
}

// entry is the QUIC connection of one address, or the dial making it. conn
// and err are written before done is closed.
type entry struct {
	done chan struct{}
	conn *qconn // nil while dialing, and if the dial failed
	err  error
	// abandoned reports that the dial failed because its caller's ctx
	// ended: the Dials that waited for it dial again.
	abandoned bool
}

// Dial returns a net.Conn (a *Conn) for a new bidirectional stream to addr
// ("host:port"; an empty or unspecified host, as in ":443" or
// "0.0.0.0:443", is the local system, as for net.Dial: 127.0.0.1, or ::1 for
// "[::]:443"). When the Dialer holds a live QUIC connection to addr that
// still hears from its server, the Conn goes on it, without a handshake;
// otherwise Dial dials a new connection, resuming the TLS session when it
// can (and with 0-RTT when Enable0RTT is set), and concurrent Dials to the
// same address share that dial. The host is resolved again at each new
// connection.
//
// The stream itself opens at the Conn's first Write (see Conn): Dial never
// waits for the server to allow one more stream.
//
// Its errors are "dial quic ADDR: ..." (see the package documentation).
// Those that a retry cannot mend are marked permanent for
// tether.IsPermanent: a bad configuration, ErrDialerClosed, an address
// without a port, a TLS failure (certificate verification, no common ALPN
// protocol, a TLSConfig that rules out TLS 1.3), no common QUIC version.
// Everything else, a server that does not answer in time or fails with a
// TLS internal_error included, is transient. ctx bounds the Dial only; the
// Conn and its connection outlive it.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if d == nil {
		return nil, attempt.Error("quic", addr, tether.Permanent(errNilDialer))
	}
	if err := d.init(); err != nil {
		return nil, attempt.Error("quic", addr, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(d.ctx, func() { cancel(ErrDialerClosed) })
	defer stop()
	ctx, cancelT := attempt.WithTimeout(ctx, "tether/quic", d.timeout)
	defer cancelT()

	q, fresh, err := d.conn(ctx, addr)
	if err != nil {
		return nil, dialError(addr, err)
	}
	c := newConn(q, fresh)
	if !handshakeDone(q.qc) {
		// A 0-RTT connection: open the stream now, as the dial returns,
		// and not at the first Write, which may come as the handshake
		// completes: quic-go v0.65 reads the server's transport
		// parameters in OpenStream without synchronising with the
		// handshake that writes them. (When the server allows no stream
		// yet, the first Write waits for one as usual.)
		c.open(false)
	}
	return c, nil
}

// conn returns a live QUIC connection to addr, taken for a new Conn,
// dialing one if need be; fresh reports that this call dialed it.
func (d *Dialer) conn(ctx context.Context, addr string) (q *qconn, fresh bool, err error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, false, ErrDialerClosed
		}
		e := d.conns[addr]
		if e == nil {
			e = &entry{done: make(chan struct{})}
			d.conns[addr] = e
			d.dialing++
			d.wg.Add(1)
			d.mu.Unlock()
			q, err := d.dial(ctx, addr, e)
			return q, err == nil, err
		}
		d.mu.Unlock()

		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, false, context.Cause(ctx)
		}
		switch {
		case e.conn != nil:
			// acquire refuses a connection that is gone (its Context is
			// done once it closed: idle timeout, close by either side,
			// stateless reset) or no longer hears from its server (it
			// retires it): the loop then dials a new one.
			if e.conn.acquire(time.Now()) {
				return e.conn, false, nil
			}
			d.unlist(e.conn)
		case !e.abandoned:
			return nil, false, e.err // the dial this call waited for failed
		}
	}
}

// dial makes a new QUIC connection to addr for entry e, and settles e. The
// connection it returns is taken for a Conn.
func (d *Dialer) dial(ctx context.Context, addr string, e *entry) (*qconn, error) {
	defer d.wg.Done()
	tr, c, unanswered, err := d.handshake(ctx, addr)

	d.mu.Lock()
	d.dialing--
	var orphan *quic.Conn
	if err == nil && d.closed {
		// Close has already closed the connections it found.
		orphan, c, err = c, nil, ErrDialerClosed
	}
	if errors.Is(err, quic.ErrTransportClosed) && !d.closed && d.tr == tr {
		// The socket failed: the next dial makes a new one.
		d.tr = nil
		d.udp.Close()
	}
	var q *qconn
	if c != nil {
		q = newQConn(d, addr, c)
		q.refs = 1 // for the Conn of this Dial
		q.unanswered = unanswered
		d.live[q] = struct{}{}
	}
	e.conn, e.err = q, err
	e.abandoned = err != nil && ctx.Err() != nil
	var release func()
	if err != nil && d.conns[addr] == e {
		delete(d.conns, addr)
		release = d.releaseLocked()
	}
	close(e.done)
	d.mu.Unlock()

	if orphan != nil {
		orphan.CloseWithError(d.ConnErrorCode, "")
	}
	if release != nil {
		release()
	}
	if q != nil {
		// Forget the connection once it is gone, and the socket with the
		// last one. (No goroutine until then.)
		context.AfterFunc(c.Context(), func() { d.drop(q) })
	}
	return q, err
}

// unlist stops new streams to q's address from going on q.
func (d *Dialer) unlist(q *qconn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.conns[q.addr]; e != nil && e.conn == q {
		delete(d.conns, q.addr)
	}
}

// drop forgets q, a connection that is gone, and releases the socket if it
// was the last one.
func (d *Dialer) drop(q *qconn) {
	q.stop()
	d.mu.Lock()
	if e := d.conns[q.addr]; e != nil && e.conn == q {
		delete(d.conns, q.addr)
	}
	delete(d.live, q)
	release := d.releaseLocked()
	d.mu.Unlock()
	if release != nil {
		release()
	}
}

// releaseLocked takes the socket and its transport from the Dialer when it
// has no connection left and no dial in progress, and returns the function
// that closes them (to call without d.mu), or nil.
func (d *Dialer) releaseLocked() func() {
	if d.tr == nil || len(d.live) > 0 || d.dialing > 0 {
		return nil
	}
	tr, udp := d.tr, d.udp
	d.tr, d.udp = nil, nil
	return func() {
		tr.Close()
		udp.Close()
	}
}

// handshake resolves addr and dials a QUIC connection to it. For a 0-RTT
// connection, up before the server answered, it also returns the function
// to call with the error that ends the connection (see unanswered).
func (d *Dialer) handshake(ctx context.Context, addr string) (*quic.Transport, *quic.Conn, func(error), error) {
	host, raddr, err := resolve(ctx, addr)
	if err != nil {
		return nil, nil, nil, err
	}
	tr, err := d.transport()
	if err != nil {
		return nil, nil, nil, err
	}
	tc := d.tls
	if tc.ServerName == "" {
		tc = tc.Clone() // cheap next to a handshake; shares the session cache
		tc.ServerName = host
	}
	guard := sessioncache.Note(tc.ClientSessionCache, tc.ServerName)
	var c *quic.Conn
	if d.Enable0RTT && !d.isUnheard(addr) {
		c, err = tr.DialEarly(ctx, raddr, tc, d.conf)
	} else {
		c, err = tr.Dial(ctx, raddr, tc, d.conf)
		if err == nil {
			d.setUnheard(addr, false)
		}
	}
	var unanswered func(error)
	switch {
	case err != nil:
		if !tlsAlert(err) {
			// No TLS alert: the server did not answer (it is down, the
			// attempt timed out). crypto/tls dropped the session it
			// offered; keep it for the redial that succeeds.
			guard.Restore()
		}
	case !handshakeDone(c):
		// A 0-RTT connection, up before the server answered: its
		// handshake may yet fail as a dial would (the server is down),
		// after this returned, and crypto/tls then drops the session it
		// offered, as the connection ends. The session goes back once
		// the connection has ended: from qconn.close, before the Dial
		// that closed it goes on, or as its Context ends. Before that
		// (its streams failed first, Conn.note) the session is still
		// there, and only the next dials' 0-RTT is turned off. Once
		// ended: a later call (a Conn that fails much later) could put
		// the session back after a TLS alert of a newer connection made
		// crypto/tls drop it.
		var once sync.Once
		unanswered = func(cause error) {
			if handshakeDone(c) || tlsAlert(cause) {
				return
			}
			d.setUnheard(addr, true) // the next dials fail as dials do
			if c.Context().Err() == nil {
				return
			}
			once.Do(guard.Restore)
		}
		context.AfterFunc(c.Context(), func() { unanswered(context.Cause(c.Context())) })
	}
	return tr, c, unanswered, err
}

// isUnheard reports whether the last 0-RTT handshake with addr went
// unanswered, and no handshake has completed since.
func (d *Dialer) isUnheard(addr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unheard[addr]
}

func (d *Dialer) setUnheard(addr string, unheard bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case unheard && d.unheard == nil:
		d.unheard = map[string]bool{addr: true}
	case unheard:
		d.unheard[addr] = true
	default:
		delete(d.unheard, addr)
	}
}

// tlsAlert reports whether err is a QUIC CRYPTO_ERROR: a TLS alert, ours
// or the server's.
func tlsAlert(err error) bool {
	var te *quic.TransportError
	return errors.As(err, &te) && te.ErrorCode.IsCryptoError()
}

// transport returns the Dialer's QUIC transport, making it (and its UDP
// socket) at the first dial.
func (d *Dialer) transport() (*quic.Transport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tr != nil {
		return d.tr, nil
	}
	// A wildcard socket is dual-stack where the system allows it: it
	// reaches IPv4 and IPv6 servers.
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	d.udp = udp
	d.tr = &quic.Transport{Conn: udp}
	return d.tr, nil
}

// resolve splits addr and resolves its host, preferring IPv4 as
// net.ResolveUDPAddr does, and returns the host to verify the server's
// certificate for. An empty or unspecified host is the local system, as for
// net.Dial: its loopback address (IPv4 for an empty host), which is then
// also the host returned.
func resolve(ctx context.Context, addr string) (string, *net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return "", nil, err
	}
	if p == 0 {
		// An empty port is 0, to which UDP sends nothing: every dial
		// would fail alike (quic-go's INTERNAL_ERROR, as transient).
		return "", nil, &net.AddrError{Err: "no port to dial", Addr: addr}
	}
	ip := netip.IPv4Unspecified()
	if host != "" {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return "", nil, err
		}
		ip = ips[0]
		for _, a := range ips {
			if a.Unmap().Is4() {
				ip = a
				break
			}
		}
		ip = ip.Unmap()
	}
	switch {
	case ip == netip.IPv4Unspecified():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		host = ip.String()
	case ip == netip.IPv6Unspecified():
		ip = netip.IPv6Loopback()
		host = ip.String()
	}
	return host, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p))), nil
}

// init checks the configuration and fills the defaults, once.
func (d *Dialer) init() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return tether.Permanent(ErrDialerClosed)
	}
	if d.inited {
		return d.initErr
	}
	d.inited = true
	switch {
	case d.TLSConfig == nil:
		d.initErr = errNoTLSConfig
	case len(d.TLSConfig.NextProtos) == 0:
		d.initErr = errNoNextProtos
	case d.Timeout < 0:
		d.initErr = errNegativeTimeout
	default:
		d.initErr = checkConfig(d.Config)
	}
	if d.initErr != nil {
		d.initErr = tether.Permanent(d.initErr)
		return d.initErr
	}
	d.tls = d.TLSConfig.Clone()
	if d.tls.ClientSessionCache == nil {
		d.tls.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	d.conf = configWithDefaults(d.Config)
	if d.conf.KeepAlivePeriod > 0 {
		// quic-go's interval: the period, at most half the idle timeout.
		d.keepAlive = min(d.conf.KeepAlivePeriod, d.conf.MaxIdleTimeout/2)
	}
	d.timeout = d.Timeout
	if d.timeout == 0 {
		d.timeout = attempt.DefaultTimeout
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.conns = make(map[string]*entry)
	d.live = make(map[*qconn]struct{})
	return nil
}

// maxHandshakeIdleTimeout is the longest HandshakeIdleTimeout: quic-go
// bounds a handshake by twice it, which must not overflow.
const maxHandshakeIdleTimeout = math.MaxInt64 / 2

// checkConfig returns the error of a quic.Config that no dial can succeed
// with: quic-go panics on a negative MaxIdleTimeout (it cannot encode it),
// fails every handshake at once with a negative HandshakeIdleTimeout (or
// one whose double overflows), and refuses a version it does not speak, all
// as if the next dial could do better. (A negative KeepAlivePeriod is
// valid: no keep-alives.)
func checkConfig(c *quic.Config) error {
	if c == nil {
		return nil
	}
	if c.MaxIdleTimeout < 0 {
		return errNegativeIdle
	}
	if c.HandshakeIdleTimeout < 0 {
		return errNegativeHSIdle
	}
	if c.HandshakeIdleTimeout > maxHandshakeIdleTimeout {
		return errLongHSIdle
	}
	for _, v := range c.Versions {
		if v != quic.Version1 && v != quic.Version2 {
			return fmt.Errorf("tether/quic: unsupported QUIC version %s in Config.Versions", v)
		}
	}
	return nil
}

// configWithDefaults returns a copy of c with the Dialer's defaults in its
// zero fields.
func configWithDefaults(c *quic.Config) *quic.Config {
	if c == nil {
		c = &quic.Config{}
	}
	c = c.Clone()
	if c.MaxIdleTimeout == 0 {
		c.MaxIdleTimeout = DefaultMaxIdleTimeout
	}
	if c.HandshakeIdleTimeout == 0 {
		c.HandshakeIdleTimeout = DefaultHandshakeIdleTimeout
	}
	switch {
	case c.KeepAlivePeriod == 0:
		c.KeepAlivePeriod = min(DefaultKeepAlivePeriod, c.MaxIdleTimeout/2)
	case c.KeepAlivePeriod < 0:
		c.KeepAlivePeriod = 0 // quic-go: no keep-alives
	}
	if c.TokenStore == nil {
		c.TokenStore = quic.NewLRUTokenStore(16, 4)
	}
	return c
}

// Close closes the QUIC connections of the Dialer, telling each server
// (with ConnErrorCode), and its UDP socket, and aborts the dials in
// progress; it returns once they have ended. The streams of the Tethers
// using the Dialer fail, and their redials fail with ErrDialerClosed, which
// is permanent: with the default policy they give up. What the streams
// wrote that the servers have not acknowledged is lost with the
// connections (see Conn). Close is idempotent.
func (d *Dialer) Close() error {
	if d == nil {
		return errNilDialer
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	d.wg.Wait() // no dial adds a connection after this

	d.mu.Lock()
	conns := make([]*qconn, 0, len(d.live))
	for q := range d.live {
		conns = append(conns, q)
	}
	d.conns = nil
	tr, udp := d.tr, d.udp
	d.tr, d.udp = nil, nil
	d.mu.Unlock()

	for _, q := range conns {
		q.stop()
		q.close()
	}
	if tr != nil {
		tr.Close() // waits for its goroutines; the socket is ours to close
		udp.Close()
	}
	return nil
}

// dialError returns err, the failure of a dial to addr, as "dial quic ADDR:
// ...", marked permanent when a retry cannot mend it.
func dialError(addr string, err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		// The TLS alert is the code less 0x100: errors.As finds it as a
		// tls.AlertError, as in crypto/tls's errors over TCP.
		err = &cryptoError{err: err, alert: tls.AlertError(te.ErrorCode - 0x100)}
	}
	if permanent(err) {
		err = tether.Permanent(err)
	}
	return attempt.Error("quic", addr, err)
}

// A cryptoError is a QUIC CRYPTO_ERROR with the TLS alert it carries.
type cryptoError struct {
	err   error
	alert tls.AlertError
}

func (e *cryptoError) Error() string   { return e.err.Error() }
func (e *cryptoError) Unwrap() []error { return []error{e.err, e.alert} }

// permanent reports whether err, a dial error, will happen again however
// often the dial is retried.
func permanent(err error) bool {
	if errors.Is(err, ErrDialerClosed) {
		return true
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		// A TLS alert, local or from the server: certificate verification,
		// no common ALPN protocol or cipher suite. Only the server's
		// internal_error (80) may be a passing trouble; raised here, it
		// comes of a TLSConfig that cannot work (one without TLS 1.3, say).
		return te.ErrorCode != 0x100+80 || !te.Remote
	}
	var ve *quic.VersionNegotiationError
	return errors.As(err, &ve)
}

// Dial returns a Tether over a QUIC stream to addr, with a Dialer of its own
// configured by tlsConfig: the convenience for tether.Dial(ctx,
// &Dialer{TLSConfig: tlsConfig}, addr, h, opts...). The Dialer's connection
// is closed when the Tether ends (a goroutine waits for that), and with it
// what the stream wrote that the server has not acknowledged (see Conn).
// Tethers that should share one QUIC connection share a Dialer instead.
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config, h tether.DisconnectHandler, opts ...tether.Option) (*tether.Tether, error) {
	d := &Dialer{TLSConfig: tlsConfig}
	t, err := tether.Dial(ctx, d, addr, h, opts...)
	if err != nil {
		d.Close()
		return nil, err
	}
	go func() {
		<-t.Done()
		d.Close()
	}()
	return t, nil
}
