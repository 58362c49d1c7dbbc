package tls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// transporttest.TCP serves raw TCP connections, for servers that run (or fake) TLS
// themselves.

// tlsServer returns a Handler that runs the server's side of a handshake
// with config, then hands the connection to h (nil: read until EOF).
func tlsServer(config *tls.Config, h func(c *tls.Conn, n int)) transporttest.Handler {
	return func(ctx context.Context, c net.Conn, n int) {
		s := tls.Server(c, config)
		if err := s.HandshakeContext(ctx); err != nil {
			return
		}
		if h == nil {
			io.Copy(io.Discard, s)
			return
		}
		h(s, n)
	}
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startResumptionServer starts a TLS server that reports on resumed
// whether each connection resumed a session, and greets it with "hi"; then
// it echoes, except on the first connection when closeFirst is set, which
// it closes, so that the client reconnects.
func startResumptionServer(t *testing.T, closeFirst bool) (*transporttest.Server, <-chan bool) {
	resumed := make(chan bool, 2)
	srv := transporttest.StartServer(t, transport(tethertest.TLSServerConfig()), func(ctx context.Context, c net.Conn, n int) {
		resumed <- c.(*tls.Conn).ConnectionState().DidResume
		io.WriteString(c, "hi")
		if n > 1 || !closeFirst {
			transporttest.Echo(ctx, c, n)
		}
	})
	return srv, resumed
}

// TestResumption checks, from the server's side, that the reconnect
// resumes the TLS session of the first connection, though the caller's
// Config has no session cache, and that the caller's Config is unchanged.
func TestResumption(t *testing.T) {
	srv, resumed := startResumptionServer(t, true)
	config := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
	tt, err := tethertls.Dial(dialCtx(t), srv.Addr(), config, new(tethertest.Recorder))
	require.NoError(t, err, "tethertls.Dial")
	defer tt.Close()

	// Reading the first "hi" also reads the TLS 1.3 session tickets sent
	// after the handshake; the server then closes and the Tether reconnects.
	buf := make([]byte, 4)
	_, err = io.ReadFull(tt, buf)
	require.NoError(t, err, "io.ReadFull across the reconnect")
	require.Equal(t, "hihi", string(buf))

	require.False(t, <-resumed, "DidResume on the first connection")
	require.True(t, <-resumed, "DidResume on the reconnect")
	require.True(t, tt.Conn().(*tls.Conn).ConnectionState().DidResume, "the client's DidResume on the reconnect")
	require.Nil(t, config.ClientSessionCache, "the caller's Config.ClientSessionCache after Dial")
	require.Empty(t, config.ServerName, "the caller's Config.ServerName after Dial")
}

// TestCallersSessionCache: a Dialer uses the caller's session cache when it
// has one, and one Dialer shared by two Tethers lets the second resume the
// first's session.
func TestCallersSessionCache(t *testing.T) {
	srv, resumed := startResumptionServer(t, false)
	cache := tls.NewLRUClientSessionCache(4)
	d := &tethertls.Dialer{Config: &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs, ClientSessionCache: cache}}
	for i, want := range []bool{false, true} {
		tt, err := tether.Dial(dialCtx(t), d, srv.Addr(), nil)
		require.NoError(t, err, "tether.Dial #%d", i+1)
		buf := make([]byte, 2)
		_, err = io.ReadFull(tt, buf)
		require.NoError(t, err, "Read #%d", i+1)
		require.NoError(t, tt.Close())
		require.Equal(t, want, <-resumed, "DidResume of Tether #%d", i+1)
	}
	host, _, _ := net.SplitHostPort(srv.Addr())
	_, ok := cache.Get(host)
	require.True(t, ok, "the caller's cache has a session for %q", host)
}

// TestConcurrentDials dials with one Dialer from many goroutines while the
// caller reads its Config: under the race detector, this proves that the
// Dialer clones it once and never writes to it.
func TestConcurrentDials(t *testing.T) {
	srv := transporttest.StartServer(t, transport(tethertest.TLSServerConfig()), transporttest.Echo)
	config := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
	d := &tethertls.Dialer{Config: config}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			c, err := d.Dial(t.Context(), srv.Addr())
			if err == nil {
				c.Close()
			}
			errs <- err
		})
	}
	var seen []string // the caller reads its Config meanwhile
	for range 100 {
		seen = append(seen, config.ServerName)
		if config.ClientSessionCache != nil {
			seen = append(seen, "a cache")
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "Dial")
	}
	for _, s := range seen {
		require.Empty(t, s, "the caller's Config as read during the dials")
	}
}

