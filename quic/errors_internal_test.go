package quic

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/attempt"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// TestClassify: what the default policy makes of each quic-go error, as a
// dial error and as an I/O error (which Read and Write pass through).
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"bad-certificate", &quic.TransportError{ErrorCode: 0x100 + 42}, true},
		{"unknown-ca", &quic.TransportError{ErrorCode: 0x100 + 48, Remote: true}, true},
		{"no-application-protocol", &quic.TransportError{ErrorCode: 0x100 + 120, Remote: true}, true},
		{"tls-internal-error", &quic.TransportError{ErrorCode: 0x100 + 80, Remote: true}, false},
		{"local-tls-internal-error", &quic.TransportError{ErrorCode: 0x100 + 80, ErrorMessage: "tls: no supported versions satisfy MinVersion and MaxVersion"}, true},
		{"version-negotiation", &quic.VersionNegotiationError{}, true},
		{"dialer-closed", ErrDialerClosed, true},
		{"connection-refused", &quic.TransportError{ErrorCode: quic.ConnectionRefused, Remote: true}, false},
		{"internal-error", &quic.TransportError{ErrorCode: quic.InternalError}, false},
		{"application-error", &quic.ApplicationError{ErrorCode: 7, Remote: true}, false},
		{"idle-timeout", &quic.IdleTimeoutError{}, false},
		{"handshake-timeout", &quic.HandshakeTimeoutError{}, false},
		{"stateless-reset", &quic.StatelessResetError{}, false},
		{"stream-reset", &quic.StreamError{ErrorCode: 1, Remote: true}, false},
		{"0-rtt-rejected", quic.Err0RTTRejected, false},
		{"attempt-timeout", &attempt.TimeoutError{Pkg: "tether/quic", After: time.Second}, false},
		{"eof", io.EOF, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dialError("127.0.0.1:1", tc.err)
			require.Equal(t, "dial quic 127.0.0.1:1: "+tc.err.Error(), err.Error(), "dialError(%v)", tc.err)
			require.ErrorIs(t, err, tc.err)
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, "quic", oe.Net, "the transport of %v", err)
			require.Equal(t, "127.0.0.1:1", oe.Addr.String(), "the address of %v", err)
			require.Equal(t, tc.permanent, tether.IsPermanent(err), "IsPermanent(dialError(%v))", tc.err)
			if !tc.permanent {
				// Passed through by Read and Write: the default policy
				// reconnects.
				require.False(t, tether.IsPermanent(tc.err), "IsPermanent(%v)", tc.err)
			}
		})
	}
}

// TestConfigDefaults: the Dialer's defaults fill zero fields only, on a copy.
func TestConfigDefaults(t *testing.T) {
	c := configWithDefaults(nil)
	require.Equal(t, DefaultMaxIdleTimeout, c.MaxIdleTimeout)
	require.Equal(t, DefaultHandshakeIdleTimeout, c.HandshakeIdleTimeout)
	require.Equal(t, DefaultKeepAlivePeriod, c.KeepAlivePeriod)
	require.LessOrEqual(t, c.KeepAlivePeriod, c.MaxIdleTimeout/2)
	require.NotNil(t, c.TokenStore)

	user := &quic.Config{MaxIdleTimeout: 4 * time.Second, HandshakeIdleTimeout: time.Second, MaxIncomingStreams: 7}
	c = configWithDefaults(user)
	require.Equal(t, &quic.Config{MaxIdleTimeout: 4 * time.Second, HandshakeIdleTimeout: time.Second, MaxIncomingStreams: 7}, user, "the user's Config changed")
	require.Equal(t, 4*time.Second, c.MaxIdleTimeout)
	require.Equal(t, time.Second, c.HandshakeIdleTimeout)
	require.Equal(t, DefaultKeepAlivePeriod, c.KeepAlivePeriod)
	require.EqualValues(t, 7, c.MaxIncomingStreams)
	c = configWithDefaults(&quic.Config{MaxIdleTimeout: time.Second})
	require.Equal(t, time.Second/2, c.KeepAlivePeriod, "at most half the idle timeout")

	c = configWithDefaults(&quic.Config{KeepAlivePeriod: -1})
	require.Zero(t, c.KeepAlivePeriod, "a negative KeepAlivePeriod turns keep-alives off")
	c = configWithDefaults(&quic.Config{KeepAlivePeriod: time.Second})
	require.Equal(t, time.Second, c.KeepAlivePeriod)
}

// TestDialerInit: the TLS clone gets a session cache; the Timeout default.
func TestDialerInit(t *testing.T) {
	user := &tls.Config{NextProtos: []string{"x"}}
	d := &Dialer{TLSConfig: user}
	require.NoError(t, d.init())
	defer d.Close()
	require.NotSame(t, user, d.tls)
	require.NotNil(t, d.tls.ClientSessionCache)
	require.Nil(t, user.ClientSessionCache)
	require.Equal(t, attempt.DefaultTimeout, d.timeout)

	cache := tls.NewLRUClientSessionCache(1)
	d2 := &Dialer{TLSConfig: &tls.Config{NextProtos: []string{"x"}, ClientSessionCache: cache}, Timeout: time.Second}
	require.NoError(t, d2.init())
	defer d2.Close()
	require.Equal(t, cache, d2.tls.ClientSessionCache, "the caller's cache is kept")
	require.Equal(t, time.Second, d2.timeout)
}

// TestCloseUnusedDialer: Close of a Dialer that never dialed, and Dial after.
func TestCloseUnusedDialer(t *testing.T) {
	d := &Dialer{TLSConfig: &tls.Config{NextProtos: []string{"x"}}}
	require.NoError(t, d.Close())
	_, err := d.Dial(context.Background(), "127.0.0.1:1")
	require.ErrorIs(t, err, ErrDialerClosed)
	require.True(t, tether.IsPermanent(err))
}

func TestOriginString(t *testing.T) {
	for o, want := range map[Origin]string{
		NewStream:     "new-stream",
		FullHandshake: "full-handshake",
		Resumed:       "resumed",
		ZeroRTT:       "0-rtt",
		Origin(0):     "origin(0)",
	} {
		require.Equal(t, want, o.String())
	}
}
