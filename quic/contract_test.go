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
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tethertest"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// Documented behaviours that no other test pinned (an audit broke each,
// and the suite passed): these fail on those changes.

// Close resets the stream when a Read failed: here the server resets its
// send side only, and the client's Close must not end its own with a FIN.
func TestCloseAfterFailedReadResets(t *testing.T) {
	results := make(chan error, 1)
	srv := newServer(t, serverOpts{handle: func(_ *testServer, _ *quic.Conn, st *quic.Stream) {
		io.ReadFull(st, make([]byte, 3))
		st.CancelWrite(5) // resets the server's send side only
		_, err := io.Copy(io.Discard, st)
		results <- err
	}})
	c := dialConn(t, srv)
	_, err := c.Write([]byte("abc"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 1))
	var se *quic.StreamError
	require.ErrorAs(t, err, &se)
	require.NoError(t, c.Close())
	err = recv(t, results, "the server's read")
	require.ErrorAs(t, err, &se, "the server's read ended with %v: want a reset", err)
}

// Dialer.Close aborts the dials in progress and returns once they have
// ended; they fail with ErrDialerClosed, permanent.
func TestDialerCloseAbortsDial(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // a server that never answers
	require.NoError(t, err)
	defer pc.Close()
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: &quic.Config{HandshakeIdleTimeout: 10 * time.Second}, Timeout: time.Minute}
	errc := make(chan error, 1)
	go func() {
		_, err := d.Dial(context.Background(), pc.LocalAddr().String())
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	require.NoError(t, d.Close())
	require.Less(t, time.Since(start), 5*time.Second)
	// (The dial has ended when Close returns; the goroutine that called
	// Dial takes its error a moment later.)
	err = recv(t, errc, "the dial's error")
	require.True(t, errors.Is(err, tetherquic.ErrDialerClosed), "%v", err)
	require.True(t, tether.IsPermanent(err))
}

// A write deadline set before the first Write binds it (the stream opens
// with it).
func TestWriteDeadlineBeforeFirstWrite(t *testing.T) {
	srv := newServer(t, serverOpts{handle: func(_ *testServer, _ *quic.Conn, st *quic.Stream) {
		<-st.Context().Done() // reads nothing
	}})
	c := dialConn(t, srv)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 64<<20))
		errc <- err
	}()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(wait):
		c.Close()
		t.Fatal("the first Write ignored the write deadline set before it")
	}
}

// The write deadline applies to the first Write's wait for the server to
// allow a stream; moving it later while the Write waits does not fail it.
func TestMoveWriteDeadlineWhileWaitingForStream(t *testing.T) {
	ln, err := tetherquic.Listen("127.0.0.1:0", tethertest.TLSServerConfig(alpn), &quic.Config{MaxIncomingStreams: 1})
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: steadyConfig()}
	defer d.Close()
	c1, err := d.Dial(context.Background(), ln.Addr().String())
	require.NoError(t, err)
	_, err = c1.Write([]byte("1"))
	require.NoError(t, err)
	c2, err := d.Dial(context.Background(), ln.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, c2.SetWriteDeadline(time.Now().Add(time.Hour)))
	errc := make(chan error, 1)
	go func() {
		_, err := c2.Write([]byte("2"))
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, c2.SetWriteDeadline(time.Now().Add(2*time.Hour))) // moved, later
	time.Sleep(200 * time.Millisecond)
	c1.Close() // frees the stream
	select {
	case err := <-errc:
		require.NoError(t, err, "the waiting Write, after its deadline moved")
	case <-time.After(wait):
		t.Fatal("the second Write did not get its stream")
	}
}

// Concurrent Dials to one address share a dial; one whose caller's ctx
// ended abandons it, and the Dial that waited on it dials again, bounded
// by its own ctx, not failing with the other caller's.
func TestSharedDialAbandoned(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // a server that never answers
	require.NoError(t, err)
	defer pc.Close()
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: &quic.Config{HandshakeIdleTimeout: 10 * time.Second}, Timeout: time.Minute}
	defer d.Close()
	addr := pc.LocalAddr().String()
	first := make(chan struct{})
	go func() {
		defer close(first)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		d.Dial(ctx, addr)
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = d.Dial(ctx, addr)
	require.Error(t, err)
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the waiting Dial ended with the other caller's ctx: %v", err)
	<-first
}