// TestServerName: with no ServerName in the Config, each dial verifies the
// certificate for the host it dials, a name or an IP address.
func TestServerName(t *testing.T) {
	srv := transporttest.StartServer(t, transport(tethertest.TLSServerConfig()), transporttest.Echo)
	_, port, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	d := &tethertls.Dialer{Config: &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		c, err := d.Dial(t.Context(), net.JoinHostPort(host, port))
		require.NoError(t, err, "Dial(%s)", host)
		c.Close()
	}
}

// TestPermanentErrors: each handshake failure that says the configurations
// do not match is permanent, so that the default policy gives up at the
// first dial; the error keeps the types callers look for.
func TestPermanentErrors(t *testing.T) {
	serverConfig := func(f func(*tls.Config)) *tls.Config {
		c := tethertest.TLSServerConfig()
		f(c)
		return c
	}
	clientConfig := func(f func(*tls.Config)) *tls.Config {
		c := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
		f(c)
		return c
	}
	var (
		cve   *tls.CertificateVerificationError
		alert tls.AlertError
	)
	tests := []struct {
		name   string
		server transporttest.Handler
		client *tls.Config
		check  func(t *testing.T, err error)
	}{{
		name:   "UnknownAuthority",
		server: tlsServer(tethertest.TLSServerConfig(), nil),
		client: &tls.Config{RootCAs: x509.NewCertPool()},
		check:  func(t *testing.T, err error) { require.ErrorAs(t, err, &cve) },
	}, {
		name:   "NilConfig",
		server: tlsServer(tethertest.TLSServerConfig(), nil),
		client: nil, // the system's roots do not know the test CA
		check:  func(t *testing.T, err error) { require.ErrorAs(t, err, &cve) },
	}, {
		name:   "HostnameMismatch",
		server: tlsServer(tethertest.TLSServerConfig(), nil),
		client: clientConfig(func(c *tls.Config) { c.ServerName = "example.com" }),
		check:  func(t *testing.T, err error) { require.ErrorAs(t, err, &cve) },
	}, {
		name:   "ServerVersionTooLow",
		server: tlsServer(serverConfig(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }), nil),
		client: clientConfig(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }),
		check:  requireAlert(&alert, 70), // protocol_version
	}, {
		name:   "ServerVersionTooHigh",
		server: tlsServer(serverConfig(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }), nil),
		client: clientConfig(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }),
		check:  requireAlert(&alert, 70),
	}, {
		name:   "ALPNMismatch",
		server: tlsServer(tethertest.TLSServerConfig("h2"), nil),
		client: clientConfig(func(c *tls.Config) { c.NextProtos = []string{"tether-test"} }),
		check:  requireAlert(&alert, 120), // no_application_protocol
	}, {
		name: "ClientCertificateRequired",
		server: tlsServer(serverConfig(func(c *tls.Config) {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.MaxVersion = tls.VersionTLS12 // TLS 1.3 would reject it after the handshake
		}), nil),
		client: clientConfig(func(*tls.Config) {}),
		check:  requireAlert(&alert, 40), // handshake_failure
	}, {
		name:   "ServerPicksUnofferedVersion",
		server: fakeServerHello(0x0301, ""), // TLS 1.0, below the client's minimum
		client: clientConfig(func(*tls.Config) {}),
	}, {
		name:   "ServerPicksUnofferedALPN",
		server: fakeServerHello(tls.VersionTLS12, "bogus"),
		client: clientConfig(func(c *tls.Config) { c.NextProtos = []string{"h2"} }),
	}, {
		// The commonest TLS misconfiguration: a plaintext server on the
		// port ("first record does not look like a TLS handshake").
		name: "PlaintextServer",
		server: func(ctx context.Context, c net.Conn, n int) {
			c.Write([]byte("-ERR unknown command\r\n"))
			io.Copy(io.Discard, c)
		},
		client: clientConfig(func(*tls.Config) {}),
		check: func(t *testing.T, err error) {
			var rhe tls.RecordHeaderError
			require.ErrorAs(t, err, &rhe)
		},
	}, {
		// The client's own check (pinning) rejects the certificate.
		name:   "VerifyPeerCertificateRejects",
		server: tlsServer(tethertest.TLSServerConfig(), nil),
		client: clientConfig(func(c *tls.Config) {
			c.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { return errPin }
		}),
		check: func(t *testing.T, err error) { require.ErrorIs(t, err, errPin) },
	}, {
		name:   "VerifyConnectionRejects",
		server: tlsServer(tethertest.TLSServerConfig(), nil),
		client: clientConfig(func(c *tls.Config) {
			c.VerifyConnection = func(tls.ConnectionState) error { return errPin }
		}),
		check: func(t *testing.T, err error) { require.ErrorIs(t, err, errPin) },
	}, {
		name:   "MinVersionAboveMax",
		server: tlsServer(tethertest.TLSServerConfig(), nil),
		client: clientConfig(func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS13, tls.VersionTLS12 }),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := transporttest.StartServer(t, transporttest.TCP, tc.server)
			d := &tethertls.Dialer{Config: tc.client}
			_, err := d.Dial(t.Context(), srv.Addr())
			require.Error(t, err, "Dial")
			require.True(t, tether.IsPermanent(err), "tether.IsPermanent(%v) = false, want true", err)
			if tc.check != nil {
				tc.check(t, err)
			}

			// The default policy gives up at once: no second dial.
			tt, err := tether.Dial(dialCtx(t), d, srv.Addr(), nil)
			if tt != nil {
				tt.Close()
			}
			require.Error(t, err, "tether.Dial with the default policy")
			require.NotErrorIs(t, err, context.DeadlineExceeded, "tether.Dial with the default policy")
			require.True(t, tether.IsPermanent(err), "tether.IsPermanent(%v) = false, want true", err)
			require.LessOrEqual(t, srv.Accepted(), 2, "connections accepted: one Dial, one tether.Dial")
		})
	}
}

