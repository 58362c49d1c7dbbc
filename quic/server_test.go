package quic_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/io-tether/tether/tethertest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

const alpn = "tether-test"

// testServer is a quic-go server on 127.0.0.1 for the tests. By default each
// stream echoes what it reads, until the client's FIN.
type testServer struct {
	tb   testing.TB
	addr string
	opts serverOpts

	udp    *net.UDPConn
	tr     *quic.Transport
	ln     *quic.EarlyListener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	conns   atomic.Int32 // connections accepted
	streams atomic.Int32 // streams accepted

	mu       sync.Mutex
	accepted []*quic.Conn
	states   chan quic.ConnectionState // of each connection, once its handshake completed
	stopped  bool
}

type serverOpts struct {
	addr      string                  // default "127.0.0.1:0"
	resetKey  *quic.StatelessResetKey // enables stateless resets
	tls       *tls.Config             // default a new tethertest.TLSServerConfig(alpn)
	allow0RTT bool
	idle      time.Duration // server's MaxIdleTimeout; 0: quic-go's default
	// onHello runs in the handshake, before the server answers a
	// ClientHello: a test blocks it to keep a client in 0-RTT.
	onHello func()
	// handle serves a stream; nil echoes.
	handle func(s *testServer, c *quic.Conn, st *quic.Stream)
}

func newServer(tb testing.TB, o serverOpts) *testServer {
	tb.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	if o.tls == nil {
		o.tls = tethertest.TLSServerConfig(alpn)
	}
	tc := o.tls
	if o.onHello != nil {
		tc = tc.Clone()
		tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			o.onHello()
			return nil, nil
		}
	}
	ua, err := net.ResolveUDPAddr("udp", o.addr)
	require.NoError(tb, err)
	udp, err := net.ListenUDP("udp", ua)
	require.NoError(tb, err)
	s := &testServer{tb: tb, opts: o, udp: udp, addr: udp.LocalAddr().String(),
		states: make(chan quic.ConnectionState, 100)}
	s.tr = &quic.Transport{Conn: udp, StatelessResetKey: o.resetKey}
	s.ln, err = s.tr.ListenEarly(tc, &quic.Config{Allow0RTT: o.allow0RTT, MaxIdleTimeout: o.idle})
	require.NoError(tb, err)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(s.acceptLoop)
	tb.Cleanup(s.crash)
	return s
}

func (s *testServer) acceptLoop() {
	for {
		c, err := s.ln.Accept(s.ctx)
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.accepted = append(s.accepted, c)
		s.mu.Unlock()
		s.wg.Go(func() { s.serveConn(c) })
	}
}

func (s *testServer) serveConn(c *quic.Conn) {
	s.wg.Go(func() {
		select {
		case <-c.HandshakeComplete():
			select {
			case s.states <- c.ConnectionState():
			default:
			}
		case <-c.Context().Done():
		}
	})
	for {
		st, err := c.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		s.streams.Add(1)
		s.wg.Go(func() {
			if s.opts.handle != nil {
				s.opts.handle(s, c, st)
				return
			}
			echo(st)
		})
	}
}

// readThenFlood reads st to the client's FIN, then writes to it until the
// client's STOP_SENDING arrives: what a Conn's Close tells a server.
func readThenFlood(st *quic.Stream) (read []byte, readErr, writeErr error) {
	read, readErr = io.ReadAll(st)
	for writeErr == nil {
		_, writeErr = st.Write(make([]byte, 1024))
	}
	return read, readErr, writeErr
}

// echo copies st to itself until the client's FIN, then sends its own.
func echo(st *quic.Stream) {
	io.Copy(st, st)
	st.Close()
}

// closeConns closes every accepted connection, as a server that shuts
// down cleanly does: the clients get an *quic.ApplicationError.
func (s *testServer) closeConns() {
	s.mu.Lock()
	cs := s.accepted
	s.accepted = nil
	s.mu.Unlock()
	for _, c := range cs {
		c.CloseWithError(7, "server closed")
	}
}

// crash stops the server without a word to its clients (Transport.Close
// sends no CONNECTION_CLOSE), and waits for its goroutines.
func (s *testServer) crash() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.tr.Close()
	s.udp.Close()
	s.wg.Wait()
}

// restart crashes s and starts a server on the same address with o (its
// addr is set to s's).
func (s *testServer) restart(o serverOpts) *testServer {
	s.crash()
	o.addr = s.addr
	return newServer(s.tb, o)
}

// state returns the ConnectionState of the next connection whose handshake
// completed.
func (s *testServer) state(t *testing.T) quic.ConnectionState {
	t.Helper()
	return recv(t, s.states, "server: a completed handshake")
}

func newResetKey(tb testing.TB) *quic.StatelessResetKey {
	var k quic.StatelessResetKey
	_, err := rand.Read(k[:])
	require.NoError(tb, err)
	return &k
}

// fastConfig is a client Config that notices a lost server within about a
// second and gives up on a silent address within a second.
func fastConfig() *quic.Config {
	return &quic.Config{
		MaxIdleTimeout:       time.Second,
		KeepAlivePeriod:      200 * time.Millisecond,
		HandshakeIdleTimeout: time.Second,
	}
}

// steadyConfig is a client Config whose timers are far longer than anything
// a test waits for: a test that does not test them cannot be failed by a
// machine too busy to run the client or the server for a second.
func steadyConfig() *quic.Config {
	return &quic.Config{MaxIdleTimeout: time.Minute, HandshakeIdleTimeout: wait}
}

// heldConfig is fastConfig for tests that hold the server in its handshake:
// the client waits for its answer as long as the test waits for anything.
func heldConfig() *quic.Config {
	c := fastConfig()
	c.HandshakeIdleTimeout = wait
	return c
}

func clientTLS() *tls.Config { return tethertest.TLSClientConfig(alpn) }

// isStreamReset reports whether err is a reset of the stream by the peer.
func isStreamReset(err error) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote
}
