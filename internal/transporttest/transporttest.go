// Package transporttest is the behaviour suite that holds every transport of
// package tether to the same semantics: each dialer package runs [Run] from
// its tests with a [Transport], that is a way to start a server and a
// Dialer.
//
// The suite serves a [Listener] of net.Conns (a TCP, TLS or Unix listener,
// or one that accepts the streams of QUIC connections) with a [Server] it
// controls: it closes every connection at once, stops listening, and listens
// again at the same address. It never imports a transport's package.
//
// It also holds what the tests of several packages would otherwise each
// write: the Server for any test that needs a loopback server, the check
// of a dialer's errors ([DialFails]), and small waits and echoes.
package transporttest

import (
	"flag"
	"net"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/io-tether/tether"
)

// A Listener is the server side of a transport, as the suite needs it:
// net.Listener's shape, with the address as the string a Dialer dials.
type Listener interface {
	// Accept waits for and returns the next connection (for QUIC: the next
	// stream, as a net.Conn). A connection may come before its handshake
	// (as from tls.NewListener): the Server runs HandshakeContext on a
	// connection that has that method before it serves it.
	Accept() (net.Conn, error)
	// Close stops listening and makes a blocked Accept return an error.
	// Connections already accepted may stay up: the Server closes them.
	Close() error
	// Addr is the address for the Dialer.
	Addr() string
}

// A Killer is a Listener that can break its connections harder than by
// closing each net.Conn that Accept returned: a QUIC listener whose net.Conns
// are streams closes their QUIC connections. [Server.KillConns] calls Kill
// before closing the connections, so that their clients see the connection
// die, not first a clean end of the stream.
type Killer interface {
	Kill()
}

// A Transport is what the suite needs to know about one transport.
//
// In several tests the server speaks first. A transport whose server learns
// of a connection only once the client writes (a QUIC stream) makes its
// Dialer write a hello on each new connection, and its Listener's Accept
// read that hello before it returns the connection.
type Transport struct {
	// Name names the transport in messages.
	Name string

	// Listen listens on a fresh loopback address when addr is "", and
	// otherwise on addr, the address of a Listener it returned before and
	// that was closed (a restart).
	Listen func(t testing.TB, addr string) (Listener, error)

	// Dialer returns the Dialer under test. The suite asks for a new one
	// for each test, so that no state (a session cache, a pool of
	// connections) carries from one test to the next.
	Dialer func() tether.Dialer

	// WriteTimeoutBreaks says that a Write that times out leaves the
	// connection unusable for writing, as with crypto/tls: every later
	// Write returns the same timeout. A Tether replaces such a connection
	// at its next Write once the deadline is cleared; the net.Conn
	// conformance test then lets it reconnect, and its peer follows. For
	// other transports that test requires that no reconnect happen.
	WriteTimeoutBreaks bool
}

// NetListener returns ln as a Listener whose Addr is ln.Addr().String().
func NetListener(ln net.Listener) Listener { return netListener{ln} }

type netListener struct{ net.Listener }

func (l netListener) Addr() string { return l.Listener.Addr().String() }

// TCP is plain TCP on loopback, for a StartServer.
var TCP = Transport{Name: "tcp", Listen: ListenTCP}

// ListenTCP is a Transport.Listen for plain TCP on 127.0.0.1.
func ListenTCP(_ testing.TB, addr string) (Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return NetListener(ln), nil
}

// Run runs the suite over tr, each test as a subtest of t, and then checks
// that none of them left a goroutine behind. Run's test must not be
// parallel.
//
// Most tests spend their time waiting on timers, and run in parallel. A
// test that stops its server runs alone (as does a group that holds one,
// whose other tests run in parallel after it): while the server is down,
// a parallel test's listener could take its port, and the dials that
// should be refused would reach it, or the restart would fail.
func Run(t *testing.T, tr Transport) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // after the subtests
	tests := []struct {
		name  string
		f     func(*testing.T, Transport)
		stops bool // it, or one of its subtests, stops its server
	}{
		{"TransparentReconnect", testTransparentReconnect, false},
		{"ReconnectAfterRestart", testReconnectAfterRestart, true},
		{"OneReconnectForReaderAndWriter", testOneReconnectForReaderAndWriter, false},
		{"FullDuplex", testFullDuplex, false},
		{"Deadlines", testDeadlines, true},
		{"CloseDuringReconnect", testCloseDuringReconnect, true},
		{"GiveUp", testGiveUp, true},
		{"States", testStates, true},
		{"NetConn", testNetConn, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.stops {
				t.Parallel()
			}
			tc.f(t, tr)
		})
	}
}

// WaitingParallel is how many parallel tests [Main] lets run at once:
// tests that spend their time waiting on timers, not on the CPU.
const WaitingParallel = 8

// Main runs the tests of a package whose parallel tests mostly wait on
// timers (idle timeouts, keep-alives, blackholes, handshake timeouts), and
// then checks for leaked goroutines as goleak.VerifyTestMain does. Unless
// the command line sets -parallel, it lets [WaitingParallel] parallel tests
// run at once rather than one per CPU (the default), so that their waits
// overlap: on 2 CPUs, the default ran a package's 2-second waits two at a
// time.
func Main(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if p := flag.Lookup("test.parallel"); !set && p != nil {
		if n, err := strconv.Atoi(p.Value.String()); err == nil && n < WaitingParallel {
			p.Value.Set(strconv.Itoa(WaitingParallel))
		}
	}
	goleak.VerifyTestMain(m)
}
