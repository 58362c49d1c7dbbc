package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// proxiedPair is a session whose client reaches the listener through a
// fault proxy.
type proxiedPair struct {
	ln   net.Listener
	sl   *session.Listener
	p    *faultproxy.Proxy
	c, s *session.Conn
}

func newProxiedPair(t *testing.T, sopts []session.Option, copts ...session.Option) *proxiedPair {
	return newProxiedPairWith(t, quick(), sopts, copts...)
}

// newProxiedPairWith is newProxiedPair with the client's handler h.
func newProxiedPairWith(t *testing.T, h tether.DisconnectHandler, sopts []session.Option, copts ...session.Option) *proxiedPair {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := session.NewListener(ln, sopts...)
	p, err := faultproxy.New(ln.Addr().String(), 1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, &tethertcp.Dialer{Timeout: time.Second}, p.Addr(), h, copts...)
	require.NoError(t, err)
	s, err := sl.AcceptSession()
	require.NoError(t, err)
	return &proxiedPair{ln, sl, p, c, s}
}

func (pp *proxiedPair) close() {
	pp.c.Close()
	pp.s.Close()
	pp.sl.Close()
	pp.p.Close()
}

// readAll reads c until an error, within 10 s.
func readAll(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// waitAcked waits, within 10 s, until the peer has acknowledged every byte
// written to c.
func waitAcked(t *testing.T, c *session.Conn) {
	t.Helper()
	require.Eventually(t, func() bool { return session.Acked(c) }, 10*time.Second, time.Millisecond, "bytes unacknowledged")
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_, err := c.Write([]byte(s))
	require.NoError(t, err)
}

// waitState waits until c is in state s.
func waitState(t *testing.T, c *session.Conn, s tether.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for st := c.State(); st != s; st = c.State() {
		require.True(t, c.WaitForStateChange(ctx, st), "state %v, want %v", st, s)
	}
}

// waitNotReady waits until c has seen its transport fail.
func waitNotReady(t *testing.T, c *session.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for c.State() == tether.Ready {
		require.True(t, c.WaitForStateChange(ctx, tether.Ready), "still ready")
	}
}

// A server that restarted has forgotten the session: the client reads
// what it had received, then ErrSessionLost; it does not start a new
// stream.
func TestSessionLostAfterRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, nil)
	defer pp.close()
	write(t, pp.s, "received before the crash")
	waitState(t, pp.c, tether.Ready)
	waitAcked(t, pp.s) // the bytes are in the client's buffer

	// The crash: the transport dies, the server and its sessions vanish
	// without a word, and a new server comes up on the same port.
	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
	pp.p.ResetAll()
	waitState(t, pp.s, tether.Connecting)
	addr := pp.ln.Addr().String()
	pp.sl.Close()
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	sl2 := session.NewListener(ln2)
	defer sl2.Close()
	require.NoError(t, pp.p.SetMode(faultproxy.ModeForward))

	got, err := readAll(t, pp.c)
	require.Equal(t, "received before the crash", got)
	require.ErrorIs(t, err, session.ErrSessionLost)
	require.ErrorContains(t, err, "tether/session: handshake with "+pp.p.Addr()+": session lost: the server does not know the session")
	_, err = pp.c.Write([]byte("x"))
	require.ErrorIs(t, err, session.ErrSessionLost)
	require.Equal(t, tether.Shutdown, pp.c.State())
	require.Zero(t, sl2.Len(), "the client must not open a new session")
}

// A session detached for longer than its lifetime ends on both sides.
func TestDetachedLifetime(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, []session.Option{session.WithDetachedLifetime(300 * time.Millisecond)})
	defer pp.close()
	write(t, pp.c, "to the server")
	write(t, pp.s, "to the client")
	waitAcked(t, pp.c)
	waitAcked(t, pp.s)
	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
	pp.p.ResetAll()

	// The server's end: what it received, then ErrSessionLost.
	got, err := readAll(t, pp.s)
	require.Equal(t, "to the server", got)
	require.ErrorIs(t, err, session.ErrSessionLost)
	// (The session leaves the Listener just after its Read wakes.)
	require.Eventually(t, func() bool { return pp.sl.Len() == 0 }, 10*time.Second, time.Millisecond, "the Listener still holds the session")

	// The client comes back to a server that forgot the session.
	require.NoError(t, pp.p.SetMode(faultproxy.ModeForward))
	got, err = readAll(t, pp.c)
	require.Equal(t, "to the client", got)
	require.ErrorIs(t, err, session.ErrSessionLost)
}

