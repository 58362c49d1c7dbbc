package tcp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// freePort returns a loopback address on which nothing listens.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// echoServer echoes on addr until stopped; stop closes the listener and
// every connection, as a server restart does.
type echoServer struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startEcho(t *testing.T, addr string) *echoServer {
	t.Helper()
	var (
		l   net.Listener
		err error
	)
	// The port was just ours; the kernel may take a moment to free it.
	for i := 0; i < 100; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, err)
	s := &echoServer{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.Write([]byte("hi"))
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *echoServer) stop() {
	s.l.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
}

// fast reconnects after 10 ms, for ever, and reports each event.
func fast(events chan<- tether.EventKind) tether.DisconnectHandler {
	return tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		select {
		case events <- ev.Kind:
		default:
		}
		ev.Delay = 10 * time.Millisecond
		return tether.Reconnect
	})
}

// greeted reads the server's greeting.
func greeted(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 2)
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf))
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, msg, string(buf))
}

// Semantics 1 over real sockets: a server restarted on the same port.
func TestServerRestartSamePort(t *testing.T) {
	addr := freePort(t)
	s := startEcho(t, addr)
	events := make(chan tether.EventKind, 100)
	tt, err := tcp.Dial(t.Context(), addr, fast(events))
	require.NoError(t, err)
	defer tt.Close()
	greeted(t, tt)
	echo(t, tt, "before")

	// The Read meets the server's close and waits for the reconnect; the
	// restarted server greets the new connection. (A Write first would be
	// accepted by the dead connection and lost: see the package docs.)
	s.stop()
	startEcho(t, addr)
	greeted(t, tt)
	echo(t, tt, "after")
	require.Equal(t, uint64(2), tt.Generation())
	require.Equal(t, tether.Connected, <-events)
	require.Equal(t, tether.Disconnected, <-events)
}

// Semantics 12 over TCP: CloseWrite passes through, the peer's EOF after it
// is final, and nothing reconnects.
func TestCloseWrite(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c) // until the client's CloseWrite
		c.Write(append([]byte("reply to "), req...))
	}()
	events := make(chan tether.EventKind, 100)
	tt, err := tcp.Dial(t.Context(), l.Addr().String(), fast(events))
	require.NoError(t, err)
	defer tt.Close()
	_, err = tt.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, tt.CloseWrite())
	require.NoError(t, tt.SetReadDeadline(time.Now().Add(10*time.Second)))
	reply, err := io.ReadAll(tt)
	require.NoError(t, err)
	require.Equal(t, "reply to request", string(reply))

	_, err = tt.Write([]byte("more"))
	require.Error(t, err, "a Write after CloseWrite fails")
	require.Equal(t, tether.Connected, <-events)
	require.Empty(t, events, "no reconnect")
	require.Equal(t, uint64(1), tt.Generation())
}

// TestDialErrors: every Dial error is "dial tcp ADDR: cause", a
// *net.OpError that names the address it was given, reaches its cause, and
// is classified by tether.IsPermanent.
func TestDialErrors(t *testing.T) {
	refused := freePort(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	for _, tc := range []struct {
		name      string
		d         *tcp.Dialer
		ctx       context.Context
		addr      string
		want      string // the message after "dial tcp ADDR: "
		is        error
		permanent bool
	}{
		{"refused", nil, t.Context(), refused, "connect: connection refused", syscall.ECONNREFUSED, false},
		{"missing port", &tcp.Dialer{}, t.Context(), "127.0.0.1", "address 127.0.0.1: missing port in address", nil, true},
		{"cancelled", &tcp.Dialer{}, cancelled, refused, "operation was canceled", context.Canceled, true},
		{"timed out", &tcp.Dialer{}, expired, refused, "i/o timeout", context.DeadlineExceeded, false},
		{"negative Timeout", &tcp.Dialer{Timeout: -1}, t.Context(), refused, "tether/tcp: negative Timeout", nil, true},
		{"negative UserTimeout", &tcp.Dialer{UserTimeout: -1}, t.Context(), refused, "tether/tcp: negative UserTimeout", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.d.Dial(tc.ctx, tc.addr)
			require.Nil(t, c)
			require.EqualError(t, err, "dial tcp "+tc.addr+": "+tc.want)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, "tcp", oe.Net)
			require.Equal(t, tc.addr, oe.Addr.String())
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Equal(t, tc.permanent, tether.IsPermanent(err), "IsPermanent(%v)", err)
		})
	}
	tt, err := tcp.Dial(t.Context(), "127.0.0.1", nil)
	require.Nil(t, tt)
	require.True(t, tether.IsPermanent(err), "tcp.Dial without a port: IsPermanent(%v)", err)
}

// A caller's NetDialer is copied, never changed, and its hooks still run.
func TestNetDialerNotChanged(t *testing.T) {
	s := startEcho(t, "127.0.0.1:0")
	var called bool
	nd := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		called = true
		return nil
	}}
	c, err := (&tcp.Dialer{NetDialer: nd, UserTimeout: time.Second}).Dial(t.Context(), s.l.Addr().String())
	require.NoError(t, err)
	c.Close()
	require.True(t, called)
	require.Zero(t, nd.Timeout)
	require.Zero(t, nd.KeepAliveConfig)
}

// Close during the dial of a server that never answers returns at once.
func TestCloseDuringBackoffRealSocket(t *testing.T) {
	s := startEcho(t, "127.0.0.1:0")
	addr := s.l.Addr().String()
	slow := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		ev.Delay = time.Hour
		return tether.Reconnect
	})
	tt, err := tcp.Dial(t.Context(), addr, slow)
	require.NoError(t, err)
	greeted(t, tt)
	require.NoError(t, tt.SetDeadline(time.Time{}))
	s.stop()
	errc := make(chan error, 1)
	go func() {
		_, err := tt.Read(make([]byte, 1))
		errc <- err
	}()
	// Wait until the read is waiting for the reconnect.
	require.Eventually(t, func() bool { return tt.Conn() == nil }, 10*time.Second, time.Millisecond)
	start := time.Now()
	require.NoError(t, tt.Close())
	require.ErrorIs(t, <-errc, net.ErrClosed)
	require.Less(t, time.Since(start), time.Second, "generous bound; the promise is well under 100 ms")
	require.True(t, errors.Is(tt.Err(), net.ErrClosed))
}
