package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/sessioncache"
	"github.com/quic-go/quic-go"
)

// Defaults of a Dialer, for the fields of its Config that are zero (and its
// Timeout). They suit a client that wants to learn of a lost server within
// seconds; quic-go's own defaults (30 s idle, no keep-alive, 5 s handshake
// idle timeout) would leave a Tether blind for half a minute.
const (
	// DefaultMaxIdleTimeout is the idle timeout the Dialer asks for: a
	// connection that receives nothing for this long is gone, and the
	// Tether reconnects. The peer may ask for less.
	DefaultMaxIdleTimeout = 10 * time.Second
	// DefaultHandshakeIdleTimeout bounds the wait for the server's first
	// answer. A dial to an address where no QUIC server listens fails only
	// then: QUIC has no "connection refused".
	DefaultHandshakeIdleTimeout = 3 * time.Second
	// DefaultTimeout bounds each Dial: the handshake (which may take up to
	// twice the handshake idle timeout), or the wait for a new stream on a
	// live connection.
	DefaultTimeout = 5 * time.Second
)

var (
	// ErrDialerClosed is wrapped by the errors of Dial after Close. It is
	// permanent (tether.IsPermanent reports true), so a Tether using a
	// closed Dialer gives up.
	ErrDialerClosed = errors.New("tether/quic: Dialer closed")

	errNoTLSConfig     = errors.New("tether/quic: Dialer has no TLSConfig")
	errNoNextProtos    = errors.New("tether/quic: TLSConfig.NextProtos is empty (QUIC requires ALPN)")
	errNegativeTimeout = errors.New("tether/quic: negative Timeout")
	errDialTimeout     = timeoutError("tether/quic: dial attempt timed out")
)

// timeoutError is the cause of a dial attempt that ran out of time (Dialer.
// Timeout): a net.Error that reports Timeout and wraps
// context.DeadlineExceeded. It is transient.
type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }
func (e timeoutError) Unwrap() error { return context.DeadlineExceeded }

// Temporary is false: the interface still asks for it.
func (e timeoutError) Temporary() bool { return false }

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
type Dialer struct {
	// TLSConfig configures TLS for every connection. It must be non-nil
	// and set NextProtos (QUIC requires ALPN, and the server must offer a
	// matching protocol). When ServerName is empty, the host part of the
	// address is used.
	//
	// The Dialer clones it at its first Dial and never changes the
	// caller's: when ClientSessionCache is nil, the clone gets an LRU cache
	// of its own, so that redials resume the TLS session.
	TLSConfig *tls.Config

	// Config configures QUIC; nil is the zero Config. It is copied at the
	// first Dial and never changed. Its zero fields take the Dialer's
	// defaults: MaxIdleTimeout DefaultMaxIdleTimeout, HandshakeIdleTimeout
	// DefaultHandshakeIdleTimeout, KeepAlivePeriod half the idle timeout (so
	// that a quiet connection stays up; a negative KeepAlivePeriod turns
	// keep-alives off), TokenStore an LRU store (so that a redial skips
	// address validation). Its other fields take quic-go's defaults.
	Config *quic.Config

	// Timeout bounds each Dial, whether it opens a new stream on a live
	// connection or makes a new connection: a dial to an address where no
	// server answers fails at the sooner of Timeout and the handshake idle
	// timeout. 0 means DefaultTimeout; a negative Timeout is an error.
	Timeout time.Duration

	// Enable0RTT makes redials that resume a TLS session send the first
	// bytes written in 0-RTT, saving a round trip, when the server accepts
	// it (quic-go: ListenEarly with Config.Allow0RTT). Off by default,
	// because 0-RTT data can be replayed by an attacker who captured it:
	// turn it on only when the first bytes written after a (re)connect
	// (an OnConnect hello, say) are safe to receive twice.
	//
	// When the server rejects 0-RTT, the bytes written in it are sent again
	// on a fresh stream once the handshake completes, unseen by the Tether.
	Enable0RTT bool

	mu      sync.Mutex
	inited  bool
	initErr error // a bad configuration, returned by every Dial
	closed  bool
	ctx     context.Context // done on Close: aborts the dials in progress
	cancel  context.CancelFunc
	tls     *tls.Config
	conf    *quic.Config
	timeout time.Duration
	tr      *quic.Transport // nil while the Dialer has no connection and no dial
	udp     *net.UDPConn    // tr's socket
	conns   map[string]*entry
	dialing int            // dials in progress
	wg      sync.WaitGroup // the dials in progress, for Close
}

