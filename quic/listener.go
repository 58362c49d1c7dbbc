package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// A Listener accepts QUIC connections and hands out each bidirectional
// stream they open as a net.Conn (a *StreamConn): the server side of what a
// Dialer dials, for a server that serves streams as it would TCP
// connections, such as a session.Listener over QUIC. A stream exists for the
// server only once the client writes on it.
//
// Close stops listening and closes every connection it accepted.
type Listener struct {
	udp     *net.UDPConn
	tr      *quic.Transport
	ln      *quic.Listener
	streams chan *StreamConn
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	closed bool // under mu: Close closes every connection in conns
	conns  map[*quic.Conn]struct{}
}

var errListenTLS = errors.New("tether/quic: Listen needs a tls.Config with a certificate (Certificates, GetCertificate or GetConfigForClient) and NextProtos")

// Listen listens for QUIC connections on the UDP address addr, with tlsConf
// (a certificate and NextProtos are required) and conf (nil: quic-go's
// defaults). With conf.Allow0RTT it accepts the 0-RTT data of a Dialer
// with Enable0RTT.
func Listen(addr string, tlsConf *tls.Config, conf *quic.Config) (*Listener, error) {
	if tlsConf == nil || len(tlsConf.NextProtos) == 0 ||
		len(tlsConf.Certificates) == 0 && tlsConf.GetCertificate == nil && tlsConf.GetConfigForClient == nil {
		return nil, errListenTLS
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tlsConf, conf)
	if err != nil {
		udp.Close()
		return nil, err
	}
	l := &Listener{udp: udp, tr: tr, ln: ln, streams: make(chan *StreamConn), conns: make(map[*quic.Conn]struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Go(l.acceptConns)
	return l, nil
}

func (l *Listener) acceptConns() {
	for {
		c, err := l.ln.Accept(l.ctx)
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			// Accepted as Close began: Close did not see it.
			l.mu.Unlock()
			c.CloseWithError(0, "tether/quic: listener closed")
			return
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Go(func() { l.acceptStreams(c) })
	}
}

func (l *Listener) acceptStreams(c *quic.Conn) {
	defer func() {
		l.mu.Lock()
		if !l.closed { // else Close closes c: it may not have yet
			delete(l.conns, c)
		}
		l.mu.Unlock()
	}()
	for {
		st, err := c.AcceptStream(l.ctx)
		if err != nil {
			return
		}
		select {
		case l.streams <- &StreamConn{str: st, qc: c}:
		case <-l.ctx.Done():
			st.CancelRead(0)
			st.CancelWrite(0)
			return
		}
	}
}

// Accept returns the next stream a client opened, a *StreamConn. After
// Close it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.streams:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Addr returns the UDP address listened on.
func (l *Listener) Addr() net.Addr { return l.udp.LocalAddr() }

// Close closes the accepted connections (telling the peers) and stops
// listening. A second Close returns net.ErrClosed.
func (l *Listener) Close() error {
	select {
	case <-l.ctx.Done():
		return net.ErrClosed
	default:
	}
	// Marked closed before the accept loops stop, so that none drops a
	// connection from conns before it is closed here, nor adds one after.
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.mu.Lock()
	for c := range l.conns {
		c.CloseWithError(0, "tether/quic: listener closed")
	}
	l.mu.Unlock()
	l.ln.Close()
	// Handshakes that completed as Close began wait in quic-go's accept
	// queue, which closing the transport would drop without telling their
	// clients: take them, and close them as the others.
	for {
		c, err := l.ln.Accept(context.Background()) // ErrServerClosed once the queue is empty
		if err != nil {
			break
		}
		c.CloseWithError(0, "tether/quic: listener closed")
	}
	l.tr.Close()
	err := l.udp.Close()
	l.wg.Wait()
	return err
}

// A StreamConn is a QUIC stream that a Listener accepted, as a net.Conn:
// its addresses are the connection's, its deadlines the stream's. Close
// ends both directions of the stream (the connection stays up for its
// other streams); CloseWrite sends a FIN.
type StreamConn struct {
	str     *quic.Stream
	qc      *quic.Conn
	closed  atomic.Bool
	writing atomic.Int32 // Writes in progress: Close resets the send side then
}

// Read reads from the stream. After Close (and in a Read that Close
// interrupts), it returns net.ErrClosed.
func (s *StreamConn) Read(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := s.str.Read(p)
	if err != nil && s.closed.Load() {
		err = net.ErrClosed // not the "canceled by local" of Close
	}
	return n, err
}

// Write writes to the stream. After Close (and in a Write that Close
// interrupts), it returns net.ErrClosed.
func (s *StreamConn) Write(p []byte) (int, error) {
	s.writing.Add(1)
	defer s.writing.Add(-1)
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := s.str.Write(p)
	if err != nil && s.closed.Load() {
		err = net.ErrClosed // not the "canceled by local" of Close
	}
	return n, err
}

// CloseWrite sends a FIN after what was written.
func (s *StreamConn) CloseWrite() error { return s.str.Close() }

// Close stops reading and sends a FIN after what was written; when a
// Write is in progress, it resets the send side instead, which unblocks
// the Write (quic-go forbids a Close concurrent with a Write).
func (s *StreamConn) Close() error {
	if s.closed.Swap(true) {
		return net.ErrClosed
	}
	s.str.CancelRead(0)
	if s.writing.Load() > 0 {
		s.str.CancelWrite(0)
		return nil
	}
	// An error says that the send side was canceled already (the peer
	// asked us to stop sending): for a net.Conn, that is closed all the
	// same.
	s.str.Close()
	return nil
}

// LocalAddr returns the QUIC connection's local address.
func (s *StreamConn) LocalAddr() net.Addr { return s.qc.LocalAddr() }

// RemoteAddr returns the QUIC connection's remote address.
func (s *StreamConn) RemoteAddr() net.Addr { return s.qc.RemoteAddr() }

// SetDeadline sets the stream's deadlines.
func (s *StreamConn) SetDeadline(t time.Time) error { return s.str.SetDeadline(t) }

// SetReadDeadline sets the stream's read deadline.
func (s *StreamConn) SetReadDeadline(t time.Time) error { return s.str.SetReadDeadline(t) }

// SetWriteDeadline sets the stream's write deadline.
func (s *StreamConn) SetWriteDeadline(t time.Time) error { return s.str.SetWriteDeadline(t) }

// QUICConn returns the QUIC connection of the stream.
func (s *StreamConn) QUICConn() *quic.Conn { return s.qc }

// ExportKeyingMaterial exports keying material from the QUIC connection's
// TLS session (RFC 8446, section 7.5), as tls.ConnectionState does.
func (s *StreamConn) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	cs := s.qc.ConnectionState().TLS
	return cs.ExportKeyingMaterial(label, context, length)
}
