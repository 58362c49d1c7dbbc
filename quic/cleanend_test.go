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
	"github.com/io-tether/tether/tethertest"
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
	rec := &tethertest.Recorder{Next: tether.Chain(nil)} // the default policy
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tt, err := tether.Dial(ctx, d, srv.addr, rec)
	require.NoError(t, err)
	t.Cleanup(func() { tt.Close(); d.Close() })
	r := startReader(tt)
	const requests = 8
	for i := range requests {
		send(t, tt, fmt.Sprintf("req %d\n", i))
		r.expect(t, fmt.Sprintf("re: req %d\n", i))
		if i < requests-1 {
			ev := rec.WaitFor(t, tether.Disconnected, i+1)
			require.ErrorIs(t, ev.Err, io.EOF)
			require.Zero(t, ev.Attempt, "request %d: Attempt after a clean end (delay %v)", i, ev.Delay)
			rec.WaitFor(t, tether.Reconnected, i+1)
		}
	}
}