// Listener.Close ends every session at once: its clients read what they
// had received, then ErrSessionLost.
func TestListenerCloseEndsSessions(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, nil)
	defer pp.close()
	write(t, pp.s, "last words")
	waitAcked(t, pp.s) // Listener.Close's close frame goes before bytes not sent
	start := time.Now()
	require.NoError(t, pp.sl.Close())
	require.Less(t, time.Since(start), time.Second, "Listener.Close must not wait")
	got, err := readAll(t, pp.c)
	require.Equal(t, "last words", got)
	require.ErrorIs(t, err, session.ErrSessionLost)
	_, err = pp.s.Write([]byte("x"))
	require.ErrorIs(t, err, session.ErrSessionLost)
	_, err = pp.sl.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}

// Listener.Close does not wait for sessions that cannot send a close
// frame (detached ones): one short wait serves them all.
func TestListenerCloseWithDetachedSessions(t *testing.T) {
	defer goleak.VerifyNone(t)
	sl := session.NewListener(listen(t))
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil)
		cancel()
		require.NoError(t, err)
		s, err := sl.AcceptSession()
		require.NoError(t, err)
		c.Tether().Close() // the client goes away without a close frame
		waitNotReady(t, s)
		c.Close()
	}
	start := time.Now()
	require.NoError(t, sl.Close())
	require.Less(t, time.Since(start), 3*time.Second, "the detached lifetime is 5 min")
}

// Close sends everything and waits for the acks, across a reconnect.
func TestCloseLingers(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, nil)
	defer pp.close()
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	// Every connection is cut after 1 MiB: the bytes need several.
	pp.p.SetShape(faultproxy.Shape{CutAfter: 1 << 20})
	_, err := pp.c.Write(big)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- pp.c.Close() }()
	got, err := io.ReadAll(pp.s)
	require.NoError(t, err)
	require.Equal(t, len(big), len(got))
	require.Equal(t, -1, firstDiff(big, got))
	require.NoError(t, <-errc)
	require.GreaterOrEqual(t, pp.p.Stats().Cuts, 2)
}

// Close gives up after the linger time when the peer cannot be reached,
// and says so.
func TestCloseLingerTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, []session.Option{session.WithLinger(300 * time.Millisecond)}, session.WithLinger(300*time.Millisecond))
	defer pp.close()
	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
	pp.p.ResetAll()
	waitNotReady(t, pp.c)
	write(t, pp.c, "never acknowledged")
	start := time.Now()
	err := pp.c.Close()
	require.ErrorContains(t, err, "(18 bytes unacknowledged after the linger time, 300ms)")
	require.Less(t, time.Since(start), 2*time.Second)
	_, err = pp.c.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
}

