package quic_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// TestNgtcp2Download: a verified download, then a second request on a new
// stream of the same connection.
func TestNgtcp2Download(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t)
	d := h3Dialer(t, nil)
	require.Equal(t, tetherquic.FullHandshake, srv.fetch(t, d, "/blob"))
	require.Equal(t, tetherquic.NewStream, srv.fetch(t, d, "/small"))
}

// TestNgtcp2ManyStreams: many requests, one Tether each, on one QUIC
// connection: in a row, then 32 at once.
func TestNgtcp2ManyStreams(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t)
	d := h3Dialer(t, nil)
	const sequential, concurrent = 200, 32
	srv.fetch(t, d, "/small")
	start := time.Now()
	for range sequential {
		require.Equal(t, tetherquic.NewStream, srv.fetch(t, d, "/small"))
	}
	elapsed := time.Since(start)

	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	for range concurrent {
		wg.Go(func() {
			rec := transporttest.NewRecorder(nil)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			tt, err := tether.Dial(ctx, d, srv.addr(), rec)
			if err != nil {
				errs <- err
				return
			}
			defer tt.Close()
			x := &exchange{tt: tt, rec: rec}
			status, body, err := x.get("/blob", wait)
			switch {
			case err != nil:
				errs <- err
			case status != 200 || !bytes.Equal(body, srv.files["/blob"]):
				errs <- fmt.Errorf("GET /blob: status %d, %d bytes", status, len(body))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d requests in a row, one Tether each, on one connection: %v (%.0f requests/s)",
		sequential, elapsed, float64(sequential)/elapsed.Seconds())
}

// TestNgtcp2CloseUnused: closing a Tether that never wrote, or one that
// abandons a request half written, leaves the shared connection and the
// other requests on it alone. (A bare FIN on an unused stream is an HTTP/3
// frame error, and a FIN after half a frame a truncated frame: nghttp3
// closes the whole connection for either.)
func TestNgtcp2CloseUnused(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t)
	d := h3Dialer(t, nil)

	// A is mid-request: its HEADERS are sent, its FIN is not.
	a := dialExchange(t, d, srv.addr())
	a.send(t, "/small")

	// B never writes; C abandons half a HEADERS frame.
	b := dialExchange(t, d, srv.addr())
	require.NoError(t, b.tt.Close())
	c := dialExchange(t, d, srv.addr())
	req := h3Get("localhost", "/small")
	_, err := c.tt.Write(req[:len(req)/2])
	require.NoError(t, err)
	require.NoError(t, c.tt.Close())

	// Requests after theirs, on the same connection, are served (the
	// server reads the streams' frames in the order they were sent).
	require.Equal(t, tetherquic.NewStream, srv.fetch(t, d, "/small"))

	// And A completes.
	require.NoError(t, a.tt.SetDeadline(time.Now().Add(wait)))
	require.NoError(t, a.tt.CloseWrite())
	status, body, err := readH3Response(a.tt)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	require.Equal(t, srv.files["/small"], body)
	require.Equal(t, []tether.EventKind{tether.Connected}, a.rec.Kinds(), "A's events: %v", a.rec)
}

// TestNgtcp2StreamCredit: with the server allowing one stream at a time, a
// second Tether's Dial succeeds at once, and its first Write waits for the
// first request to end: waiting for stream credit is not a failed dial.
func TestNgtcp2StreamCredit(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t, "--max-streams-bidi=1")
	d := h3Dialer(t, &quic.Config{})
	d.Timeout = 2 * time.Second // the longest a dial attempt may last
	srv.fetch(t, d, "/small")

	a := dialExchange(t, d, srv.addr())
	a.send(t, "/small") // holds the only stream

	b := dialExchange(t, d, srv.addr())
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		status, body, err := b.get("/small", wait)
		done <- result{status, body, err}
	}()
	// B waits longer than a dial attempt may last, then A ends its
	// request and B's goes through.
	select {
	case r := <-done:
		t.Fatalf("B's request ended while A held the only stream: %d, %v", r.status, r.err)
	case <-time.After(d.Timeout + time.Second):
	}
	require.NoError(t, a.tt.SetDeadline(time.Now().Add(wait)))
	require.NoError(t, a.tt.CloseWrite())
	status, _, err := readH3Response(a.tt)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	require.NoError(t, a.tt.Close())

	r := recv(t, done, "B's response")
	require.NoError(t, r.err)
	require.Equal(t, 200, r.status)
	require.Equal(t, srv.files["/small"], r.body)
	require.Equal(t, []tether.EventKind{tether.Connected}, b.rec.Kinds(), "B's events: %v", b.rec)
}

// TestNgtcp2Restart: after the server was killed (SIGKILL: it says nothing,
// and ngtcp2 sends no stateless reset) and started again on the same port,
// a request made once the Dialer can tell that the old connection no longer
// hears from its server goes on a new connection, not on the dead one.
//
// The restart tests are not parallel, as the others here are: a parallel
// test's socket could take the port while the server is down.
func TestNgtcp2Restart(t *testing.T) {
	srv := startNgtcp2(t)
	d := h3Dialer(t, nil)
	srv.fetch(t, d, "/small")

	srv.restart()
	// Longer than two keep-alive intervals and a few round trips with no
	// answer: the Dialer's test of a connection that no longer hears.
	// (2.6 s on loopback; 4 s leaves room for the round trips of a busy
	// machine, and is still well within the old defaults' 10 to 15 s.)
	time.Sleep(4 * tetherquic.DefaultKeepAlivePeriod)
	start := time.Now()
	o := srv.fetch(t, d, "/blob")
	require.NotEqual(t, tetherquic.NewStream, o, "a stream on the dead connection")
	t.Logf("first request after the restart: %v, %v", o, time.Since(start))
}

