package main

import (
	"io"
	"net"
	"sync"

	"github.com/io-tether/tether/session"
)

// An echoServer writes back what it reads, on each connection (or, over
// a session.Listener, on each session).
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startEcho starts an echoServer on addr, of sessions with sessions.
func startEcho(addr string, sessions bool) (*echoServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if sessions {
		ln = session.NewListener(ln)
	}
	s := &echoServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr returns the server's address.
func (s *echoServer) Addr() string { return s.ln.Addr().String() }

// serve accepts connections until the listener is closed.
func (s *echoServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			io.Copy(c, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		})
	}
}

// Close stops the server and waits for its goroutines.
func (s *echoServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
