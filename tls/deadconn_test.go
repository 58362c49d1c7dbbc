package tls_test

import (
	"context"
	"crypto/tls"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
	"github.com/io-tether/tether/tethertest/faultproxy"
	tethertls "github.com/io-tether/tether/tls"
)

// frozen returns a Tether over TLS, with a read idle timeout of 300 ms and
// handler h, whose connection goes through a proxy that then stopped
// forwarding it (new connections go through), with its send buffers full:
// its last Write failed at its deadline.
func frozen(t *testing.T, h tether.DisconnectHandler) *tether.Tether {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tethertest.TLSServerConfig())
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hi")
				io.Copy(io.Discard, c)
			}()
		}
	}()
	p, err := faultproxy.New(ln.Addr().String(), 1)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	p.SetSocketBuffers(64 << 10)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt, err := tether.Dial(ctx, &tethertls.Dialer{Config: tethertest.TLSClientConfig()}, p.Addr(), h,
		tether.WithReadIdleTimeout(300*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { tt.Close() })
	_, err = io.ReadFull(tt, make([]byte, 2))
	require.NoError(t, err)

	require.Equal(t, 1, p.Strand())
	require.NoError(t, tt.SetWriteDeadline(time.Now().Add(500*time.Millisecond)))
	chunk := make([]byte, 64<<10)
	for err == nil {
		_, err = tt.Write(chunk)
	}
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, tt.SetWriteDeadline(time.Time{}))
	return tt
}

// A connection that the read watchdog found dead, with its send buffer
// full, is closed at once: crypto/tls's Close would first try to write a
// close_notify alert, for up to 5 s, and the reconnect would wait for it
// (the new connection's greeting came after 5.3 s).
func TestDeadConnectionClosesAtOnce(t *testing.T) {
	rec := &tethertest.Recorder{}
	tt := frozen(t, rec)
	start := time.Now()
	_, err := io.ReadFull(tt, make([]byte, 2))
	require.NoError(t, err)
	took := time.Since(start)
	t.Logf("the greeting of the new connection came %v after the Read began", took)
	require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, rec.Kinds())
	require.ErrorIs(t, rec.Events()[1].Err, tether.ErrIdleTimeout)
	require.Less(t, took, 3*time.Second, "the lost connection's Close held the reconnect")
}

// Close, while the handler decides about such a connection, returns at
// once too.
func TestCloseWhileHandlerHoldsDeadConnection(t *testing.T) {
	deciding := make(chan struct{})
	tt := frozen(t, tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected {
			close(deciding)
			<-ctx.Done() // until Close
			return tether.GiveUp
		}
		return tether.Reconnect
	}))
	go tt.Read(make([]byte, 1)) // the watchdog times this Read
	select {
	case <-deciding:
	case <-time.After(10 * time.Second):
		t.Fatal("no Disconnected within 10 s")
	}
	start := time.Now()
	require.NoError(t, tt.Close())
	require.Less(t, time.Since(start), time.Second)
}