// TestNgtcp2RestartFigures: requests go on every 50 ms, each on a Tether of
// its own with a 1 s deadline, while the server is killed and restarted:
// how long until the Dialer notices (its first new connection) and until
// requests succeed again.
func TestNgtcp2RestartFigures(t *testing.T) {
	srv := startNgtcp2(t)
	d := h3Dialer(t, nil)
	srv.fetch(t, d, "/small")

	killed := time.Now()
	srv.restart()
	restarted := time.Now()
	var noticed, recovered time.Time
	lost := 0
	for time.Since(killed) < 3*wait && recovered.IsZero() {
		x := dialExchange(t, d, srv.addr())
		if o := origin(t, x.tt); o != tetherquic.NewStream && noticed.IsZero() {
			noticed = time.Now()
		}
		status, body, err := x.get("/small", time.Second)
		x.tt.Close()
		if err == nil && status == 200 && bytes.Equal(body, srv.files["/small"]) {
			recovered = time.Now()
			break
		}
		lost++
		time.Sleep(50 * time.Millisecond)
	}
	require.False(t, noticed.IsZero(), "the Dialer never dialed a new connection")
	require.False(t, recovered.IsZero(), "no request succeeded after the restart")
	t.Logf("ngtcp2 restarted in %v; new connection %v after the kill; first success %v after the kill; %d requests lost",
		restarted.Sub(killed), noticed.Sub(killed), recovered.Sub(killed), lost)
	// The Dialer's test: two keep-alive intervals, half of one for the
	// sampling, and round trips.
	require.Less(t, noticed.Sub(killed), 3*tetherquic.DefaultKeepAlivePeriod+time.Second)
}

// TestNgtcp2Resumption: a connection that the server's idle timeout ended
// is redialed with the TLS session resumed.
func TestNgtcp2Resumption(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t, "--timeout=1s")
	// No keep-alives, so that the connection idles out; the client's own
	// idle timeout matches the server's (quic-go would read the server's
	// 1 s as 5 s).
	d := h3Dialer(t, &quic.Config{MaxIdleTimeout: time.Second, KeepAlivePeriod: -1})

	x := dialExchange(t, d, srv.addr())
	status, _, err := x.get("/small", wait)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	require.Equal(t, tetherquic.FullHandshake, origin(t, x.tt))
	qc := x.tt.Conn().(*tetherquic.Conn).QUICConn()
	require.NoError(t, x.tt.Close())
	transporttest.WaitClosed(t, qc.Context().Done(), "the idle connection's end")

	start := time.Now()
	require.Equal(t, tetherquic.Resumed, srv.fetch(t, d, "/blob"))
	t.Logf("resumed dial and 1 MiB download: %v", time.Since(start))
}

// TestNgtcp2ShortIdleTimeout: a server whose idle timeout is 2 s (which
// quic-go reads as 5 s) keeps its connection with the Dialer's default
// keep-alives, and a request after a 3 s pause goes through on it.
func TestNgtcp2ShortIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t, "--timeout=2s")
	d := h3Dialer(t, nil)
	srv.fetch(t, d, "/small")
	time.Sleep(3 * time.Second)
	require.Equal(t, tetherquic.NewStream, srv.fetch(t, d, "/small"))
}

// TestNgtcp2DeadServer: a Tether waiting for a response when the server is
// killed notices within the Dialer's defaults (idle timeout, plus at most
// one keep-alive period).
func TestNgtcp2DeadServer(t *testing.T) {
	t.Parallel()
	srv := startNgtcp2(t)
	d := h3Dialer(t, nil)
	x := dialExchange(t, d, srv.addr())
	// The request is never ended: the server waits for its FIN, and the
	// Tether's Read for the response.
	x.send(t, "/small")
	r := startReader(x.tt)
	time.Sleep(200 * time.Millisecond) // the HEADERS are acknowledged

	srv.kill()
	killed := time.Now()
	ev := x.rec.WaitFor(t, tether.Disconnected, 1)
	noticed := time.Since(killed)
	var ie *quic.IdleTimeoutError
	require.ErrorAs(t, ev.Err, &ie, "Disconnected.Err = %v", ev.Err)
	t.Logf("killed ngtcp2 noticed after %v", noticed)
	require.GreaterOrEqual(t, noticed, tetherquic.DefaultMaxIdleTimeout-tetherquic.DefaultKeepAlivePeriod)
	// Seconds of slack for a busy machine's late timers.
	require.Less(t, noticed, tetherquic.DefaultMaxIdleTimeout+tetherquic.DefaultKeepAlivePeriod+3*time.Second)
	x.tt.Close()
	r.end(t)
}