// entry is the QUIC connection of one address, or the dial making it. conn
// and err are written before done is closed.
type entry struct {
	done chan struct{}
	conn *quic.Conn // nil while dialing, and if the dial failed
	err  error
	// abandoned reports that the dial failed because its caller's ctx
	// ended: the Dials that waited for it dial again.
	abandoned bool
}

// Dial opens a bidirectional stream to addr ("host:port") and returns it as a
// net.Conn (a *Conn). When the Dialer holds a live QUIC connection to addr, it
// opens the stream on it without a handshake; otherwise it dials a new
// connection, resuming the TLS session when it can (and with 0-RTT when
// Enable0RTT is set), and concurrent Dials to the same address share that
// dial. The host is resolved again at each new connection.
//
// Errors that a retry cannot mend are marked permanent for
// tether.IsPermanent: a bad configuration, ErrDialerClosed, an address
// without a port, a TLS failure (certificate verification, no common ALPN
// protocol), no common QUIC version. Everything else, a server that does not
// answer in time included, is transient. ctx bounds the Dial only; the
// stream and its connection outlive it.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := d.init(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(d.ctx, func() { cancel(ErrDialerClosed) })
	defer stop()
	ctx, cancelT := context.WithTimeoutCause(ctx, d.timeout, errDialTimeout)
	defer cancelT()

	for {
		qc, fresh, err := d.conn(ctx, addr)
		if err != nil {
			return nil, dialError(addr, err)
		}
		s, err := openStream(ctx, qc)
		if err == nil {
			return newConn(qc, s, fresh, d.timeout), nil
		}
		if ctx.Err() != nil {
			return nil, dialError(addr, context.Cause(ctx))
		}
		// The connection died between its check and the new stream (its
		// Context ends only once its close is complete): forget it and
		// dial a new one, unless it was new already.
		d.forget(addr, qc)
		if fresh {
			return nil, dialError(addr, err)
		}
	}
}

// openStream opens a stream on c, which may have just seen its 0-RTT data
// rejected: quic-go then refuses new streams until NextConnection.
func openStream(ctx context.Context, c *quic.Conn) (*quic.Stream, error) {
	s, err := c.OpenStreamSync(ctx)
	if errors.Is(err, quic.Err0RTTRejected) {
		if _, err = c.NextConnection(ctx); err != nil {
			return nil, err
		}
		s, err = c.OpenStreamSync(ctx)
	}
	return s, err
}

// conn returns a live QUIC connection to addr, dialing one if need be; fresh
// reports that this call dialed it.
func (d *Dialer) conn(ctx context.Context, addr string) (c *quic.Conn, fresh bool, err error) {
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
			c, err := d.dial(ctx, addr, e)
			return c, err == nil, err
		}
		d.mu.Unlock()

		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, false, context.Cause(ctx)
		}
		switch {
		case e.conn != nil:
			// Context is done once the connection is gone (idle timeout,
			// close by either side, stateless reset).
			if e.conn.Context().Err() == nil {
				return e.conn, false, nil
			}
			d.forget(addr, e.conn)
		case !e.abandoned:
			return nil, false, e.err // the dial this call waited for failed
		}
	}
}

// dial makes a new QUIC connection to addr for entry e, and settles e.
func (d *Dialer) dial(ctx context.Context, addr string, e *entry) (*quic.Conn, error) {
	defer d.wg.Done()
	tr, c, err := d.handshake(ctx, addr)

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
	e.conn, e.err = c, err
	e.abandoned = err != nil && ctx.Err() != nil
	var release func()
	if err != nil && d.conns[addr] == e {
		delete(d.conns, addr)
		release = d.releaseLocked()
	}
	close(e.done)
	d.mu.Unlock()

	if orphan != nil {
		orphan.CloseWithError(0, "")
	}
	if release != nil {
		release()
	}
	if c != nil {
		// Forget the connection once it is gone, and the socket with the
		// last one. (No goroutine until then.)
		context.AfterFunc(c.Context(), func() { d.drop(addr, c) })
	}
	return c, err
}

// drop forgets c, a connection to addr that is gone, and releases the
// socket if it was the last one.
func (d *Dialer) drop(addr string, c *quic.Conn) {
	d.mu.Lock()
	var release func()
	if e := d.conns[addr]; e != nil && e.conn == c {
		delete(d.conns, addr)
		release = d.releaseLocked()
	}
	d.mu.Unlock()
	if release != nil {
		release()
	}
}

// releaseLocked takes the socket and its transport from the Dialer when it
// has no connection left and no dial in progress, and returns the function
// that closes them (to call without d.mu), or nil.
func (d *Dialer) releaseLocked() func() {
	if d.tr == nil || len(d.conns) > 0 || d.dialing > 0 {
		return nil
	}
	tr, udp := d.tr, d.udp
	d.tr, d.udp = nil, nil
	return func() {
		tr.Close()
		udp.Close()
	}
}

