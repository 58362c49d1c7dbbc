package tethertest_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether/tethertest"
)

// handshake runs a TLS handshake over net.Pipe and returns the server's
// state and the client's error.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	c, s := net.Pipe()
	srv := tls.Server(s, server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handshake()
	}()
	err := tls.Client(c, client).Handshake()
	c.Close() // first: the server's alert or Close then fails at once
	<-done
	st := srv.ConnectionState()
	srv.Close()
	return st, err
}

func TestTLSConfigsHandshake(t *testing.T) {
	st, err := handshake(t, tethertest.TLSServerConfig("a", "b"), tethertest.TLSClientConfig("b"))
	require.NoError(t, err)
	require.Equal(t, "b", st.NegotiatedProtocol)

	// The certificate names the loopback addresses too.
	cfg := tethertest.TLSClientConfig()
	cfg.ServerName = "127.0.0.1"
	_, err = handshake(t, tethertest.TLSServerConfig(), cfg)
	require.NoError(t, err)
	cfg.ServerName = "example.com"
	_, err = handshake(t, tethertest.TLSServerConfig(), cfg)
	var host x509.HostnameError
	require.ErrorAs(t, err, &host)

	// Only TLSClientConfig's pool trusts the CA.
	_, err = handshake(t, tethertest.TLSServerConfig(), &tls.Config{ServerName: "localhost", RootCAs: x509.NewCertPool()})
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
}

// The certificates verify inside a synctest bubble, whose clock reads 2000.
func TestTLSConfigsInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := handshake(t, tethertest.TLSServerConfig(), tethertest.TLSClientConfig())
		require.NoError(t, err)
	})
}

// Each call returns a Config of its own, over the same certificates.
func TestTLSConfigsAreFresh(t *testing.T) {
	a, b := tethertest.TLSClientConfig(), tethertest.TLSClientConfig()
	require.NotSame(t, a, b)
	a.ServerName = "changed"
	require.Equal(t, "localhost", b.ServerName)
	require.True(t, a.RootCAs.Equal(b.RootCAs))
	s1, s2 := tethertest.TLSServerConfig(), tethertest.TLSServerConfig()
	require.NotSame(t, s1, s2)
	require.Equal(t, s1.Certificates[0].Certificate, s2.Certificates[0].Certificate)
}
