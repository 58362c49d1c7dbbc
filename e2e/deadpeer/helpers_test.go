//go:build linux

package deadpeer

import (
	"net"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/io-tether/tether/internal/transporttest"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(listenEnv); spec != "" {
		os.Exit(serveListeners(spec)) // the child of netns.listeners
	}
	goleak.VerifyTestMain(m)
}

// server serves a listener with a handler, and closes everything at stop.
type server struct {
	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func startServer(t *testing.T, ln net.Listener, handle func(net.Conn)) *server {
	s := &server{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.stop)
	return s
}

func (s *server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed by stop (nothing else makes Accept fail here)
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			c.Close()
		}()
	}
}

// stop closes the listener and every connection, and waits for the handlers.
func (s *server) stop() {
	s.mu.Lock()
	s.done = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echo writes back what it reads (see transporttest.EchoConn).
func echo(c net.Conn) { transporttest.EchoConn(c) }