// errPin is a client's own certificate check's error.
var errPin = errors.New("certificate pin mismatch (test)")

// requireAlert returns a check that err wraps the TLS alert want.
func requireAlert(alert *tls.AlertError, want tls.AlertError) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		require.ErrorAs(t, err, alert)
		require.Equal(t, want, *alert, "the alert in %v", err)
		require.ErrorIs(t, err, want)
	}
}

// fakeServerHello returns a Handler that answers any ClientHello with a
// TLS 1.2 ServerHello that picks version vers, the cipher suite
// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 and, unless alpn is empty, that
// ALPN protocol: what a server that crypto/tls cannot be made into says.
func fakeServerHello(vers uint16, alpn string) transporttest.Handler {
	u16 := func(n int) []byte { return []byte{byte(n >> 8), byte(n)} }
	var ext []byte
	if alpn != "" {
		list := append([]byte{byte(len(alpn))}, alpn...)
		body := append(u16(len(list)), list...)
		ext = append(append(u16(16), u16(len(body))...), body...) // application_layer_protocol_negotiation
	}
	msg := u16(int(vers))
	msg = append(msg, make([]byte, 32)...) // random
	msg = append(msg, 0)                   // no session ID
	msg = append(msg, 0xc0, 0x2f)          // the cipher suite
	msg = append(msg, 0)                   // no compression
	if ext != nil {
		msg = append(append(msg, u16(len(ext))...), ext...)
	}
	hs := append([]byte{2, 0, byte(len(msg) >> 8), byte(len(msg))}, msg...) // server_hello
	record := append(append([]byte{22, 3, 3}, u16(len(hs))...), hs...)      // handshake
	return func(_ context.Context, c net.Conn, _ int) {
		c.Write(record)
		io.Copy(io.Discard, c)
	}
}

// TestTransientErrors: failures that a retry may mend are transient.
func TestTransientErrors(t *testing.T) {
	client := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
	t.Run("ClosedDuringHandshake", func(t *testing.T) {
		srv := transporttest.StartServer(t, transporttest.TCP, func(context.Context, net.Conn, int) {})
		_, err := (&tethertls.Dialer{Config: client}).Dial(t.Context(), srv.Addr())
		require.Error(t, err, "Dial to a server that closes at once")
		require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
	})
	t.Run("ClosedAfterClientHello", func(t *testing.T) {
		srv := transporttest.StartServer(t, transporttest.TCP, func(_ context.Context, c net.Conn, _ int) {
			c.Read(make([]byte, 1024))
		})
		_, err := (&tethertls.Dialer{Config: client}).Dial(t.Context(), srv.Addr())
		require.Error(t, err, "Dial to a server that closes after the ClientHello")
		require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
	})
	t.Run("Refused", func(t *testing.T) {
		srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
		srv.Stop()
		_, err := (&tethertls.Dialer{Config: client}).Dial(t.Context(), srv.Addr())
		require.Error(t, err, "Dial to a stopped server")
		require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
	})
	t.Run("HandshakeTimeout", func(t *testing.T) {
		// The server accepts and never answers: the attempt's timeout
		// covers the handshake.
		srv := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, _ net.Conn, _ int) { <-ctx.Done() })
		d := &tethertls.Dialer{Config: client, NetDialer: &tcp.Dialer{Timeout: 100 * time.Millisecond}}
		_, err := d.Dial(t.Context(), srv.Addr())
		require.Error(t, err, "Dial to a server that never answers")
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "Timeout() of %v", err)
		require.False(t, tether.IsPermanent(err), "tether.IsPermanent(%v)", err)
	})
}