// handshake resolves addr and dials a QUIC connection to it.
func (d *Dialer) handshake(ctx context.Context, addr string) (*quic.Transport, *quic.Conn, error) {
	host, raddr, err := resolve(ctx, addr)
	if err != nil {
		return nil, nil, err
	}
	tr, err := d.transport()
	if err != nil {
		return nil, nil, err
	}
	tc := d.tls
	if tc.ServerName == "" {
		tc = tc.Clone() // cheap next to a handshake; shares the session cache
		tc.ServerName = host
	}
	guard := sessioncache.Note(tc.ClientSessionCache, tc.ServerName)
	var c *quic.Conn
	if d.Enable0RTT {
		c, err = tr.DialEarly(ctx, raddr, tc, d.conf)
	} else {
		c, err = tr.Dial(ctx, raddr, tc, d.conf)
	}
	var te *quic.TransportError
	if err != nil && !(errors.As(err, &te) && te.ErrorCode.IsCryptoError()) {
		// No TLS alert: the server did not answer (it is down, the attempt
		// timed out). crypto/tls dropped the session it offered; keep it
		// for the redial that succeeds.
		guard.Restore()
	}
	return tr, c, err
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

// forget drops c, a dead connection to addr, from the Dialer.
func (d *Dialer) forget(addr string, c *quic.Conn) {
	// c is dead or dying; this only makes sure it ends. Its end drops it
	// from the Dialer.
	c.CloseWithError(0, "")
	d.drop(addr, c)
}

// resolve splits addr and resolves its host, preferring IPv4 as
// net.ResolveUDPAddr does.
func resolve(ctx context.Context, addr string) (string, *net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return "", nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", nil, err
	}
	ip := ips[0]
	for _, a := range ips {
		if a.Unmap().Is4() {
			ip = a
			break
		}
	}
	return host, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(p))), nil
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
	d.timeout = d.Timeout
	if d.timeout == 0 {
		d.timeout = DefaultTimeout
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.conns = make(map[string]*entry)
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
		c.KeepAlivePeriod = c.MaxIdleTimeout / 2
	case c.KeepAlivePeriod < 0:
		c.KeepAlivePeriod = 0 // quic-go: no keep-alives
	}
	if c.TokenStore == nil {
		c.TokenStore = quic.NewLRUTokenStore(16, 4)
	}
	return c
}

// Close closes the QUIC connections of the Dialer, telling each server
// (application error code 0), and its UDP socket, and aborts the dials in
// progress; it returns once they have ended. The streams of the Tethers
// using the Dialer fail, and their redials fail with ErrDialerClosed, which
// is permanent: with the default policy they give up. Close is idempotent.
func (d *Dialer) Close() error {
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
	conns := make([]*quic.Conn, 0, len(d.conns))
	for _, e := range d.conns {
		if e.conn != nil {
			conns = append(conns, e.conn)
		}
	}
	d.conns = nil
	tr, udp := d.tr, d.udp
	d.tr, d.udp = nil, nil
	d.mu.Unlock()

	for _, c := range conns {
		c.CloseWithError(0, "")
	}
	if tr != nil {
		tr.Close() // waits for its goroutines; the socket is ours to close
		udp.Close()
	}
	return nil
}

// dialError wraps err, the failure of a dial to addr, and marks it permanent
// when a retry cannot mend it.
func dialError(addr string, err error) error {
	if err == ErrDialerClosed {
		return tether.Permanent(err) // says all there is to say
	}
	werr := fmt.Errorf("tether/quic: dial %s: %w", addr, err)
	if permanent(err) {
		return tether.Permanent(werr)
	}
	return werr
}

// permanent reports whether err, a dial error, will happen again however
// often the dial is retried.
func permanent(err error) bool {
	if errors.Is(err, ErrDialerClosed) {
		return true
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		// A TLS alert, local or from the server: certificate verification,
		// no common ALPN protocol or cipher suite. Only internal_error (80)
		// may be a passing trouble of the peer.
		return te.ErrorCode != 0x100+80
	}
	var ve *quic.VersionNegotiationError
	return errors.As(err, &ve)
}

// Dial returns a Tether over a QUIC stream to addr, with a Dialer of its own
// configured by tlsConfig: the convenience for tether.Dial(ctx,
// &Dialer{TLSConfig: tlsConfig}, addr, h, opts...). The Dialer's connection
// is closed when the Tether ends (a goroutine waits for that). Tethers that
// should share one QUIC connection share a Dialer instead.
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
