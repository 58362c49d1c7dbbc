package transporttest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// A Handler serves one connection of a Server; n numbers the connections
// the Server accepted, from 1, and ctx is done once the Server closed c
// (KillConns, Stop, Close). The Server closes c when the Handler returns.
type Handler func(ctx context.Context, c net.Conn, n int)

// Echo is a Handler that writes back what it reads.
func Echo(_ context.Context, c net.Conn, _ int) { io.Copy(c, c) }

// EchoConn writes back what it reads from c until an error, and returns
// that error: the Read's (io.EOF at the peer's end) or the Write's. It
// copies through a buffer: io.Copy between two TCP connections would splice
// through a pipe, which costs two more file descriptors per connection (too
// many for a storm of thousands).
func EchoConn(c io.ReadWriter) error {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

// EchoByte writes one byte on c, whose peer echoes, and reads it back; it
// fails tb on an error. The reconnect benchmarks end each round with it.
func EchoByte(tb testing.TB, c net.Conn) {
	buf := []byte{1}
	_, err := c.Write(buf)
	if err == nil {
		_, err = io.ReadFull(c, buf)
	}
	if err != nil {
		tb.Helper()
		tb.Fatal(err)
	}
}

// Silent is a Handler that writes nothing, and reads until the client
// closes: a server that took the connection and never speaks.
func Silent(_ context.Context, c net.Conn, _ int) { io.Copy(io.Discard, c) }

// Greet returns a Handler that writes greeting on each connection, then
// echoes.
func Greet(greeting string) Handler {
	return func(ctx context.Context, c net.Conn, n int) {
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		Echo(ctx, c, n)
	}
}

// handshakeTimeout bounds the server's side of a handshake.
const handshakeTimeout = 10 * time.Second

// A Server serves a transport's Listener with a Handler, and breaks its
// connections on demand. Its methods are called from the test's goroutine.
type Server struct {
	t      testing.TB
	tr     Transport
	handle Handler
	addr   string
	wg     sync.WaitGroup // the accept loop and the handlers

	mu       sync.Mutex
	ln       Listener // nil while stopped
	conns    map[net.Conn]context.CancelFunc
	accepted int
	closed   bool
}

// StartServer listens on a fresh address of tr and serves each connection
// with h in a goroutine of its own. The Server is closed when the test ends.
func StartServer(t testing.TB, tr Transport, h Handler) *Server {
	t.Helper()
	s, err := startServer(t, tr, h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer is StartServer for goroutines that may not end the test.
func startServer(t testing.TB, tr Transport, h Handler) (*Server, error) {
	ln, err := tr.Listen(t, "")
	if err != nil {
		return nil, fmt.Errorf("%s: Listen: %w", tr.Name, err)
	}
	s := &Server{t: t, tr: tr, handle: h, addr: ln.Addr(), conns: make(map[net.Conn]context.CancelFunc)}
	s.serve(ln)
	t.Cleanup(s.Close)
	return s, nil
}

// Addr is the address the Server listens on, the same after a Restart.
func (s *Server) Addr() string { return s.addr }

// Accepted returns how many connections the Server has accepted.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *Server) serve(ln Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				s.mu.Lock()
				stopped := s.ln != ln
				s.mu.Unlock()
				if stopped {
					return
				}
				time.Sleep(5 * time.Millisecond) // a passing error (out of files): accept again
				continue
			}
			s.mu.Lock()
			if s.ln != ln {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.accepted++
			n := s.accepted
			ctx, cancel := context.WithCancel(context.Background())
			s.conns[c] = cancel
			s.wg.Add(1)
			s.mu.Unlock()
			go s.run(ctx, c, n)
		}
	}()
}

func (s *Server) run(ctx context.Context, c net.Conn, n int) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		cancel := s.conns[c]
		delete(s.conns, c)
		s.mu.Unlock()
		cancel()
		c.Close()
	}()
	if h, ok := c.(interface {
		HandshakeContext(context.Context) error
	}); ok {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := h.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return
		}
	}
	s.handle(ctx, c, n)
}

// KillConns closes every connection the Server has accepted, and returns
// how many it closed; the Server goes on listening.
func (s *Server) KillConns() int {
	s.mu.Lock()
	conns := make(map[net.Conn]context.CancelFunc, len(s.conns))
	for c, cancel := range s.conns {
		conns[c] = cancel
	}
	ln := s.ln
	s.mu.Unlock()
	// Kill first: a QUIC server that ended its streams (FIN) before it
	// closed their connections would let a client see the FIN, redial a
	// new stream on the doomed connection, and lose that one too.
	if k, ok := ln.(Killer); ok {
		k.Kill()
	}
	for c, cancel := range conns {
		c.Close()
		cancel()
	}
	return len(conns)
}

// Stop closes the listener and every connection: dials fail until Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	if ln == nil {
		return
	}
	if k, ok := ln.(Killer); ok {
		k.Kill()
	}
	ln.Close()
	s.KillConns()
}

// Restart listens again at Addr after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running, closed := s.ln != nil, s.closed
	s.mu.Unlock()
	if running || closed {
		s.t.Fatalf("%s: Restart of a Server that is running or closed", s.tr.Name)
	}
	ln, err := s.tr.Listen(s.t, s.addr)
	if err != nil {
		s.t.Fatalf("%s: Listen(%q) again: %v", s.tr.Name, s.addr, err)
	}
	s.serve(ln)
}

// Close stops the Server for good and waits for its goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Stop()
	s.wg.Wait()
}
