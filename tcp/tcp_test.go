package tcp_test

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
)

// transporttest.TCP is TCP on loopback, for the servers of the tests.

// TestSuite holds the tcp Dialer to the semantics every transport shares.
func TestSuite(t *testing.T) {
	tr := transporttest.TCP
	tr.Dialer = func() tether.Dialer { return &tcp.Dialer{} }
	transporttest.Run(t, tr)
}

// Semantics 12 over TCP: CloseWrite passes through, the peer's EOF after it
// is final, and nothing reconnects.
func TestCloseWrite(t *testing.T) {
	srv := transporttest.StartServer(t, transporttest.TCP, func(_ context.Context, c net.Conn, _ int) {
		req, _ := io.ReadAll(c) // until the client's CloseWrite
		c.Write(append([]byte("reply to "), req...))
	})
	rec := new(tethertest.Recorder)
	tt, err := tcp.Dial(t.Context(), srv.Addr(), rec)
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
	require.Equal(t, []tether.EventKind{tether.Connected}, rec.Kinds(), "no reconnect")
	require.Equal(t, uint64(1), tt.Generation())
}

// TestDialErrors: every Dial error is "dial tcp ADDR: cause", a
// *net.OpError that names the address it was given, reaches its cause, and
// is classified by tether.IsPermanent.
func TestDialErrors(t *testing.T) {
	stopped := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
	stopped.Stop()
	refused := stopped.Addr()
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
		{"empty address", &tcp.Dialer{}, t.Context(), "", "missing address", nil, true},
		{"port 0", &tcp.Dialer{}, t.Context(), "127.0.0.1:0", "address 127.0.0.1:0: no port to dial", nil, true},
		{"empty port", &tcp.Dialer{}, t.Context(), "127.0.0.1:", "address 127.0.0.1:: no port to dial", nil, true},
		{"unknown service", &tcp.Dialer{}, t.Context(), "127.0.0.1:no-such-service", "address 127.0.0.1:no-such-service: unknown port", nil, true},
		{"port 0, spelled 00", &tcp.Dialer{}, t.Context(), "127.0.0.1:00", "address 127.0.0.1:00: no port to dial", nil, true},
		{"port 0, spelled +0", &tcp.Dialer{}, t.Context(), "127.0.0.1:+0", "address 127.0.0.1:+0: no port to dial", nil, true},
		{"unknown service, a digit first", &tcp.Dialer{}, t.Context(), "127.0.0.1:8o", "address 127.0.0.1:8o: unknown port", nil, true},
		{"cancelled", &tcp.Dialer{}, cancelled, refused, "operation was canceled", context.Canceled, true},
		{"timed out", &tcp.Dialer{}, expired, refused, "i/o timeout", context.DeadlineExceeded, false},
		{"negative Timeout", &tcp.Dialer{Timeout: -1}, t.Context(), refused, "tether/tcp: negative Timeout", nil, true},
		{"negative UserTimeout", &tcp.Dialer{UserTimeout: -1}, t.Context(), refused, "tether/tcp: negative UserTimeout", nil, true},
		{"UserTimeout too long", &tcp.Dialer{UserTimeout: 25 * 24 * time.Hour}, t.Context(), refused, "tether/tcp: UserTimeout above 596h31m23.647s", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oe := transporttest.DialFails(t, tc.ctx, tc.d, tc.addr, transporttest.DialError{
				Msg: "dial tcp " + tc.addr + ": " + tc.want, Is: tc.is, Permanent: tc.permanent,
			})
			require.Equal(t, "tcp", oe.Net)
		})
	}
	tt, err := tcp.Dial(t.Context(), "127.0.0.1", nil)
	require.Nil(t, tt)
	require.True(t, tether.IsPermanent(err), "tcp.Dial without a port: IsPermanent(%v)", err)
}

// A caller's NetDialer is copied, never changed, and its hooks still run.
func TestNetDialerNotChanged(t *testing.T) {
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
	var called bool
	nd := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		called = true
		return nil
	}}
	c, err := (&tcp.Dialer{NetDialer: nd, UserTimeout: time.Second}).Dial(t.Context(), srv.Addr())
	require.NoError(t, err)
	c.Close()
	require.True(t, called)
	require.Zero(t, nd.Timeout)
	require.Zero(t, nd.KeepAliveConfig)
}

// Close during a backoff wait over a real socket returns at once.
func TestCloseDuringBackoffRealSocket(t *testing.T) {
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Greet("hi"))
	slow := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		ev.Delay = time.Hour
		return tether.Reconnect
	})
	tt, err := tcp.Dial(t.Context(), srv.Addr(), slow)
	require.NoError(t, err)
	_, err = io.ReadFull(tt, make([]byte, 2))
	require.NoError(t, err, "the greeting")
	srv.Stop()
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
	require.ErrorIs(t, tt.Err(), net.ErrClosed)
}
