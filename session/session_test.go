package session_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
)

func TestEcho(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			sl := session.NewListener(tr.listen(t))
			go echo(sl)
			c, closeDialer := tr.dial(t, sl)
			defer closeDialer()
			msg := []byte("hello, session")
			_, err := c.Write(msg)
			require.NoError(t, err)
			got := make([]byte, len(msg))
			_, err = io.ReadFull(c, got)
			require.NoError(t, err)
			require.Equal(t, msg, got)
			require.NoError(t, c.CloseWrite())
			_, err = c.Read(got)
			require.ErrorIs(t, err, io.EOF)
			require.NoError(t, c.Close())
			require.NoError(t, sl.Close())
		})
	}
}

// TestStreamAcrossLoss streams over TCP and over Unix sockets (written
// with writev straight from the send buffer): what arrives is what was
// written, across a loss of the client's transport in the middle. Then
// the client closes, and the server's Close finds the session over: the
// client's close frame counts even when the server's own final frame
// failed to go out (the client had closed its end).
func TestStreamAcrossLoss(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			addr, d := "127.0.0.1:0", tether.Dialer(&tethertcp.Dialer{})
			if network == "unix" {
				addr, d = filepath.Join(t.TempDir(), "s"), &dialers.Unix{}
			}
			ln, err := net.Listen(network, addr)
			require.NoError(t, err)
			sl := session.NewListener(ln)
			defer sl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := session.Dial(ctx, d, ln.Addr().String(), quick())
			require.NoError(t, err)
			s, err := sl.AcceptSession()
			require.NoError(t, err)

			const size = 8 << 20
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i * 7 / 3)
			}
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(s)
				got <- b
			}()
			for i := 0; i < size; i += 32 << 10 {
				if i == size/2 {
					c.Tether().Conn().Close() // the session resumes on a new one
				}
				_, err := c.Write(want[i : i+32<<10])
				require.NoError(t, err)
			}
			require.NoError(t, c.Close())
			b := <-got
			require.Len(t, b, size)
			require.True(t, bytes.Equal(want, b), "the bytes received differ from those written")
			require.NoError(t, s.Close())
		})
	}
}

// TestLazyTLSDialer: a Dialer may return a TLS connection whose handshake
// has not run (tls.Client runs it on the first Read or Write). The
// session runs it before it reads the exporter, which needs it; it used
// to fail every dial with "TLS handshake not complete", and Dial waited
// out its ctx. A handshake that fails is the dial's error, classified as
// it would be from the tls package's Dialer.
func TestLazyTLSDialer(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := session.NewListener(tls.NewListener(ln, tethertest.TLSServerConfig()))
	defer sl.Close()
	go echo(sl)
	lazy := func(cfg *tls.Config) tether.Dialer {
		return tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return tls.Client(c, cfg), nil
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := session.Dial(ctx, lazy(tethertest.TLSClientConfig()), sl.Addr().String(), quick())
	require.NoError(t, err)
	write(t, c, "ping")
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.Equal(t, "ping", string(got), "echo: %v", err)
	require.NoError(t, c.Close())

	untrusting := tethertest.TLSClientConfig()
	untrusting.RootCAs = x509.NewCertPool()
	_, err = session.Dial(ctx, lazy(untrusting), sl.Addr().String(), quick())
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
	require.True(t, tether.IsPermanent(err), "a certificate the client does not trust is permanent: %v", err)
	require.NoError(t, ctx.Err(), "Dial gave up at once")
}

// TestCloseThenTearDown: Close returns once the peer has answered its
// close frame, so that an application may tear the transport down at
// once: a QUIC connection closed right after the session's Close (tcat's
// client closes its Dialer) used to drop the frames still queued on the
// stream, among them the ack of the peer's last bytes, and the peer's
// Close then waited out its linger and reported them unacknowledged. Both
// ends close first in turn; QUIC only, since a TCP connection's close
// sends what its buffer holds.
func TestCloseThenTearDown(t *testing.T) {
	tr := transports[2]
	require.Equal(t, "quic", tr.name)
	for _, first := range []string{"client", "server"} {
		t.Run(first+" closes first", func(t *testing.T) {
			defer goleak.VerifyNone(t)
			sl := session.NewListener(tr.listen(t), session.WithLinger(2*time.Second))
			defer sl.Close()
			c, closeDialer := tr.dial(t, sl, session.WithLinger(2*time.Second))
			defer closeDialer()
			s, err := sl.AcceptSession()
			require.NoError(t, err)
			closer, peer := net.Conn(c), net.Conn(s)
			tearDown := closeDialer
			if first == "server" {
				closer, peer = s, c
				tearDown = func() { sl.Close() } // closes the server's QUIC connections at once
			}
			msg := bytes.Repeat([]byte("x"), 64<<10)
			go peer.Write(msg)
			_, err = io.ReadFull(closer, make([]byte, len(msg)))
			require.NoError(t, err)
			require.NoError(t, closer.Close())
			tearDown()
			start := time.Now()
			require.NoError(t, peer.Close(), "the peer's bytes were read: its Close must know")
			require.Less(t, time.Since(start), time.Second, "the peer's Close waited out its linger")
		})
	}
}

// TestAbort: an end that aborts the session tells its peer at once,
// without waiting for acks: the peer reads what arrived, then an error
// matching ErrPeerAborted, never io.EOF, and its Writes fail; over every
// transport, and from either end.
func TestAbort(t *testing.T) {
	for _, tr := range transports {
		for _, aborter := range []string{"client", "server"} {
			t.Run(tr.name+"/"+aborter, func(t *testing.T) {
				defer goleak.VerifyNone(t)
				sl := session.NewListener(tr.listen(t))
				defer sl.Close()
				c, closeDialer := tr.dial(t, sl)
				defer closeDialer()
				defer c.Close()
				s, err := sl.AcceptSession()
				require.NoError(t, err)
				defer s.Close()
				a, peer := c, s
				if aborter == "server" {
					a, peer = s, c
				}
				_, err = a.Write([]byte("partial re"))
				require.NoError(t, err)
				got := make([]byte, 10)
				_, err = io.ReadFull(peer, got)
				require.NoError(t, err)
				require.NoError(t, a.Abort())
				require.ErrorIs(t, a.Abort(), net.ErrClosed)
				peer.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = peer.Read(got)
				require.ErrorIs(t, err, session.ErrPeerAborted)
				_, err = peer.Write([]byte("x"))
				require.ErrorIs(t, err, session.ErrPeerAborted)
			})
		}
	}
}