// A peer frozen behind a live connection (the proxy keeps it open and
// forwards nothing): the keep-alive drops the transport, even while the
// sender is stuck writing to it, and the session resumes on a new one.
func TestFrozenPeer(t *testing.T) {
	defer goleak.VerifyNone(t)
	ka := session.WithKeepAlive(100*time.Millisecond, 200*time.Millisecond)
	pp := newProxiedPair(t, []session.Option{ka}, ka)
	defer pp.close()
	// Small buffers, so that the sender is stuck in a write soon after the
	// strand; not below loopback's 64 KiB segments (see SetSocketBuffers).
	pp.p.SetSocketBuffers(64 << 10)
	pp.p.ResetAll() // new connections get the small buffers
	waitState(t, pp.c, tether.Ready)

	big := make([]byte, 12<<20)
	for i := range big {
		big[i] = byte(i * 13)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := pp.c.Write(big)
		if err == nil {
			err = pp.c.CloseWrite()
		}
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, 1, pp.p.Strand())
	start := time.Now()
	got, err := readAll(t, pp.s)
	t.Logf("the stream went through in %v after the strand", time.Since(start).Round(time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, len(big), len(got))
	if i := firstDiff(big, []byte(got)); i >= 0 {
		t.Fatalf("byte %d differs: got %#x, want %#x", i, got[i], big[i])
	}
	require.NoError(t, <-errc)
}

// The keep-alive's drop of a frozen transport reaches the handler as what
// it is: a Disconnected whose error names the keep-alive and matches
// tether.ErrIdleTimeout, not the closed connection the Tether found.
func TestKeepAliveDropNamed(t *testing.T) {
	defer goleak.VerifyNone(t)
	// A drop after 0.6 s of silence: far longer than a pong takes on a busy
	// machine, so that only the strand drops the transport.
	ka := session.WithKeepAlive(100*time.Millisecond, 500*time.Millisecond)
	rec := &tethertest.Recorder{Next: quick()}
	pp := newProxiedPairWith(t, rec, []session.Option{ka}, ka)
	defer pp.close()
	c, s, p := pp.c, pp.s, pp.p

	require.Equal(t, 1, p.Strand())
	ev := rec.WaitFor(t, tether.Disconnected, 1)
	require.ErrorIs(t, ev.Err, tether.ErrIdleTimeout)
	require.ErrorContains(t, ev.Err, "keep-alive: nothing received from the peer in")
	require.NotErrorIs(t, ev.Err, net.ErrClosed)
	require.False(t, tether.IsPermanent(ev.Err))
	// The session resumes on a new transport, and the next loss, a reset
	// (no keep-alive), keeps its own error.
	write(t, c, "after")
	got := make([]byte, 5)
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadFull(s, got)
	require.NoError(t, err)
	require.Equal(t, "after", string(got))
	p.ResetAll()
	ev = rec.WaitFor(t, tether.Disconnected, 2)
	require.NotErrorIs(t, ev.Err, tether.ErrIdleTimeout)
}

// The server's liveness check sleeps while its session is detached, and
// wakes again with the resume: a client that freezes after a resume is
// still found out, by the server alone.
func TestServerKeepAliveAfterResume(t *testing.T) {
	defer goleak.VerifyNone(t)
	var log bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pp := newProxiedPair(t, []session.Option{session.WithKeepAlive(100*time.Millisecond, 300*time.Millisecond), session.WithLogger(logger)},
		session.WithKeepAlive(time.Hour, time.Hour)) // the client never drops the transport itself
	defer pp.close()
	waitState(t, pp.s, tether.Ready)
	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
	pp.p.ResetAll()
	waitNotReady(t, pp.s) // detached
	// Past the check's period (0.4 s), so that it finds the session
	// detached and sleeps.
	time.Sleep(time.Second)
	require.NoError(t, pp.p.SetMode(faultproxy.ModeForward))
	waitState(t, pp.s, tether.Ready) // resumed
	roundTrip := func(msg string) {
		write(t, pp.c, msg)
		got := make([]byte, len(msg))
		pp.s.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadFull(pp.s, got)
		require.NoError(t, err)
		require.Equal(t, msg, string(got))
	}
	roundTrip("resumed")
	require.Equal(t, 1, pp.p.Strand())
	waitNotReady(t, pp.s)
	require.Equal(t, tether.Ready, pp.c.State(), "the client did not drop the transport")
	mu.Lock()
	logged := log.String()
	mu.Unlock()
	require.Contains(t, logged, `msg="tether/session: transport dropped by the keep-alive"`, "the server's log says why")
	pp.p.ResetAll() // the client hears of it, and resumes
	waitState(t, pp.s, tether.Ready)
	roundTrip("resumed again")
}

// firstDiff returns the index of the first byte where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// The states of both ends through a loss and a resume, and at the end.
func TestStates(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, nil)
	defer pp.close()
	waitState(t, pp.c, tether.Ready)
	waitState(t, pp.s, tether.Ready)
	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
	pp.p.ResetAll()
	waitNotReady(t, pp.c)
	waitState(t, pp.s, tether.Connecting) // waiting for the client to resume
	require.NoError(t, pp.p.SetMode(faultproxy.ModeForward))
	waitState(t, pp.c, tether.Ready)
	waitState(t, pp.s, tether.Ready)
	write(t, pp.c, "after")
	got := make([]byte, 5)
	_, err := io.ReadFull(pp.s, got)
	require.NoError(t, err)
	require.NoError(t, pp.c.Close())
	require.Equal(t, tether.Shutdown, pp.c.State())
	waitState(t, pp.s, tether.Shutdown) // the client said the session is over
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.True(t, pp.c.WaitForStateChange(ctx, tether.Ready))
	require.False(t, pp.c.WaitForStateChange(ctx, tether.Shutdown))
}