// TestDialErrors: every Dial error names the transport and the address as
// a *net.OpError: package tcp's "dial tcp ADDR: ..." when the TCP dial
// fails, else "dial tls ADDR: cause" with crypto/tls's message unchanged;
// errors.Is and errors.As reach the cause.
func TestDialErrors(t *testing.T) {
	good := transporttest.StartServer(t, transporttest.TCP, tlsServer(tethertest.TLSServerConfig("h2"), nil))
	silent := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, _ net.Conn, _ int) { <-ctx.Done() })
	stopped := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
	stopped.Stop()
	client := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
	var (
		cve   *tls.CertificateVerificationError
		alert tls.AlertError
		ae    *net.AddrError
	)
	for _, tc := range []struct {
		name      string
		d         *tethertls.Dialer
		addr      string
		want      string // the whole message
		is        error
		as        any
		permanent bool
	}{
		{"refused", &tethertls.Dialer{Config: client}, stopped.Addr(),
			"dial tcp " + stopped.Addr() + ": connect: connection refused", syscall.ECONNREFUSED, nil, false},
		{"missing port", &tethertls.Dialer{Config: client}, "127.0.0.1",
			"dial tls 127.0.0.1: address 127.0.0.1: missing port in address", nil, &ae, true},
		{"negative Timeout", &tethertls.Dialer{NetDialer: &tcp.Dialer{Timeout: -time.Second}}, "127.0.0.1:1",
			"dial tcp 127.0.0.1:1: tether/tcp: negative Timeout", nil, nil, true},
		{"unknown authority", &tethertls.Dialer{Config: &tls.Config{RootCAs: x509.NewCertPool()}}, good.Addr(),
			"dial tls " + good.Addr() + ": tls: failed to verify certificate: x509: certificate signed by unknown authority", nil, &cve, true},
		{"nil Dialer", nil, good.Addr(), // the system's roots do not know the test CA
			"dial tls " + good.Addr() + ": tls: failed to verify certificate: x509: certificate signed by unknown authority", nil, &cve, true},
		{"alert", &tethertls.Dialer{Config: &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs, NextProtos: []string{"x"}}}, good.Addr(),
			"dial tls " + good.Addr() + ": remote error: tls: no application protocol", tls.AlertError(120), &alert, true},
		{"handshake timeout", &tethertls.Dialer{Config: client, NetDialer: &tcp.Dialer{Timeout: 100 * time.Millisecond}}, silent.Addr(),
			"dial tls " + silent.Addr() + ": tether/tls: no connection within 100ms", context.DeadlineExceeded, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oe := transporttest.DialFails(t, t.Context(), tc.d, tc.addr, transporttest.DialError{
				Msg: tc.want, Is: tc.is, As: tc.as, Permanent: tc.permanent,
			})
			require.Equal(t, tc.is == context.DeadlineExceeded, oe.Timeout(), "Timeout() of %v", oe)
		})
	}
}

// TestCloseDuringHandshake: Close of a Tether whose reconnect is in the
// middle of a TLS handshake returns, the blocked Read returns
// net.ErrClosed, and the half-made connection is closed.
func TestCloseDuringHandshake(t *testing.T) {
	held, ended := make(chan struct{}), make(chan struct{})
	srv := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, c net.Conn, n int) {
		if n == 1 {
			tlsServer(tethertest.TLSServerConfig(), func(c *tls.Conn, _ int) {
				io.WriteString(c, "hi")
				<-ctx.Done()
			})(ctx, c, n)
			return
		}
		close(held) // and never answer the ClientHello
		io.Copy(io.Discard, c)
		close(ended)
	})
	tt, err := tethertls.Dial(dialCtx(t), srv.Addr(), &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}, new(tethertest.Recorder))
	require.NoError(t, err, "tethertls.Dial")
	buf := make([]byte, 2)
	_, err = io.ReadFull(tt, buf)
	require.NoError(t, err)

	srv.KillConns()
	read := make(chan error, 1)
	go func() {
		_, err := tt.Read(buf)
		read <- err
	}()
	<-held
	require.NoError(t, tt.Close(), "Close during the handshake")
	require.ErrorIs(t, <-read, net.ErrClosed, "the blocked Read")
	<-ended // the client closed the connection it was handshaking on
}

