package dialers_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	"github.com/io-tether/tether/internal/transporttest"
)

// TestUnixConfig: Timeout and NetDialer, and a nil *Unix.
func TestUnixConfig(t *testing.T) {
	srv := transporttest.StartServer(t, transporttest.Transport{Name: "unix", Listen: listenUnix}, transporttest.Echo)
	base := &net.Dialer{Timeout: time.Minute}
	c, err := (&dialers.Unix{NetDialer: base, Timeout: time.Second}).Dial(t.Context(), srv.Addr())
	require.NoError(t, err, "Dial with a NetDialer")
	c.Close()
	require.Equal(t, time.Minute, base.Timeout, "the NetDialer's Timeout after Dial")

	c, err = (*dialers.Unix)(nil).Dial(t.Context(), srv.Addr())
	require.NoError(t, err, "Dial of a nil *Unix, the zero value")
	c.Close()
}

// TestFromFunc: the adapter passes its network, the address and ctx
// through, and its function's results back.
func TestFromFunc(t *testing.T) {
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
	type key struct{}
	var gotNetwork, gotAddr string
	var gotValue any
	d := dialers.FromFunc("tcp4", func(ctx context.Context, network, addr string) (net.Conn, error) {
		gotNetwork, gotAddr, gotValue = network, addr, ctx.Value(key{})
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	})
	c, err := d.Dial(context.WithValue(t.Context(), key{}, "v"), srv.Addr())
	require.NoError(t, err, "Dial")
	defer c.Close()
	require.Equal(t, "tcp4", gotNetwork)
	require.Equal(t, srv.Addr(), gotAddr)
	require.Equal(t, "v", gotValue, "a value of Dial's ctx")
	_, err = io.WriteString(c, "ping")
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
}

// fakeConn records its Close.
type fakeConn struct {
	net.Conn
	closed chan struct{}
}

func (c *fakeConn) Close() error { close(c.closed); return nil }

// TestTimeout: an attempt ends at the timeout even when the Dialer ignores
// its ctx, with a transient timeout error, and the connection that comes
// too late is closed.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	late := &fakeConn{closed: make(chan struct{})}
	var deadline time.Time
	stuck := tether.DialerFunc(func(ctx context.Context, _ string) (net.Conn, error) {
		deadline, _ = ctx.Deadline()
		<-release // ignores ctx
		return late, nil
	})
	start := time.Now()
	_, err := dialers.Timeout(stuck, 50*time.Millisecond).Dial(t.Context(), "somewhere:1")
	require.Error(t, err, "Dial through Timeout of a Dialer that hangs")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "Timeout() of %v", err)
	require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)

	close(release)
	<-late.closed // the late connection is closed
	require.WithinDuration(t, start.Add(50*time.Millisecond), deadline, time.Second, "the deadline of the inner Dial's ctx")
}

// TestTimeoutCancel: Close of a Tether cancels the dial's ctx; Timeout
// returns then, even when the Dialer ignores ctx.
func TestTimeoutCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		<-release
		return nil, errors.New("released")
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := dialers.Timeout(stuck, time.Hour).Dial(ctx, "somewhere:1")
	require.ErrorIs(t, err, context.Canceled, "Dial with a cancelled ctx")
}

// TestDialErrors: every error names the transport (when known) and the
// address as a *net.OpError does, "dial NETWORK ADDR: cause", and reaches
// its cause; what a Dialer under Timeout returns in time is passed through.
func TestDialErrors(t *testing.T) {
	// A socket file with no listener behind it refuses, a removed one does
	// not exist: both transient, so that a Tether waits for a server that
	// restarts.
	refusing := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: refusing, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	_, err = os.Stat(refusing)
	require.NoError(t, err, "the socket file after its listener closed")
	missing := filepath.Join(t.TempDir(), "none")

	errDial := errors.New("no route in the test")
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, Err: syscall.ECONNREFUSED}
	fails := func(err error) tether.DialerFunc {
		return func(context.Context, string) (net.Conn, error) { return nil, err }
	}
	release := make(chan struct{})
	defer close(release)
	hang := tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		<-release // ignores its ctx
		return nil, errors.New("released")
	})
	ok := fails(nil)
	for _, tc := range []struct {
		name      string
		d         tether.Dialer
		addr      string
		want      string
		is        error
		permanent bool
	}{
		{"unix refused", &dialers.Unix{}, refusing, "dial unix " + refusing + ": connect: connection refused", syscall.ECONNREFUSED, false},
		{"unix missing", &dialers.Unix{}, missing, "dial unix " + missing + ": connect: no such file or directory", fs.ErrNotExist, false},
		{"unix negative Timeout", &dialers.Unix{Timeout: -time.Second}, missing, "dial unix " + missing + ": tether/dialers: negative Timeout", nil, true},
		{"FromFunc, its error", dialers.FromFunc("tcp", func(context.Context, string, string) (net.Conn, error) { return nil, errDial }),
			"127.0.0.1:1", "dial tcp 127.0.0.1:1: no route in the test", errDial, false},
		{"FromFunc, net's error", dialers.FromFunc("tcp", (&net.Dialer{}).DialContext), "127.0.0.1",
			"dial tcp 127.0.0.1: address 127.0.0.1: missing port in address", nil, true},
		{"FromFunc, nil func", dialers.FromFunc("tcp", nil), "127.0.0.1:1",
			"dial tcp 127.0.0.1:1: tether/dialers: FromFunc with a nil dial function", nil, true},
		{"FromFunc, no network", dialers.FromFunc("", (&net.Dialer{}).DialContext), "127.0.0.1:1",
			"dial 127.0.0.1:1: tether/dialers: FromFunc with an empty network", nil, true},
		{"Timeout", dialers.Timeout(hang, 50*time.Millisecond), "somewhere:1",
			"dial somewhere:1: tether/dialers: no connection within 50ms", context.DeadlineExceeded, false},
		{"Timeout passes through", dialers.Timeout(fails(refused), time.Hour), "127.0.0.1:1",
			"dial tcp 127.0.0.1:1: connection refused", syscall.ECONNREFUSED, false},
		{"Timeout, nil Dialer", dialers.Timeout(nil, time.Second), "127.0.0.1:1",
			"dial 127.0.0.1:1: tether/dialers: Timeout of a nil Dialer", nil, true},
		{"Timeout, zero", dialers.Timeout(ok, 0), "127.0.0.1:1",
			"dial 127.0.0.1:1: tether/dialers: Timeout of 0s, want a positive duration", nil, true},
		{"Timeout, negative", dialers.Timeout(ok, -time.Second), "127.0.0.1:1",
			"dial 127.0.0.1:1: tether/dialers: Timeout of -1s, want a positive duration", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			transporttest.DialFails(t, t.Context(), tc.d, tc.addr, transporttest.DialError{Msg: tc.want, Is: tc.is, Permanent: tc.permanent})
		})
	}
}