// A new session that the application has not accepted yet still resumes,
// and does not hold a handshake slot.
func TestResumeBeforeAccept(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := session.NewListener(ln, session.WithMaxHandshakes(1))
	defer sl.Close()
	p, err := faultproxy.New(ln.Addr().String(), 1)
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, &tethertcp.Dialer{}, p.Addr(), quick(), session.WithLinger(0))
	require.NoError(t, err)
	defer c.Close()
	write(t, c, "one ")
	p.ResetAll()
	waitNotReady(t, c)
	waitState(t, c, tether.Ready) // resumed, though nobody accepted the session
	write(t, c, "two")
	s, err := sl.Accept()
	require.NoError(t, err)
	defer s.Close()
	got := make([]byte, 7)
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadFull(s, got)
	require.NoError(t, err)
	require.Equal(t, "one two", string(got))
}

// TestListenerCloseTellsClients: Listener.Close tells every attached
// client, over every transport: the client reads what it had, then
// ErrSessionLost, at once. Over QUIC the inner listener, closed first,
// closed its connections with the close frames still queued: the client
// went on redialling the dead address.
func TestListenerCloseTellsClients(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			sl := session.NewListener(tr.listen(t))
			c, closeDialer := tr.dial(t, sl)
			defer closeDialer()
			defer c.Close()
			s, err := sl.AcceptSession()
			require.NoError(t, err)
			write(t, s, "last words")
			_, err = io.ReadFull(c, make([]byte, 10))
			require.NoError(t, err)
			start := time.Now()
			require.NoError(t, sl.Close())
			got, err := readAll(t, c)
			require.Empty(t, got)
			require.ErrorIs(t, err, session.ErrSessionLost)
			require.Less(t, time.Since(start), time.Second, "the client learned it from the close frame")
		})
	}
}

// TestCloseFrameResentAfterResume: a close frame lost with its transport
// goes again on the next one. The client's transport is stranded just
// before its Close sends the frame, then reset: the client resumes, sends
// the frame again, and the server's session ends as closed by its peer,
// not kept detached for its lifetime (its Writes would then fail with
// ErrSessionLost, minutes later). Close waits for the answer across the
// resume, within its linger time, however long the answer wait alone
// would be.
func TestCloseFrameResentAfterResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		down time.Duration // how long the server refuses the resume
	}{{"quick resume", 0}, {"slow resume", 300 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			pp := newProxiedPair(t, []session.Option{session.WithDetachedLifetime(time.Minute)})
			defer pp.close()
			write(t, pp.c, "hello")
			_, err := io.ReadFull(pp.s, make([]byte, 5))
			require.NoError(t, err)
			require.NoError(t, pp.c.CloseWrite())
			got, err := readAll(t, pp.s) // the client's FIN: acknowledged at once
			require.Empty(t, got)
			require.NoError(t, err)
			time.Sleep(50 * time.Millisecond) // the ack of the FIN reaches the client
			pp.p.Strand()                     // the close frame goes nowhere
			closed := make(chan error, 1)
			go func() { closed <- pp.c.Close() }()
			time.Sleep(10 * time.Millisecond) // Close writes the frame into the strand
			if tc.down > 0 {
				require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
				time.AfterFunc(tc.down, func() { pp.p.SetMode(faultproxy.ModeForward) })
			}
			pp.p.ResetAll()
			require.NoError(t, <-closed)
			_, err = pp.s.Write([]byte("x"))
			require.ErrorIs(t, err, session.ErrPeerClosed, "the server's session did not learn of the close")
		})
	}
}

// TestCloseReportsFinalFrameUnacknowledged: every byte acknowledged, then
// the path goes down for longer than the linger, with or without
// CloseWrite first: the final frame never reaches the peer, whose Read
// waits and then ends with the loss of the session, not io.EOF. Close
// says so. (It returned nil: only bytes counted.)
func TestCloseReportsFinalFrameUnacknowledged(t *testing.T) {
	for _, closeWrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("closewrite=%v", closeWrite), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			pp := newProxiedPair(t, []session.Option{session.WithLinger(0)}, session.WithLinger(300*time.Millisecond))
			defer pp.close()
			write(t, pp.c, "hello")
			_, err := io.ReadFull(pp.s, make([]byte, 5))
			require.NoError(t, err)
			waitAcked(t, pp.c)
			require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse))
			pp.p.ResetAll()
			if closeWrite {
				require.NoError(t, pp.c.CloseWrite())
			}
			err = pp.c.Close()
			require.ErrorContains(t, err, "final frame unacknowledged")
			require.False(t, session.FinAcked(pp.c))
		})
	}
}