// TestClientCertificateRejectedAfterHandshake: a TLS 1.3 server that
// requires a client certificate says so only after the client's handshake
// is over, in an alert the client reads on the connection. That is a
// permanent failure too: the default policy gives up on it at once.
func TestClientCertificateRejectedAfterHandshake(t *testing.T) {
	sc := tethertest.TLSServerConfig()
	sc.ClientAuth = tls.RequireAndVerifyClientCert
	srv := transporttest.StartServer(t, transporttest.TCP, tlsServer(sc, nil))
	tt, err := tether.Dial(dialCtx(t), &tethertls.Dialer{Config: tethertest.TLSClientConfig()}, srv.Addr(), nil)
	require.NoError(t, err, "the client's side of a TLS 1.3 handshake completes")
	defer tt.Close()
	require.NoError(t, tt.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = tt.Read(make([]byte, 1))
	require.ErrorIs(t, err, tether.ErrGaveUp)
	require.True(t, tether.IsPermanent(tt.Err()), "tether.IsPermanent(%v) = false, want true", tt.Err())
	require.Equal(t, 1, srv.Accepted(), "connections accepted: no reconnect")
}

// TestResumptionAfterFailedHandshake: a handshake that fails midway (the
// server went away) does not cost the next dial its resumption, though
// crypto/tls drops the session it offered.
func TestResumptionAfterFailedHandshake(t *testing.T) {
	sc := tethertest.TLSServerConfig() // one config: one set of session ticket keys
	resumed := make(chan bool, 3)
	srv := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, c net.Conn, n int) {
		if n == 2 { // read the ClientHello, then go away
			c.Read(make([]byte, 512))
			return
		}
		s := tls.Server(c, sc)
		if err := s.HandshakeContext(ctx); err != nil {
			return
		}
		resumed <- s.ConnectionState().DidResume
		io.WriteString(s, "hi")
	})
	rec := new(tethertest.Recorder)
	tt, err := tether.Dial(dialCtx(t), &tethertls.Dialer{Config: &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}}, srv.Addr(), rec)
	require.NoError(t, err)
	defer tt.Close()
	require.NoError(t, tt.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 4)
	_, err = io.ReadFull(tt, buf)
	require.NoError(t, err, "io.ReadFull across the reconnect")
	require.Equal(t, "hihi", string(buf))
	require.Equal(t, 1, rec.Count(tether.Unreachable), "the failed handshake; events: %v", rec.Kinds())
	require.False(t, <-resumed, "DidResume on the first connection")
	require.True(t, <-resumed, "DidResume after the failed handshake")
}

// TestUnansweredHandshakeKeepsSession: a handshake that the server never
// answers keeps the session that crypto/tls dropped when it offered it,
// whether the attempt timed out or ctx was cancelled (a Tether sharing the
// Dialer was closed during its dial): the next dial of every Tether on
// the Dialer resumes. The cancelled one used to drop it.
func TestUnansweredHandshakeKeepsSession(t *testing.T) {
	sc := tethertest.TLSServerConfig()
	sc.MaxVersion = tls.VersionTLS12 // the session is cached when the handshake ends
	good := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, c net.Conn, _ int) {
		tls.Server(c, sc).HandshakeContext(ctx)
	})
	mute := transporttest.StartServer(t, transporttest.TCP, func(ctx context.Context, c net.Conn, _ int) {
		<-ctx.Done() // takes the connection, answers nothing
	})
	cache := tls.NewLRUClientSessionCache(4)
	cc := tethertest.TLSClientConfig()
	cc.ClientSessionCache = cache
	d := &tethertls.Dialer{Config: cc, NetDialer: &tcp.Dialer{Timeout: 200 * time.Millisecond}}
	c, err := d.Dial(t.Context(), good.Addr())
	require.NoError(t, err)
	c.Close()
	_, ok := cache.Get(cc.ServerName)
	require.True(t, ok, "a session is cached")

	_, err = d.Dial(t.Context(), mute.Addr())
	require.Error(t, err)
	_, ok = cache.Get(cc.ServerName)
	require.True(t, ok, "the session is kept after the attempt timed out")

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = d.Dial(ctx, mute.Addr())
	require.ErrorIs(t, err, context.Canceled)
	_, ok = cache.Get(cc.ServerName)
	require.True(t, ok, "the session is kept after ctx was cancelled")
}
