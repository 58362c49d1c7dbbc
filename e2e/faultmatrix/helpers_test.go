package faultmatrix

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/e2e/internal/e2etest"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	"github.com/io-tether/tether/tethertest/faultproxy"
	tethertls "github.com/io-tether/tether/tls"
)

var (
	soakFor  = flag.Duration("soak", 3*time.Second, "how long TestIntegritySoak injects faults")
	soakSeed = flag.Uint64("seed", 1, "the seed of TestIntegritySoak's faults")
)

func TestMain(m *testing.M) { transporttest.Main(m) }

// Real sockets on a loaded machine: bounds on things that should take
// milliseconds are seconds.
const long = 15 * time.Second

// A transport is one way to reach the server through the proxy.
type transport struct {
	name string
	// listen wraps the server's TCP listener (TLS wraps it in tls.Server).
	listen func(net.Listener) net.Listener
	// dialer makes the client's Dialer, with timeout per dial attempt.
	dialer func(timeout time.Duration) tether.Dialer
}

// transports are the transports of the matrix: tcp, and tls, where the
// server wraps its listener and the client's tls.Dialer handshakes through
// the proxy (which sees only TCP).
var transports = []transport{{
	name:   "tcp",
	listen: func(l net.Listener) net.Listener { return l },
	dialer: func(timeout time.Duration) tether.Dialer { return &tcp.Dialer{Timeout: timeout} },
}, {
	name: "tls",
	listen: func(l net.Listener) net.Listener {
		return tls.NewListener(l, tethertest.TLSServerConfig())
	},
	dialer: func(timeout time.Duration) tether.Dialer {
		return &tethertls.Dialer{Config: tethertest.TLSClientConfig(), NetDialer: &tcp.Dialer{Timeout: timeout}}
	},
}}

// forEachTransport runs f as a parallel subtest per transport.
func forEachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			f(t, tr)
		})
	}
}

// startServer starts a real server on loopback that can stop and come back
// on the same port (Stop, Restart). Each connection runs handle after a
// greeting line that names the server's incarnation: "hello 1\n", then
// "hello 2\n" after a restart.
func startServer(t testing.TB, tr transport, handle func(net.Conn)) *transporttest.Server {
	t.Helper()
	var incarnation atomic.Int32
	listen := func(_ testing.TB, addr string) (transporttest.Listener, error) {
		ln, err := e2etest.ListenAgain(addr)
		if err != nil {
			return nil, err
		}
		incarnation.Add(1)
		return transporttest.NetListener(tr.listen(ln)), nil
	}
	// A connection of an incarnation that a Stop ended is closed before
	// the Restart: it cannot greet with the next one's number.
	return transporttest.StartServer(t, transporttest.Transport{Name: tr.name, Listen: listen}, func(_ context.Context, c net.Conn, _ int) {
		if _, err := fmt.Fprintf(c, "hello %d\n", incarnation.Load()); err != nil {
			return
		}
		handle(c)
	})
}

// echo writes back what it reads (see transporttest.EchoConn).
func echo(c net.Conn) { transporttest.EchoConn(c) }

// waitChan returns a channel that is closed once wg's goroutines have all
// returned, for a select.
func waitChan(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// sink returns a handler that reads everything and counts it in n.
func sink(n *atomic.Int64) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			m, err := c.Read(buf)
			n.Add(int64(m))
			if err != nil {
				return
			}
		}
	}
}

// env is one Tether through the fault proxy to a server.
type env struct {
	t     *testing.T
	tr    transport
	srv   *transporttest.Server
	proxy *faultproxy.Proxy
	rec   *e2etest.Recorder
	tt    *tether.Tether
	r     *e2etest.Reader // the reader, when started

	dmu   sync.Mutex
	dials []time.Time

	target atomic.Pointer[string] // the address "svc.test" resolves to; nil: it does not
}

type envConfig struct {
	handle  func(net.Conn)
	policy  tether.DisconnectHandler // nil: transporttest.QuickBackoff; use tether.DefaultHandler() for the default
	timeout time.Duration            // per dial attempt; 0: 5 s
	opts    []tether.Option
}

// newEnv starts a server with cfg.handle, a proxy in front of it, and a
// Tether that dials the name "svc.test", which resolves to the proxy.
func newEnv(t *testing.T, tr transport, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, tr: tr}
	e.srv = startServer(t, tr, cfg.handle)
	p, err := faultproxy.New(e.srv.Addr(), 1)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	e.proxy = p
	addr := p.Addr()
	e.target.Store(&addr)

	timeout := cfg.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	inner := tr.dialer(timeout)
	d := tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		e.dmu.Lock()
		e.dials = append(e.dials, time.Now())
		e.dmu.Unlock()
		return e.resolve(ctx, inner, addr)
	})
	policy := cfg.policy
	if policy == nil {
		policy = transporttest.QuickBackoff()
	}
	e.rec = e2etest.NewRecorder(policy)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	tt, err := tether.Dial(ctx, d, "svc.test:443", e.rec, cfg.opts...)
	require.NoError(t, err)
	e.tt = tt
	t.Cleanup(func() { tt.Close() })
	return e
}

// resolve dials the address that "svc.test" resolves to now, or fails as a
// name that does not resolve.
func (e *env) resolve(ctx context.Context, inner tether.Dialer, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	target := e.target.Load()
	if host != "svc.test" {
		return inner.Dial(ctx, addr)
	}
	if target == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{
			Err: "no such host", Name: host, IsNotFound: true}}
	}
	return inner.Dial(ctx, *target)
}

func (e *env) numDials() int {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	return len(e.dials)
}

func (e *env) dialTimes() []time.Time {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	return append([]time.Time(nil), e.dials...)
}

// startReader reads the Tether in a goroutine (e.r), and waits for the
// server's greeting.
func (e *env) startReader() {
	e.r = e2etest.StartReader(e.tt)
	e.r.WaitRead(e.t, "hello 1\n", 1)
}

// closeAndCheck closes the Tether: Close returns promptly, the reader (if
// any) returns net.ErrClosed, and Err reports net.ErrClosed.
func (e *env) closeAndCheck() time.Duration {
	e.t.Helper()
	start := time.Now()
	require.NoError(e.t, e.tt.Close())
	took := time.Since(start)
	require.Less(e.t, took, time.Second, "Close took %v", took)
	if e.r != nil {
		require.ErrorIs(e.t, e.r.Stopped(e.t), net.ErrClosed)
	}
	require.ErrorIs(e.t, e.tt.Err(), net.ErrClosed)
	return took
}