// TestCloseAfterPeerListenerClose: every byte acknowledged, then the
// server's Listener.Close ends the session: the client's Close returns nil,
// as after the peer's own Close. The peer ended the session; no final frame
// of this end's was due. (It reported the final frame unacknowledged: a
// client whose Close crossed a server's graceful shutdown failed, though
// the server had read everything, io.EOF included.)
func TestCloseAfterPeerListenerClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, nil)
	defer pp.close()
	write(t, pp.c, "hello")
	_, err := io.ReadFull(pp.s, make([]byte, 5))
	require.NoError(t, err)
	waitAcked(t, pp.c)
	require.NoError(t, pp.sl.Close())
	waitState(t, pp.c, tether.Shutdown)
	require.NoError(t, pp.c.Close())
}

// TestCloseLingerZero: WithLinger(0) makes Close return at once, the wait
// for the peer's answer to the close frame included: here a peer that
// cannot answer, on a path whose round trip (300 ms) makes the answer
// wait its longest, 1 s.
func TestCloseLingerZero(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, []session.Option{session.WithLinger(0)}, session.WithLinger(0))
	defer pp.close()
	pp.p.SetShape(faultproxy.Shape{Delay: 150 * time.Millisecond})
	write(t, pp.c, "hello")
	_, err := io.ReadFull(pp.s, make([]byte, 5))
	require.NoError(t, err)
	time.Sleep(600 * time.Millisecond) // the ack comes back: a round trip measured
	pp.p.Strand()
	start := time.Now()
	require.NoError(t, pp.c.Close())
	require.Less(t, time.Since(start), 500*time.Millisecond)
}

// TestCloseLingerErrorIsOurs: a Close whose linger passed with bytes the
// peer had not taken reports them, and not the peer's close: the peer's
// answer to this end's close frame ends the session, which this end
// closed.
func TestCloseLingerErrorIsOurs(t *testing.T) {
	defer goleak.VerifyNone(t)
	pp := newProxiedPair(t, []session.Option{session.WithBufferSize(64 << 10)}, session.WithLinger(200*time.Millisecond))
	defer pp.close()
	_, err := pp.c.Write(make([]byte, 256<<10)) // the server reads none: its window closes
	require.NoError(t, err)
	err = pp.c.Close()
	require.ErrorContains(t, err, "bytes unacknowledged")
	require.NotErrorIs(t, err, session.ErrPeerClosed)
}

// lateListener hands out connections whose Writes wait 50 ms, and 100 ms
// more for a close frame: a sender that a loaded machine leaves without a
// CPU as it is about to write one. (The client measures a round trip of
// 50 ms, and waits four for the answer to its close frame: longer than
// the server's answer wait, 50 ms, which measured none.) A close frame
// (0x06, then its reason) ends the batch that carries it.
type lateListener struct {
	net.Listener
	once    sync.Once
	writing chan struct{} // closed as the first close frame waits
}

func (l *lateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return lateConn{c, l}, nil
}

type lateConn struct {
	net.Conn
	l *lateListener
}

func (c lateConn) Write(p []byte) (int, error) {
	time.Sleep(50 * time.Millisecond)
	if n := len(p); n >= 2 && p[n-2] == 0x06 && p[n-1] <= 1 {
		c.l.once.Do(func() { close(c.l.writing) })
		time.Sleep(100 * time.Millisecond)
	}
	return c.Conn.Write(p)
}

