package session_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// TestMain checks, once every test is done, that none left a goroutine
// behind: the parallel tests, which goleak.VerifyNone cannot check one by
// one, included.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transport is one kind of transport connection for sessions.
type transport struct {
	name   string
	listen func(t testing.TB) net.Listener
	dialer func() (d tether.Dialer, closeDialer func())
}

var transports = []transport{
	{
		name: "tcp",
		listen: func(t testing.TB) net.Listener {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			return ln
		},
		dialer: func() (tether.Dialer, func()) { return &tethertcp.Dialer{}, func() {} },
	},
	{
		name: "tls",
		listen: func(t testing.TB) net.Listener {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			return tls.NewListener(ln, tethertest.TLSServerConfig())
		},
		dialer: func() (tether.Dialer, func()) {
			return &tethertls.Dialer{Config: tethertest.TLSClientConfig()}, func() {}
		},
	},
	{
		name: "quic",
		listen: func(t testing.TB) net.Listener {
			ln, err := tetherquic.Listen("127.0.0.1:0", tethertest.TLSServerConfig("tether-test"), nil)
			require.NoError(t, err)
			return ln
		},
		dialer: func() (tether.Dialer, func()) {
			d := &tetherquic.Dialer{TLSConfig: tethertest.TLSClientConfig("tether-test")}
			return d, func() { d.Close() }
		},
	},
}

// dial dials a session over tr to sl, with quick and opts, within 10 s;
// closeDialer closes the dialer (a QUIC Dialer's connections), to be
// deferred before the session's Close.
func (tr transport) dial(t *testing.T, sl *session.Listener, opts ...session.Option) (c *session.Conn, closeDialer func()) {
	t.Helper()
	d, closeDialer := tr.dialer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, d, sl.Addr().String(), quick(), opts...)
	if err != nil {
		closeDialer()
	}
	require.NoError(t, err)
	return c, closeDialer
}

// quick is a handler that reconnects at once, then with short delays, and
// gives up on permanent errors.
func quick() tether.DisconnectHandler {
	return tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if tether.IsPermanent(ev.Err) {
			return tether.GiveUp
		}
		if ev.Attempt > 0 {
			ev.Delay = time.Duration(min(ev.Attempt, 20)) * 5 * time.Millisecond
		}
		return tether.Reconnect
	})
}

// echo serves every session of sl with an echo, closing each when its
// peer finished.
func echo(sl *session.Listener) {
	for {
		c, err := sl.Accept()
		if err != nil {
			return
		}
		go func() {
			io.Copy(c, c)
			c.Close()
		}()
	}
}
