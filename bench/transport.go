package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	"github.com/io-tether/tether/internal/testcert"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tcp"
	tethertls "github.com/io-tether/tether/tls"
	"github.com/quic-go/quic-go"
)

// alpn is the ALPN protocol of the QUIC server.
const alpn = "tether-bench"

// The bytes of the greeting exchange that opens every connection.
const (
	helloByte    = 'h' // client to server, on transports where the client speaks first
	greetingByte = 'g' // server to client, on every new connection
)

// setupTimeout bounds each step of setting a connection up, so that a broken
// transport fails the run instead of hanging it.
const setupTimeout = 10 * time.Second

// A transport is one kind of connection under test: how to serve it on
// loopback and how to dial it.
type transport struct {
	name string
	// clientFirst says that the server learns of a new connection only once
	// the client writes (a QUIC stream): the client then writes helloByte
	// first, raw or through an OnConnect hook.
	clientFirst bool
	// serve starts a server; variant selects a configuration ("" is the
	// default; tls: "full" disables session tickets).
	serve func(variant string) (*server, error)
	// dialer returns a new Dialer and a function that releases it.
	dialer func() (tether.Dialer, func())
	// reconnect lists the cases of the reconnect part.
	reconnect []reconnectCase
}

// A reconnectCase is one way to lose a connection, and the server variant it
// runs against.
type reconnectCase struct {
	name    string
	variant string
	// conn: the server ends the whole connection (a QUIC connection, not
	// only the stream).
	conn bool
}

// allTransports lists the transports in the order of the table.
func allTransports() []*transport {
	return []*transport{tcpTransport(), unixTransport(), tlsTransport(), quicTransport()}
}

func tcpTransport() *transport {
	return &transport{
		name:      "tcp",
		serve:     func(string) (*server, error) { return listen("tcp", "127.0.0.1:0", nil) },
		dialer:    func() (tether.Dialer, func()) { return &tcp.Dialer{}, func() {} },
		reconnect: []reconnectCase{{name: "close"}},
	}
}

func unixTransport() *transport {
	return &transport{
		name: "unix",
		serve: func(string) (*server, error) {
			dir, err := os.MkdirTemp("", "tether-bench-")
			if err != nil {
				return nil, err
			}
			s, err := listen("unix", filepath.Join(dir, "s.sock"), nil)
			if err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			s.cleanup = func() { os.RemoveAll(dir) }
			return s, nil
		},
		dialer:    func() (tether.Dialer, func()) { return &dialers.Unix{}, func() {} },
		reconnect: []reconnectCase{{name: "close"}},
	}
}

func tlsTransport() *transport {
	return &transport{
		name: "tls",
		serve: func(variant string) (*server, error) {
			cfg := testcert.Get().ServerConfig()
			// A server without tickets makes every handshake a full one.
			cfg.SessionTicketsDisabled = variant == "full"
			return listen("tcp", "127.0.0.1:0", cfg)
		},
		// The Dialer keeps a session cache, so that re-dials resume.
		dialer: func() (tether.Dialer, func()) {
			return &tethertls.Dialer{Config: testcert.Get().ClientConfig()}, func() {}
		},
		reconnect: []reconnectCase{{name: "resumed"}, {name: "full", variant: "full"}},
	}
}

func quicTransport() *transport {
	return &transport{
		name:        "quic",
		clientFirst: true,
		serve:       func(string) (*server, error) { return serveQUIC() },
		dialer: func() (tether.Dialer, func()) {
			d := &tetherquic.Dialer{TLSConfig: testcert.Get().ClientConfig(alpn)}
			return d, func() { d.Close() }
		},
		reconnect: []reconnectCase{{name: "stream"}, {name: "redial", conn: true}},
	}
}

// A server accepts connections on loopback, greets each (after reading the
// client's hello when the client speaks first) and hands it over on peers.
type server struct {
	addr        string
	clientFirst bool
	peers       chan *peer

	stop    func() // closes the listener
	cleanup func()
	wg      sync.WaitGroup

	mu     sync.Mutex
	closed bool
	open   map[*peer]struct{}
}

// A peer is the server's end of one connection.
type peer struct {
	net.Conn
	// end ends the whole connection: for QUIC the QUIC connection, which
	// may carry other streams; for the others the same as Close.
	end func()
}

func newServer(addr string, clientFirst bool) *server {
	return &server{addr: addr, clientFirst: clientFirst, peers: make(chan *peer, 1<<14),
		open: make(map[*peer]struct{})}
}

// listen serves on a new listener of network at addr, with TLS when cfg is
// not nil.
func listen(network, addr string, cfg *tls.Config) (*server, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	s := newServer(ln.Addr().String(), false)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	s.stop = func() { ln.Close() }
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p := &peer{Conn: c}
			p.end = func() { c.Close() }
			s.wg.Go(func() { s.greet(p) })
		}
	})
	return s, nil
}

// greet runs the greeting exchange on p and hands p over.
func (s *server) greet(p *peer) {
	p.SetDeadline(time.Now().Add(setupTimeout))
	if s.clientFirst {
		var b [1]byte
		if _, err := io.ReadFull(p, b[:]); err != nil || b[0] != helloByte {
			p.Close()
			return
		}
	}
	if _, err := p.Write([]byte{greetingByte}); err != nil {
		p.Close()
		return
	}
	p.SetDeadline(time.Time{})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.Close()
		return
	}
	s.open[p] = struct{}{}
	s.mu.Unlock()
	s.peers <- p
}