// TestCloseAnswerWrittenLate: a server whose sender is slow to write its
// close frame still sends it before it closes the transport, whether it
// answers the client's close frame or closed at the same time. It used to
// end the session at once when its own close frame was queued but not yet
// written, and give an answer a few round trips (50 ms here) to be
// written: the transport then closed without the frame, the client's
// Tether reconnected, and its Close, which waits for the answer across a
// resume, waited out its linger, the server gone (tcat -session's
// listener exits with its session: the pipe took 5 s to end on a loaded
// machine).
func TestCloseAnswerWrittenLate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		serverFirst bool // the server closes, then the client, as the server writes its frame
	}{
		{"server answers", false},
		{"both close", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ll := &lateListener{Listener: ln, writing: make(chan struct{})}
			sl := session.NewListener(ll)
			defer sl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			const linger = 3 * time.Second
			// The client reconnects after 500 ms (tcat's after 100 ms,
			// middleware.Backoff's first delay): the server has closed
			// its Listener by then.
			slowly := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
				if tether.IsPermanent(ev.Err) {
					return tether.GiveUp
				}
				ev.Delay = 500 * time.Millisecond
				return tether.Reconnect
			})
			c, err := session.Dial(ctx, &tethertcp.Dialer{Timeout: time.Second}, ln.Addr().String(), slowly, session.WithLinger(linger))
			require.NoError(t, err)
			s, err := sl.AcceptSession()
			require.NoError(t, err)
			write(t, c, "hello")
			_, err = io.ReadFull(s, make([]byte, 5))
			require.NoError(t, err)

			if tc.serverFirst {
				// The server acknowledges the client's final frame before
				// it closes: the client's Close sends its close frame at
				// once, as the server's waits to be written.
				require.NoError(t, c.CloseWrite())
			}
			// As tcat does, the server closes the Listener once its
			// session has ended: the client cannot resume after that.
			served := make(chan error, 1)
			go func() {
				if tc.serverFirst {
					if _, err := io.ReadAll(s); err != nil {
						served <- err
						return
					}
				} else {
					// The client's close frame ends the session.
					for st := s.State(); st != tether.Shutdown; st = s.State() {
						if !s.WaitForStateChange(ctx, st) {
							served <- fmt.Errorf("the server's session did not end: %w", ctx.Err())
							return
						}
					}
				}
				err := s.Close()
				sl.Close()
				served <- err
			}()
			if tc.serverFirst {
				select {
				case <-ll.writing:
				case <-ctx.Done():
					t.Fatal("the server wrote no close frame")
				}
			}
			start := time.Now()
			require.NoError(t, c.Close())
			require.Less(t, time.Since(start), linger/2, "the client's Close waited out its linger for the server's close frame")
			require.NoError(t, <-served)
		})
	}
}

// TestCloseDuringOutageTellsServer: a client that Closes while its transport
// is down (its sender's last write failed), its final frame acknowledged
// already, queues its close frame all the same; the resume within the
// linger time sends it (PROTOCOL.md 4.3), and the server learns that the
// session is over instead of keeping it detached for its lifetime.
func TestCloseDuringOutageTellsServer(t *testing.T) {
	pp := newProxiedPair(t, []session.Option{session.WithDetachedLifetime(time.Minute)},
		session.WithKeepAlive(30*time.Millisecond, 10*time.Second), session.WithLinger(3*time.Second))
	defer pp.close()
	write(t, pp.c, "hello")
	require.NoError(t, pp.c.CloseWrite())
	got, err := readAll(t, pp.s)
	require.NoError(t, err)
	require.Equal(t, "hello", got)
	require.Eventually(t, func() bool { return session.FinAcked(pp.c) }, 10*time.Second, time.Millisecond)

	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse)) // the server unreachable for 300 ms
	pp.p.ResetAll()
	require.Eventually(t, func() bool { return session.SenderBlocked(pp.c) }, 10*time.Second, time.Millisecond) // a ping failed
	time.AfterFunc(300*time.Millisecond, func() { pp.p.SetMode(faultproxy.ModeForward) })
	require.NoError(t, pp.c.Close())
	require.Eventually(t, func() bool {
		_, err := pp.s.Write([]byte("x"))
		return errors.Is(err, session.ErrPeerClosed)
	}, 10*time.Second, 10*time.Millisecond, "the server was not told (state %v)", pp.s.State())
}

// TestAbortDuringOutage: a client that aborts while its transport is down
// sends its close frame after the resume, within the linger time: the
// server's Reads end with ErrPeerAborted, not after its detached lifetime
// with ErrSessionLost.
func TestAbortDuringOutage(t *testing.T) {
	pp := newProxiedPair(t, []session.Option{session.WithDetachedLifetime(time.Minute)},
		session.WithKeepAlive(30*time.Millisecond, 10*time.Second), session.WithLinger(3*time.Second))
	defer pp.close()
	write(t, pp.c, "partial re")
	_, err := io.ReadFull(pp.s, make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, pp.p.SetMode(faultproxy.ModeRefuse)) // the server unreachable for 300 ms
	pp.p.ResetAll()
	require.Eventually(t, func() bool { return session.SenderBlocked(pp.c) }, 10*time.Second, time.Millisecond) // a ping failed
	time.AfterFunc(300*time.Millisecond, func() { pp.p.SetMode(faultproxy.ModeForward) })
	require.NoError(t, pp.c.Abort())
	pp.s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = pp.s.Read(make([]byte, 1))
	require.ErrorIs(t, err, session.ErrPeerAborted)
}
