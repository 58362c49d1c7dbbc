package quic_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tethertest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// TestNilDialer: a nil *Dialer is an error from Dial (permanent, so a
// Tether gives up at once: see TestDialErrors) and from Close, never a
// panic.
func TestNilDialer(t *testing.T) {
	var d *tetherquic.Dialer
	require.EqualError(t, d.Close(), "tether/quic: nil *Dialer")

	tt, err := tether.Dial(context.Background(), d, "127.0.0.1:1", nil)
	require.Nil(t, tt)
	require.ErrorContains(t, err, "tether/quic: nil *Dialer")
}

// TestZeroConn: the zero Conn, and a nil one, return errors, never panic.
func TestZeroConn(t *testing.T) {
	for name, c := range map[string]*tetherquic.Conn{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Read(make([]byte, 1))
			require.Error(t, err)
			_, err = c.Write([]byte("x"))
			require.Error(t, err)
			require.Error(t, c.CloseWrite())
			require.Error(t, c.SetDeadline(time.Now()))
			require.Error(t, c.Close())
			require.Nil(t, c.LocalAddr())
			require.Nil(t, c.RemoteAddr())
			require.Nil(t, c.Stream())
			require.Nil(t, c.QUICConn())
			require.Zero(t, c.Origin())
			require.Zero(t, c.ConnectionState())
		})
	}
}

// TestUnusedTetherOpensNoStream: a Tether closed before it wrote sends the
// server nothing; the stream of the next one is the first the server sees.
func TestUnusedTetherOpensNoStream(t *testing.T) {
	srv := newServer(t, serverOpts{})
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: heldConfig()}
	t.Cleanup(func() { d.Close() })
	unused, _ := dialTether(t, d, srv.addr)
	require.NoError(t, unused.Close())

	tt, _, _ := dialEchoed(t, d, srv.addr)
	require.EqualValues(t, 1, srv.streams.Load(), "streams the server accepted")
	require.Zero(t, tt.Conn().(*tetherquic.Conn).Stream().StreamID(), "the first stream's ID")
}

// TestErrorCodes: the Dialer's codes go in the frames that end what it
// abandons: RESET_STREAM and STOP_SENDING for a stream closed in the middle
// of a request (ResetOnClose), CONNECTION_CLOSE on Close.
func TestErrorCodes(t *testing.T) {
	type seen struct{ read, write error }
	streams := make(chan seen, 1)
	srv := newServer(t, serverOpts{handle: func(s *testServer, c *quic.Conn, st *quic.Stream) {
		_, rerr, werr := readThenFlood(st)
		streams <- seen{rerr, werr}
	}})
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: heldConfig(),
		StreamErrorCode: 0x10c, ResetOnClose: true, ConnErrorCode: 0x100}
	tt, _ := dialTether(t, d, srv.addr)
	send(t, tt, "half a request")
	got := recv(t, srv.accepts(t), "the server's connection")
	require.NoError(t, tt.Close())

	s := recv(t, streams, "the server's stream")
	var se *quic.StreamError
	require.ErrorAs(t, s.read, &se, "server Read: %v, want a RESET_STREAM", s.read)
	require.Equal(t, quic.StreamErrorCode(0x10c), se.ErrorCode, "RESET_STREAM code")
	require.ErrorAs(t, s.write, &se, "server Write: %v, want a STOP_SENDING", s.write)
	require.Equal(t, quic.StreamErrorCode(0x10c), se.ErrorCode, "STOP_SENDING code")

	require.NoError(t, d.Close())
	transporttest.WaitClosed(t, got.Context().Done(), "the server's connection after Dialer.Close")
	var ae *quic.ApplicationError
	require.ErrorAs(t, context.Cause(got.Context()), &ae)
	require.Equal(t, quic.ApplicationErrorCode(0x100), ae.ErrorCode, "CONNECTION_CLOSE code")
	require.True(t, ae.Remote)
}

// accepts returns the server's first accepted connection, once there is
// one, on a channel.
func (s *testServer) accepts(t *testing.T) <-chan *quic.Conn {
	ch := make(chan *quic.Conn, 1)
	go func() {
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			s.mu.Lock()
			if len(s.accepted) > 0 {
				ch <- s.accepted[0]
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return ch
}

// TestWatchdogRedials: when the read watchdog finds a server silent (here
// it crashed and came back on the same port, with no stateless reset), the
// Tether's redial makes a new QUIC connection, instead of putting a new
// stream on the dead one until its idle timeout.
func TestWatchdogRedials(t *testing.T) {
	ticker := func(s *testServer, c *quic.Conn, st *quic.Stream) {
		if _, err := io.ReadFull(st, make([]byte, 3)); err != nil { // the hello
			return
		}
		for {
			if _, err := io.WriteString(st, "tick\n"); err != nil {
				return
			}
			select {
			case <-st.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	o := serverOpts{tls: tethertest.TLSServerConfig(alpn), handle: ticker}
	srv := newServer(t, o)
	// A long idle timeout: only the watchdog can notice.
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: &quic.Config{
		MaxIdleTimeout: time.Minute, KeepAlivePeriod: 100 * time.Millisecond, HandshakeIdleTimeout: wait}}
	hello := tether.WithOnConnect(func(_ context.Context, c net.Conn) error {
		_, err := io.WriteString(c, "hi\n")
		return err
	})
	tt, rec := dialTether(t, d, srv.addr, hello, tether.WithReadIdleTimeout(300*time.Millisecond))
	r := startReader(tt)
	r.until(t, "tick\n")

	srv.restart(o)
	ev := rec.WaitFor(t, tether.Disconnected, 1)
	require.True(t, errors.Is(ev.Err, tether.ErrIdleTimeout), "Disconnected.Err = %v, want the watchdog's", ev.Err)
	ev = rec.WaitFor(t, tether.Reconnected, 1)
	c := ev.Conn.(*tetherquic.Conn)
	require.NotEqual(t, tetherquic.NewStream, c.Origin(), "the redial after the watchdog put a stream on the dead connection")
	r.until(t, "tick\n")
	require.Equal(t, 1, rec.Count(tether.Disconnected), "another loss: %v", rec)
}

// TestPollingKeepsConnection: a read deadline that passes (polling) is no
// sign of a dead server once bytes are read again: the next Tether's stream
// goes on the same connection.
func TestPollingKeepsConnection(t *testing.T) {
	srv := newServer(t, serverOpts{})
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: steadyConfig()}
	tt, _ := dialTether(t, d, srv.addr)
	send(t, tt, "x")
	buf := make([]byte, 1)
	_, err := tt.Read(buf) // the echo
	require.NoError(t, err)
	require.NoError(t, tt.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = tt.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "a poll with nothing to read")
	require.NoError(t, tt.SetReadDeadline(time.Time{}))
	send(t, tt, "y")
	_, err = tt.Read(buf)
	require.NoError(t, err)
	require.NoError(t, tt.Close())

	next, _ := dialTether(t, d, srv.addr)
	require.Equal(t, tetherquic.NewStream, origin(t, next))
}