// next returns the next connection the server accepted.
func (s *server) next() (*peer, error) {
	select {
	case p := <-s.peers:
		return p, nil
	case <-time.After(setupTimeout):
		return nil, errors.New("bench: the server accepted no connection in time")
	}
}

// reserve makes room for n connections, so that growing the server's
// records does not count in a measurement of the heap.
func (s *server) reserve(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	open := make(map[*peer]struct{}, len(s.open)+n)
	for p := range s.open {
		open[p] = struct{}{}
	}
	s.open = open
}

// forget drops p from the connections that close closes.
func (s *server) forget(p *peer) {
	s.mu.Lock()
	delete(s.open, p)
	s.mu.Unlock()
}

// close stops the server and closes every connection it handed over.
func (s *server) close() {
	s.mu.Lock()
	s.closed = true
	open := s.open
	s.open = nil
	s.mu.Unlock()
	s.stop()
	for p := range open {
		p.Close()
	}
	for {
		select {
		case p := <-s.peers:
			p.Close()
			continue
		default:
		}
		break
	}
	s.wg.Wait()
	if s.cleanup != nil {
		s.cleanup()
	}
}

// serveQUIC serves QUIC on loopback: each stream is a peer.
func serveQUIC() (*server, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(testcert.Get().ServerConfig(alpn), &quic.Config{
		MaxIncomingStreams: 1 << 16,
		MaxIdleTimeout:     30 * time.Second,
	})
	if err != nil {
		udp.Close()
		return nil, err
	}
	s := newServer(udp.LocalAddr().String(), true)
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = func() {
		cancel()
		ln.Close()
		tr.Close()
		udp.Close()
	}
	s.wg.Go(func() {
		for {
			qc, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer qc.CloseWithError(0, "")
				for {
					st, err := qc.AcceptStream(ctx)
					if err != nil {
						return
					}
					p := &peer{Conn: &streamConn{qc: qc, st: st}}
					p.end = func() { qc.CloseWithError(0, "bench: connection ended") }
					s.wg.Go(func() { s.greet(p) })
				}
			})
		}
	})
	return s, nil
}

// streamConn is the server's end of a QUIC stream as a net.Conn.
type streamConn struct {
	qc *quic.Conn
	st *quic.Stream
}

func (c *streamConn) Read(p []byte) (int, error)  { return c.st.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) { return c.st.Write(p) }

// Close ends both directions: a FIN after what was written, and STOP_SENDING.
func (c *streamConn) Close() error {
	c.st.CancelRead(0)
	return c.st.Close()
}

func (c *streamConn) LocalAddr() net.Addr                { return c.qc.LocalAddr() }
func (c *streamConn) RemoteAddr() net.Addr               { return c.qc.RemoteAddr() }
func (c *streamConn) SetDeadline(t time.Time) error      { return c.st.SetDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.st.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.st.SetWriteDeadline(t) }

// hello writes the client's hello on c, when the transport needs one.
func hello(c net.Conn) error {
	_, err := c.Write([]byte{helloByte})
	return err
}

// readGreeting reads the server's greeting from c.
func readGreeting(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(setupTimeout))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("bench: reading the greeting: %w", err)
	}
	if b[0] != greetingByte {
		return fmt.Errorf("bench: greeting %q, want %q", b[0], greetingByte)
	}
	return nil
}

// dialRaw dials a raw connection with d and opens it.
func dialRaw(tr *transport, d tether.Dialer, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c, err := d.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if tr.clientFirst {
		if err := hello(c); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := readGreeting(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// reconnectAtOnce is the handler of the reconnect part: reconnect at once
// (Event.Delay 0), whatever happened.
var reconnectAtOnce = tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action {
	return tether.Reconnect
})

// dialTether dials a Tether with d, h and the transport's OnConnect hello,
// and reads the greeting through it. Dial's ctx has a deadline.
func dialTether(tr *transport, d tether.Dialer, addr string, h tether.DisconnectHandler) (*tether.Tether, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	return dialTetherCtx(ctx, tr, d, addr, h)
}

// dialTetherCtx is dialTether with Dial's ctx.
func dialTetherCtx(ctx context.Context, tr *transport, d tether.Dialer, addr string, h tether.DisconnectHandler) (*tether.Tether, error) {
	var opts []tether.Option
	if tr.clientFirst {
		opts = append(opts, tether.WithOnConnect(func(_ context.Context, c net.Conn) error { return hello(c) }))
	}
	t, err := tether.Dial(ctx, d, addr, h, opts...)
	if err != nil {
		return nil, err
	}
	if err := readGreeting(t); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// A link is a Tether to a server of its transport.
type link struct {
	s       *server
	release func()
	t       *tether.Tether
	raw     net.Conn // the connection under the Tether
	p       *peer    // the server's end
}

// openLink serves tr and dials a Tether to it.
func openLink(tr *transport) (*link, error) {
	s, err := tr.serve("")
	if err != nil {
		return nil, err
	}
	d, release := tr.dialer()
	l := &link{s: s, release: release}
	if l.t, err = dialTether(tr, d, s.addr, nil); err != nil {
		l.close()
		return nil, err
	}
	if l.p, err = s.next(); err != nil {
		l.close()
		return nil, err
	}
	l.raw = l.t.Conn()
	return l, nil
}

func (l *link) close() {
	if l.t != nil {
		l.t.Close()
	}
	l.release()
	l.s.close() // closes l.p
}
