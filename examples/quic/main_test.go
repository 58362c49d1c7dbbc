package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	if raceEnabled {
		t.Skip("quic-go races with itself when a stream opens during a 0-RTT handshake (quic-go issue 4303): .ci/run runs this without -race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	require.NoError(t, run(ctx, &out, 500*time.Millisecond))
	got := regexp.MustCompile(`in \d+\.\d ms`).ReplaceAllString(out.String(), "in T")
	// A crashed server is noticed by the idle timeout, or by a stateless
	// reset if the client happened to send a large enough packet.
	got = regexp.MustCompile(`timeout: no recent network activity|received a stateless reset`).ReplaceAllString(got, "LOST")
	require.Equal(t, `connected (full-handshake) in T: welcome (server run 1, connection 1, stream 1)
sent "message 1", got "echo: message 1"
server: resets the stream
disconnected: stream 0 canceled by remote with error code 1
reconnected (new-stream) in T: welcome (server run 1, connection 1, stream 2)
sent "message 2", got "echo: message 2"
server: closes the connection
disconnected: Application error 0x0 (remote): closing
reconnected (0-rtt) in T: welcome (server run 1, connection 2, stream 1)
sent "message 3", got "echo: message 3"
server: crashes and restarts, keeping its session ticket keys
disconnected: LOST
reconnected (0-rtt) in T: welcome (server run 2, connection 1, stream 1)
sent "message 4", got "echo: message 4"
server: crashes and restarts with new session ticket keys (0-RTT will be rejected)
disconnected: LOST
reconnected (full-handshake) in T: welcome (server run 3, connection 1, stream 1)
sent "message 5", got "echo: message 5"
`, got)
}
