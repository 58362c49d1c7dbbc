package quic_test

import (
	"bufio"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// TestSmallWritesDeadServer: a client that only writes small lines, one
// every 50 ms, to a server that vanishes without a word (no stateless
// reset, as from ngtcp2): its Writes return nil until the Dialer's default
// idle timeout ends the connection, and what they wrote since the server's
// last acknowledgement is lost. The figures (time to notice, lines lost)
// are what the package documentation states.
func TestSmallWritesDeadServer(t *testing.T) {
	var received atomic.Int64
	srv := newServer(t, serverOpts{handle: func(s *testServer, c *quic.Conn, st *quic.Stream) {
		sc := bufio.NewScanner(st)
		for sc.Scan() {
			received.Add(1)
		}
	}})
	d := &tetherquic.Dialer{TLSConfig: clientTLS()} // the defaults
	tt, rec := dialTether(t, d, srv.addr)

	const every = 50 * time.Millisecond
	written := 0
	write := func() error {
		// Once the loss is noticed, a Write waits for a reconnect that
		// cannot come: the deadline ends it.
		tt.SetWriteDeadline(time.Now().Add(every))
		_, err := fmt.Fprintf(tt, "line %04d\n", written)
		if err == nil {
			written++
		}
		return err
	}
	for range 20 {
		require.NoError(t, write())
		time.Sleep(every)
	}
	require.Eventually(t, func() bool { return received.Load() == int64(written) }, wait, 10*time.Millisecond)

	srv.crash()
	crashed := time.Now()
	before := written
	var noticed time.Duration
	for noticed == 0 {
		if time.Since(crashed) > 3*tetherquic.DefaultMaxIdleTimeout {
			t.Fatalf("the loss was not noticed within %v", 3*tetherquic.DefaultMaxIdleTimeout)
		}
		write()
		ctx, cancel := context.WithTimeout(context.Background(), every)
		if _, err := rec.Wait(ctx, tether.Disconnected, 1); err == nil {
			noticed = time.Since(crashed)
		}
		cancel()
	}
	lost := written - before
	t.Logf("dead server noticed after %v; %d lines written after its death, every one lost (Write returned nil)", noticed, lost)
	// Seconds of slack for a busy machine's late timers.
	require.Less(t, noticed, tetherquic.DefaultMaxIdleTimeout+tetherquic.DefaultKeepAlivePeriod+3*time.Second)
	require.Positive(t, lost)
}
