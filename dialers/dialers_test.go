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

// TestUnixErrors: a socket file with no listener behind it refuses, a
// removed one does not exist; both are transient, so that a Tether waits
// for a server that restarts.
func TestUnixErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	_, err = os.Stat(path)
	require.NoError(t, err, "the socket file after its listener closed")

	d := &dialers.Unix{}
	_, err = d.Dial(t.Context(), path)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "Dial to a socket file with no listener")
	require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)

	require.NoError(t, os.Remove(path))
	_, err = d.Dial(t.Context(), path)
	require.ErrorIs(t, err, fs.ErrNotExist, "Dial to a removed socket")
	require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
}

// TestUnixConfig: Timeout and NetDialer, a nil *Unix, and a bad Timeout.
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

	_, err = (&dialers.Unix{Timeout: -time.Second}).Dial(t.Context(), srv.Addr())
	require.Error(t, err, "Dial with a negative Timeout")
	require.True(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
}

// TestFromFunc: the adapter passes its network, the address and ctx
// through, and its function's results back.
func TestFromFunc(t *testing.T) {
	srv := transporttest.StartServer(t, transporttest.Transport{Name: "tcp", Listen: transporttest.ListenTCP}, transporttest.Echo)
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

	errDial := errors.New("no route in the test")
	_, err = dialers.FromFunc("tcp", func(context.Context, string, string) (net.Conn, error) {
		return nil, errDial
	}).Dial(t.Context(), srv.Addr())
	require.Equal(t, errDial, err, "the function's error")
}

func TestFromFuncBadConfig(t *testing.T) {
	for name, d := range map[string]tether.Dialer{
		"NilFunc":      dialers.FromFunc("tcp", nil),
		"EmptyNetwork": dialers.FromFunc("", (&net.Dialer{}).DialContext),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := d.Dial(t.Context(), "127.0.0.1:1")
			require.Error(t, err, "Dial")
			require.True(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
		})
	}
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
	require.Contains(t, err.Error(), "tether/dialers: dial somewhere:1: no connection within 50ms")

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

// TestTimeoutPassesThrough: what the Dialer returns in time is returned as
// it is.
func TestTimeoutPassesThrough(t *testing.T) {
	conn := &fakeConn{}
	c, err := dialers.Timeout(tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		return conn, nil
	}), time.Hour).Dial(t.Context(), "somewhere:1")
	require.NoError(t, err)
	require.Same(t, conn, c)

	errRefused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	_, err = dialers.Timeout(tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		return nil, errRefused
	}), time.Hour).Dial(t.Context(), "somewhere:1")
	require.Equal(t, error(errRefused), err)
}

func TestTimeoutBadConfig(t *testing.T) {
	ok := tether.DialerFunc(func(context.Context, string) (net.Conn, error) { return &fakeConn{}, nil })
	for name, d := range map[string]tether.Dialer{
		"NilDialer":       dialers.Timeout(nil, time.Second),
		"ZeroTimeout":     dialers.Timeout(ok, 0),
		"NegativeTimeout": dialers.Timeout(ok, -time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := d.Dial(t.Context(), "127.0.0.1:1")
			require.Error(t, err, "Dial")
			require.True(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
		})
	}
}
