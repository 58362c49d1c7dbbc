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
	"sync/atomic"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
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
	// listen listens on loopback; variant selects a configuration ("" is
	// the default; tls: "full" disables session tickets).
	listen func(variant string) (net.Listener, error)
	// dialer returns a new Dialer; closeDialer releases it.
	dialer func() tether.Dialer
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

// socketPaths numbers the Unix sockets of this process.
var socketPaths atomic.Int64

func tcpTransport() *transport {
	return &transport{
		name:      "tcp",
		listen:    func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		dialer:    func() tether.Dialer { return &tcp.Dialer{} },
		reconnect: []reconnectCase{{name: "close"}},
	}
}

func unixTransport() *transport {
	return &transport{
		name: "unix",
		// The listener removes its socket when it closes.
		listen: func(string) (net.Listener, error) {
			name := fmt.Sprintf("tether-bench-%d-%d.sock", os.Getpid(), socketPaths.Add(1))
			return net.Listen("unix", filepath.Join(os.TempDir(), name))
		},
		dialer:    func() tether.Dialer { return &dialers.Unix{} },
		reconnect: []reconnectCase{{name: "close"}},
	}
}

func tlsTransport() *transport {
	return &transport{
		name: "tls",
		listen: func(variant string) (net.Listener, error) {
			cfg := tethertest.TLSServerConfig()
			// A server without tickets makes every handshake a full one.
			cfg.SessionTicketsDisabled = variant == "full"
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return tls.NewListener(ln, cfg), nil
		},
		// The Dialer keeps a session cache, so that re-dials resume.
		dialer:    func() tether.Dialer { return &tethertls.Dialer{Config: tethertest.TLSClientConfig()} },
		reconnect: []reconnectCase{{name: "resumed"}, {name: "full", variant: "full"}},
	}
}

func quicTransport() *transport {
	return &transport{
		name:        "quic",
		clientFirst: true,
		// Each stream is a connection, a *tetherquic.StreamConn.
		listen: func(string) (net.Listener, error) {
			return tetherquic.Listen("127.0.0.1:0", tethertest.TLSServerConfig(alpn),
				&quic.Config{MaxIncomingStreams: 1 << 16, MaxIdleTimeout: 30 * time.Second})
		},
		dialer:    func() tether.Dialer { return &tetherquic.Dialer{TLSConfig: tethertest.TLSClientConfig(alpn)} },
		reconnect: []reconnectCase{{name: "stream"}, {name: "redial", conn: true}},
	}
}

// closeDialer releases what d holds (a QUIC Dialer's connections).
func closeDialer(d tether.Dialer) {
	if c, ok := d.(io.Closer); ok {
		c.Close()
	}
}

// connKind says how c came to be: "full" or "resumed" for TLS, the Origin
// of a QUIC stream, "" otherwise.
func connKind(c net.Conn) string {
	switch c := c.(type) {
	case *tls.Conn:
		if c.ConnectionState().DidResume {
			return "resumed"
		}
		return "full"
	case *tetherquic.Conn:
		return c.Origin().String()
	}
	return ""
}

// expectedKind is the kind each reconnect of a case must have.
func expectedKind(transport string, rc reconnectCase) string {
	switch {
	case transport == "tls":
		return rc.name // resumed, full
	case transport == "quic" && rc.conn:
		return tetherquic.Resumed.String()
	case transport == "quic":
		return tetherquic.NewStream.String()
	}
	return ""
}

// A server accepts connections on loopback, greets each (after reading the
// client's hello when the client speaks first) and hands it over on peers.
type server struct {
	addr        string
	clientFirst bool
	peers       chan *peer
	ln          net.Listener
	wg          sync.WaitGroup

	mu     sync.Mutex
	closed bool
	open   map[*peer]struct{}
}

// A peer is the server's end of one connection.
type peer struct{ net.Conn }

// end ends the whole connection: for QUIC the QUIC connection, which may
// carry other streams; for the others the same as Close.
func (p *peer) end() {
	if sc, ok := p.Conn.(*tetherquic.StreamConn); ok {
		sc.QUICConn().CloseWithError(0, "bench: connection ended")
		return
	}
	p.Close()
}

// serve starts a server of tr.
func (tr *transport) serve(variant string) (*server, error) {
	ln, err := tr.listen(variant)
	if err != nil {
		return nil, err
	}
	s := &server{addr: ln.Addr().String(), clientFirst: tr.clientFirst, peers: make(chan *peer, 1<<14), ln: ln,
		open: make(map[*peer]struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.greet(&peer{c}) })
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
	s.ln.Close()
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
}

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
	s   *server
	d   tether.Dialer
	t   *tether.Tether
	raw net.Conn // the connection under the Tether
	p   *peer    // the server's end
}

// openLink serves tr and dials a Tether to it.
func openLink(tr *transport) (*link, error) {
	s, err := tr.serve("")
	if err != nil {
		return nil, err
	}
	d := tr.dialer()
	l := &link{s: s, d: d}
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
	closeDialer(l.d)
	l.s.close() // closes l.p
}
