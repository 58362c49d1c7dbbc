package quic_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
)

// TestReusedTetherCleanEnds: one Tether reused across requests, against a
// server that answers each request on a stream and ends the stream (FIN):
// each clean end after a full exchange is not a flap, so Attempt stays 0 and
// the default policy's backoff never grows.
func TestReusedTetherCleanEnds(t *testing.T) {
	srv := newServer(t, serverOpts{handle: func(s *testServer, c *quic.Conn, st *quic.Stream) {
		req, err := bufio.NewReader(st).ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(st, "re: %s", req)
		st.Close()              // the response ends with the stream
		io.Copy(io.Discard, st) // until the client ends its side
	}})
	d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: steadyConfig()}
	events := make(chan tether.Event, 64)
	h := tether.Chain(nil, func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			events <- *ev
			return next.HandleDisconnect(ctx, ev)
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tt, err := tether.Dial(ctx, d, srv.addr, h)
	require.NoError(t, err)
	t.Cleanup(func() { tt.Close(); d.Close() })
	require.Equal(t, tether.Connected, recv(t, events, "Connected").Kind)
	r := startReader(tt)
	const requests = 8
	for i := range requests {
		send(t, tt, fmt.Sprintf("req %d\n", i))
		r.expect(t, fmt.Sprintf("re: req %d\n", i))
		if i < requests-1 {
			ev := recv(t, events, "Disconnected")
			require.Equal(t, tether.Disconnected, ev.Kind)
			require.ErrorIs(t, ev.Err, io.EOF)
			require.Zero(t, ev.Attempt, "request %d: Attempt after a clean end (delay %v)", i, ev.Delay)
			require.Equal(t, tether.Reconnected, recv(t, events, "Reconnected").Kind)
		}
	}
}
