package faultmatrix

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/e2e/internal/e2etest"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tethertest"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// The QUIC rows of the matrix: a Tether over tetherquic, through
// a faultproxy.UDPRelay, to a real quic-go server on 127.0.0.1. The server
// crashes (Transport.Close: its clients hear nothing) and comes back, the
// relay loses every datagram or a fraction of them for a while, the server
// resets the stream, and the Tether is closed during each.
//
// A writer sends numbered, padded lines every few milliseconds and the
// server echoes them; the reader splits what it reads into lines per
// connection generation (ReadGeneration), so that a line cut short by a lost
// connection is counted as torn and never spliced with the next
// connection's bytes. The checks: every line is whole and well formed, the
// numbers only grow (nothing reordered or duplicated), and where the
// connection survives, every line written arrives.

const quicALPN = "tether-faultmatrix"

// Short QUIC timeouts keep the rows fast. The client's idle timeout is
// what the server's effective idle timeout becomes too (quic-go takes the
// smaller of the two).
const (
	quicHandshakeIdle = time.Second
	quicDialTimeout   = 2 * time.Second
	quicLineEvery     = 5 * time.Millisecond
)

// quicServer is a quic-go server on 127.0.0.1 that crashes and comes back.
// Each stream reads the client's hello ("hi\n"), answers "hello N\n", where
// N is the server's incarnation, and echoes the rest.
type quicServer struct {
	t   testing.TB
	tls *tls.Config // shared by the incarnations: their session ticket keys are the same, so a redial resumes

	conns   atomic.Int32 // connections accepted, by every incarnation
	streams atomic.Int32 // streams accepted, by every incarnation

	mu          sync.Mutex
	addr        string
	incarnation int
	udp         *net.UDPConn
	tr          *quic.Transport
	cancel      context.CancelFunc
	wg          *sync.WaitGroup // the incarnation's goroutines
	live        map[*quic.Stream]struct{}
	down        bool
}

func startQUICServer(t testing.TB, key *quic.StatelessResetKey) *quicServer {
	t.Helper()
	s := &quicServer{t: t, tls: tethertest.TLSServerConfig(quicALPN), addr: "127.0.0.1:0", down: true}
	require.NoError(t, s.start(key))
	t.Cleanup(s.crash)
	return s
}

func newResetKey(t testing.TB) *quic.StatelessResetKey {
	var k quic.StatelessResetKey
	_, err := rand.Read(k[:])
	require.NoError(t, err)
	return &k
}

// start listens on the server's address (a fresh port the first time) with
// key as its Transport's StatelessResetKey (nil: it sends no resets).
func (s *quicServer) start(key *quic.StatelessResetKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ua, err := net.ResolveUDPAddr("udp", s.addr)
	if err != nil {
		return err
	}
	var udp *net.UDPConn
	for range 100 { // the port was just released: another socket may hold it a moment
		if udp, err = net.ListenUDP("udp", ua); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: udp, StatelessResetKey: key}
	// The server's keep-alives make it send during a loss even when it has
	// nothing in flight, so that a loss both ways drops datagrams both ways.
	ln, err := tr.Listen(s.tls, &quic.Config{KeepAlivePeriod: 100 * time.Millisecond})
	if err != nil {
		tr.Close()
		udp.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.addr = udp.LocalAddr().String()
	s.incarnation++
	s.udp, s.tr, s.cancel, s.wg = udp, tr, cancel, new(sync.WaitGroup)
	s.live = make(map[*quic.Stream]struct{})
	s.down = false
	inc, wg := s.incarnation, s.wg
	wg.Go(func() {
		defer ln.Close()
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s.conns.Add(1)
			wg.Go(func() { s.serveConn(ctx, c, inc, wg) })
		}
	})
	return nil
}

func (s *quicServer) serveConn(ctx context.Context, c *quic.Conn, inc int, wg *sync.WaitGroup) {
	for {
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		s.streams.Add(1)
		s.mu.Lock()
		s.live[st] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.live, st)
				s.mu.Unlock()
			}()
			serveStream(st, inc)
		})
	}
}

// serveStream reads the hello, greets, and echoes until the stream fails or
// the client's FIN.
func serveStream(st *quic.Stream, inc int) {
	hello := make([]byte, 3)
	if _, err := io.ReadFull(st, hello); err != nil {
		return
	}
	if _, err := fmt.Fprintf(st, "hello %d\n", inc); err != nil {
		return
	}
	if transporttest.EchoConn(st) == io.EOF {
		st.Close()
	}
}

// Addr returns the server's address.
func (s *quicServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// crash stops the server without a word to its clients: Transport.Close
// sends no CONNECTION_CLOSE. It waits for the incarnation's goroutines.
func (s *quicServer) crash() {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return
	}
	s.down = true
	cancel, tr, udp, wg := s.cancel, s.tr, s.udp, s.wg
	s.mu.Unlock()
	cancel()
	tr.Close()
	udp.Close()
	wg.Wait()
}

// restart crashes the server and starts it again with key, on the same port
// or, when samePort is false, on a new one.
func (s *quicServer) restart(key *quic.StatelessResetKey, samePort bool) {
	s.t.Helper()
	s.crash()
	if !samePort {
		s.mu.Lock()
		s.addr = "127.0.0.1:0"
		s.mu.Unlock()
	}
	require.NoError(s.t, s.start(key))
}

// resetStreams resets both directions of every live stream with code, and
// returns how many there were. The connections stay up.
func (s *quicServer) resetStreams(code quic.StreamErrorCode) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := range s.live {
		st.CancelRead(code)
		st.CancelWrite(code)
	}
	return len(s.live)
}

// quicLine is one line the reader read whole, with the generation of the
// connection it came from and when it was read.
type quicLine struct {
	gen  uint64
	text string
	at   time.Time
}

// seqLine is the writer's n-th line: a number and a padding drawn from it,
// long enough that each packet carrying one can draw a stateless reset
// (which needs more than 42 bytes).
func seqLine(n int) string {
	return fmt.Sprintf("seq %06d %s\n", n, strings.Repeat(string(rune('a'+n%26)), 40))
}

// parseSeq returns the number of a seq line, or -1 if it is not one; ok is
// false when it looks like one but is damaged.
func parseSeq(text string) (n int, ok bool) {
	num, ok := strings.CutPrefix(text, "seq ")
	if !ok {
		return -1, true
	}
	f := strings.Fields(num)
	if len(f) != 2 {
		return -1, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || text+"\n" != seqLine(n) {
		return -1, false
	}
	return n, true
}

// quicEnv is one Tether over tetherquic, through the relay, to the server.
type quicEnv struct {
	t     *testing.T
	srv   *quicServer
	relay *faultproxy.UDPRelay
	d     *tetherquic.Dialer
	rec   *e2etest.Recorder
	tt    *tether.Tether
	dials atomic.Int32

	mu      sync.Mutex
	lines   []quicLine
	pending []byte // the end of a line, not yet whole
	pgen    uint64 // the generation of pending
	torn    int    // lines cut short by the end of their connection
	rerr    error
	wake    chan struct{} // closed and replaced at each Read
	rdone   chan struct{}

	wstop chan struct{}
	wdone chan struct{}
	wmu   sync.Mutex
	sent  int     // lines the writer wrote (or tried to)
	werrs []error // the errors of its Writes (ErrDropped, around a reconnect)
}

type quicEnvConfig struct {
	idle   time.Duration            // the client's MaxIdleTimeout; 0: 2 s
	key    *quic.StatelessResetKey  // the server's first StatelessResetKey
	policy tether.DisconnectHandler // nil: transporttest.QuickBackoff
}

// newQUICEnv starts a server, a relay in front of it and a Tether through
// the relay. The Tether writes a hello on each new stream (OnConnect), so
// that the stream exists for the server, and drops the unwritten rest of a
// failed Write, so that no line is spliced from two streams.
func newQUICEnv(t *testing.T, cfg quicEnvConfig) *quicEnv {
	t.Helper()
	e := &quicEnv{t: t, wake: make(chan struct{})}
	e.srv = startQUICServer(t, cfg.key)
	r, err := faultproxy.NewUDPRelay(e.srv.Addr(), 1)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	e.relay = r

	idle := cfg.idle
	if idle == 0 {
		idle = 2 * time.Second
	}
	e.d = &tetherquic.Dialer{
		TLSConfig: tethertest.TLSClientConfig(quicALPN),
		Config:    &quic.Config{MaxIdleTimeout: idle, HandshakeIdleTimeout: quicHandshakeIdle},
		Timeout:   quicDialTimeout,
	}
	t.Cleanup(func() { e.d.Close() })
	d := tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		e.dials.Add(1)
		return e.d.Dial(ctx, addr)
	})
	policy := cfg.policy
	if policy == nil {
		policy = transporttest.QuickBackoff()
	}
	e.rec = e2etest.NewRecorder(policy)
	hello := tether.WithOnConnect(func(_ context.Context, c net.Conn) error {
		_, err := c.Write([]byte("hi\n"))
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	tt, err := tether.Dial(ctx, d, r.Addr(), e.rec, hello, tether.WithWritePolicy(tether.WriteDrop))
	require.NoError(t, err)
	e.tt = tt
	t.Cleanup(func() {
		tt.Close()
		if e.wstop != nil {
			e.stopWriter()
		}
		if e.rdone != nil {
			<-e.rdone
		}
	})
	return e
}

// startReader reads the Tether until it fails, splitting what it reads into
// lines per generation.
func (e *quicEnv) startReader() {
	e.rdone = make(chan struct{})
	go func() {
		defer close(e.rdone)
		buf := make([]byte, 4096)
		for {
			n, gen, err := e.tt.ReadGeneration(buf)
			now := time.Now()
			e.mu.Lock()
			if n > 0 {
				if gen != e.pgen {
					if len(e.pending) > 0 {
						e.torn++
					}
					e.pending, e.pgen = nil, gen
				}
				e.pending = append(e.pending, buf[:n]...)
				for {
					i := bytes.IndexByte(e.pending, '\n')
					if i < 0 {
						break
					}
					e.lines = append(e.lines, quicLine{gen: gen, text: string(e.pending[:i]), at: now})
					e.pending = e.pending[i+1:]
				}
			}
			if err != nil {
				e.rerr = err
			}
			close(e.wake)
			e.wake = make(chan struct{})
			e.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
}

// startWriter writes seqLine(0), seqLine(1), ... every quicLineEvery until
// stopWriter, going on after ErrDropped (a Write that met a lost
// connection).
func (e *quicEnv) startWriter() {
	e.wstop, e.wdone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(e.wdone)
		tick := time.NewTicker(quicLineEvery)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-e.wstop:
				return
			case <-tick.C:
			}
			_, err := e.tt.Write([]byte(seqLine(n)))
			e.wmu.Lock()
			e.sent = n + 1
			if err != nil {
				e.werrs = append(e.werrs, err)
			}
			e.wmu.Unlock()
			if err != nil && !errors.Is(err, tether.ErrDropped) {
				return // closed, or given up: the test will say
			}
		}
	}()
}

// stopWriter stops the writer and returns how many lines it wrote and the
// errors of its Writes.
func (e *quicEnv) stopWriter() (int, []error) {
	select {
	case <-e.wstop:
	default:
		close(e.wstop)
	}
	<-e.wdone
	e.wmu.Lock()
	defer e.wmu.Unlock()
	return e.sent, append([]error(nil), e.werrs...)
}

// waitLines waits, for up to long, until cond holds for the lines read so
// far, and returns them.
func (e *quicEnv) waitLines(what string, cond func([]quicLine) bool) []quicLine {
	e.t.Helper()
	deadline := time.NewTimer(long)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		lines, err, ch := e.lines, e.rerr, e.wake
		e.mu.Unlock()
		if cond(lines) {
			return lines
		}
		if err != nil {
			e.t.Fatalf("the reader failed (%v) before %s; events: %v", err, what, e.rec)
		}
		select {
		case <-ch:
		case <-deadline.C:
			e.t.Fatalf("not within %v: %s (%d lines read); events: %v", long, what, len(lines), e.rec)
		}
	}
}

// waitEchoes waits until n seq lines have come from a connection of
// generation gen or later, and returns the time the first of them was read.
func (e *quicEnv) waitEchoes(gen uint64, n int) time.Time {
	e.t.Helper()
	var first time.Time
	e.waitLines(fmt.Sprintf("%d echoes on generation %d or later", n, gen), func(lines []quicLine) bool {
		seen := 0
		for _, l := range lines {
			if l.gen >= gen && strings.HasPrefix(l.text, "seq ") {
				if seen == 0 {
					first = l.at
				}
				seen++
			}
		}
		return seen >= n
	})
	return first
}

// waitGreeting waits until the server's greeting of incarnation inc has
// been read count times.
func (e *quicEnv) waitGreeting(inc, count int) {
	e.t.Helper()
	want := fmt.Sprintf("hello %d", inc)
	e.waitLines(fmt.Sprintf("%q ×%d", want, count), func(lines []quicLine) bool {
		n := 0
		for _, l := range lines {
			if l.text == want {
				n++
			}
		}
		return n >= count
	})
}

// finish stops the writer, waits until its last line has been echoed, and
// checks every line read: each is a greeting or a whole seq line, and the
// numbers only grow. With intact, every line written was read, and none was
// torn or failed to be written. It returns how many lines were lost.
func (e *quicEnv) finish(intact bool) (lost int) {
	e.t.Helper()
	sent, werrs := e.stopWriter()
	require.Positive(e.t, sent)
	last := sent - 1
	lines := e.waitLines(fmt.Sprintf("the echo of line %d", last), func(lines []quicLine) bool {
		for i := len(lines) - 1; i >= 0; i-- {
			if n, _ := parseSeq(lines[i].text); n >= 0 {
				return n >= last
			}
		}
		return false
	})
	prev, read := -1, 0
	for _, l := range lines {
		n, ok := parseSeq(l.text)
		require.True(e.t, ok, "a damaged line: %q", l.text)
		if n < 0 {
			require.Regexp(e.t, `^hello \d+$`, l.text)
			continue
		}
		require.Greater(e.t, n, prev, "line %d after line %d: reordered or duplicated", n, prev)
		prev = n
		read++
	}
	e.mu.Lock()
	torn := e.torn
	e.mu.Unlock()
	lost = sent - read
	if intact {
		require.Zero(e.t, lost, "lines lost")
		require.Zero(e.t, torn, "lines torn")
		require.Empty(e.t, werrs, "Write errors")
	}
	e.t.Logf("lines: %d written, %d read, %d lost (%d torn), %d Writes dropped", sent, read, lost, torn, len(werrs))
	return lost
}

// origin returns how the Tether's current stream came to be.
func (e *quicEnv) origin() tetherquic.Origin {
	e.t.Helper()
	c, ok := e.tt.Conn().(*tetherquic.Conn)
	require.True(e.t, ok, "Tether.Conn() = %T, want *tetherquic.Conn", e.tt.Conn())
	return c.Origin()
}

// start brings the Tether into its steady state: the greeting and some
// echoes read.
func (e *quicEnv) start() {
	e.t.Helper()
	e.startReader()
	e.startWriter()
	e.waitGreeting(1, 1)
	e.waitEchoes(1, 10)
}

// requireNoReconnect checks that the Tether kept its first connection.
func (e *quicEnv) requireNoReconnect() {
	e.t.Helper()
	require.Zero(e.t, e.rec.Count(tether.Disconnected), "events: %v", e.rec)
	require.EqualValues(e.t, 1, e.dials.Load(), "dials")
	require.Equal(e.t, uint64(1), e.tt.Generation())
	require.EqualValues(e.t, 1, e.srv.conns.Load(), "server connections")
	require.EqualValues(e.t, 1, e.srv.streams.Load(), "server streams")
}

func requireErrorAs[T error](t *testing.T, err error, what string) {
	t.Helper()
	var target T
	require.ErrorAs(t, err, &target, "%s = %v, want a %T", what, err, target)
}

// The server crashes (Transport.Close, not a word to the client) and comes
// back. With the same StatelessResetKey, the client's next packet draws a
// stateless reset and the Tether knows at once; with another key or none,
// the client's idle timeout (1 s) tells it. Behind the relay, a server that
// comes back on another port looks the same to the client.
func TestQUICServerCrash(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	for _, tc := range []struct {
		name     string
		key      bool // the server has a StatelessResetKey
		sameKey  bool // it keeps it across the restart
		samePort bool
		check    func(t *testing.T, err error)
	}{
		{"same-reset-key", true, true, true, func(t *testing.T, err error) {
			requireErrorAs[*quic.StatelessResetError](t, err, "Disconnected.Err")
		}},
		{"new-reset-key", true, false, true, func(t *testing.T, err error) {
			requireErrorAs[*quic.IdleTimeoutError](t, err, "Disconnected.Err")
		}},
		{"no-reset-key", false, false, true, func(t *testing.T, err error) {
			requireErrorAs[*quic.IdleTimeoutError](t, err, "Disconnected.Err")
		}},
		{"new-port", true, true, false, func(t *testing.T, err error) {
			requireErrorAs[*quic.StatelessResetError](t, err, "Disconnected.Err")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var key, next *quic.StatelessResetKey
			if tc.key {
				key, next = newResetKey(t), newResetKey(t)
			}
			if tc.sameKey {
				next = key
			}
			e := newQUICEnv(t, quicEnvConfig{idle: idle, key: key})
			e.start()

			crash := time.Now()
			e.srv.restart(next, tc.samePort)
			if !tc.samePort {
				require.NoError(t, e.relay.SetUpstream(e.srv.Addr()))
			}
			ev, detected := e.rec.WaitAt(t, tether.Disconnected, 1)
			tc.check(t, ev.Err)
			_, back := e.rec.WaitAt(t, tether.Reconnected, 1)
			e.waitGreeting(2, 1)
			echo := e.waitEchoes(2, 10)
			require.Equal(t, tetherquic.Resumed, e.origin(), "a redial resumes the TLS session")
			lost := e.finish(false)
			require.Nil(t, e.tt.Err())
			require.Equal(t, 1, e.rec.Count(tether.Disconnected), "events: %v", e.rec)
			require.Equal(t, 1, e.rec.Count(tether.Reconnected), "events: %v", e.rec)
			t.Logf("crash/%s: detected after %v, reconnected after %v, echoes after %v; %d lines lost",
				tc.name, detected.Sub(crash), back.Sub(crash), echo.Sub(crash), lost)
			if !tc.sameKey {
				require.GreaterOrEqual(t, detected.Sub(crash), idle/2, "detected before the idle timeout")
			}
		})
	}
}

// Every datagram is lost for a while. When the loss lasts longer than the
// client's idle timeout, the connection dies of it (an idle timeout), the
// redials fail while the loss lasts, and the Tether reconnects once it
// ends. When it is shorter, QUIC retransmits, the connection survives, and
// every line written during the loss arrives, in order.
func TestQUICPacketLoss(t *testing.T) {
	t.Parallel()
	t.Run("longer-than-idle", func(t *testing.T) {
		t.Parallel()
		const idle, loss = time.Second, 2 * time.Second
		e := newQUICEnv(t, quicEnvConfig{idle: idle})
		e.start()

		start := time.Now()
		healed, err := e.relay.LoseFor(faultproxy.BothWays(1), loss)
		require.NoError(t, err)
		ev, detected := e.rec.WaitAt(t, tether.Disconnected, 1)
		requireErrorAs[*quic.IdleTimeoutError](t, ev.Err, "Disconnected.Err")
		require.GreaterOrEqual(t, detected.Sub(start), idle/2, "detected before the idle timeout")
		transporttest.WaitClosed(t, healed, "the loss's end")
		// The loss ends loss after LoseFor at the soonest: that, not when
		// this goroutine saw it end (late on a busy machine), is the bound.
		end := start.Add(loss)
		_, back := e.rec.WaitAt(t, tether.Reconnected, 1)
		require.False(t, back.Before(end.Add(-50*time.Millisecond)), "reconnected during the loss")
		echo := e.waitEchoes(2, 10)
		// crypto/tls throws a session ticket away when a handshake that
		// offered it fails, a timeout with no answer included; the Dialer
		// keeps it, so the redial that succeeds resumes the session even
		// after redials failed during the loss.
		failed := e.rec.Count(tether.Unreachable)
		require.Equal(t, tetherquic.Resumed, e.origin(), "after %d failed redials", failed)
		lost := e.finish(false)
		require.Nil(t, e.tt.Err())
		require.Equal(t, 1, e.rec.Count(tether.Disconnected), "events: %v", e.rec)
		st := e.relay.Stats()
		require.Positive(t, st.DroppedUp)
		t.Logf("loss %v, idle %v: detected after %v; after the loss ended, reconnected after %v (%v), echoes after %v; %d failed redials, %d lines lost",
			loss, idle, detected.Sub(start), back.Sub(end), e.origin(), echo.Sub(end), failed, lost)
	})
	t.Run("shorter-than-idle", func(t *testing.T) {
		t.Parallel()
		// The idle timeout is far longer than the loss, so that a machine
		// too busy to run the client for a second cannot make it pass.
		const idle, loss = 10 * time.Second, 500 * time.Millisecond
		e := newQUICEnv(t, quicEnvConfig{idle: idle})
		e.start()

		// Lose everything for at least loss, and until datagrams were
		// dropped both ways: what the server sends during a loss (its
		// keep-alives, its retransmissions) comes when its timers say,
		// which a fixed span cannot promise on a busy machine.
		before := e.relay.Stats()
		start := time.Now()
		require.NoError(t, e.relay.SetLoss(faultproxy.BothWays(1)))
		for {
			st := e.relay.Stats()
			if time.Since(start) >= loss && st.DroppedUp > before.DroppedUp && st.DroppedDown > before.DroppedDown {
				break
			}
			require.Less(t, time.Since(start), idle/2, "no datagram dropped both ways (%+v)", st)
			time.Sleep(5 * time.Millisecond)
		}
		e.relay.Heal()
		end := time.Now()
		echo := e.waitEchoesAfter(end)
		e.finish(true)
		e.requireNoReconnect()
		st := e.relay.Stats()
		require.Positive(t, st.DroppedUp)
		require.Positive(t, st.DroppedDown)
		t.Logf("loss %v (at least), idle %v: the connection survived; echoes %v after the loss ended (%d datagrams dropped)",
			end.Sub(start), idle, echo.Sub(end), st.DroppedUp+st.DroppedDown)
	})
}

// waitEchoesAfter waits for a seq line read after t, and returns when it was
// read.
func (e *quicEnv) waitEchoesAfter(t time.Time) time.Time {
	e.t.Helper()
	var at time.Time
	e.waitLines("an echo after "+t.Format("15:04:05.000"), func(lines []quicLine) bool {
		for i := len(lines) - 1; i >= 0 && lines[i].at.After(t); i-- {
			if strings.HasPrefix(lines[i].text, "seq ") {
				at = lines[i].at
			}
		}
		return !at.IsZero()
	})
	return at
}

// A fraction of the datagrams (30 %, both ways) is lost for 2 s: QUIC
// retransmits, the stream survives without a reconnect, and every line
// arrives intact and in order.
func TestQUICFractionalLoss(t *testing.T) {
	t.Parallel()
	const rate, loss = 0.3, 2 * time.Second
	e := newQUICEnv(t, quicEnvConfig{idle: 2 * time.Second})
	e.start()

	before := e.relay.Stats()
	healed, err := e.relay.LoseFor(faultproxy.BothWays(rate), loss)
	require.NoError(t, err)
	transporttest.WaitClosed(t, healed, "the loss's end")
	end := time.Now()
	after := e.relay.Stats()
	sent, _ := e.sentSoFar()
	e.waitSeq(sent - 1)
	caughtUp := time.Since(end)
	e.finish(true)
	e.requireNoReconnect()

	dropped := after.DroppedUp + after.DroppedDown - before.DroppedUp - before.DroppedDown
	passed := after.Up + after.Down - before.Up - before.Down
	frac := float64(dropped) / float64(dropped+passed)
	require.InDelta(t, rate, frac, 0.15, "the relay dropped %d of %d datagrams", dropped, dropped+passed)
	t.Logf("%.0f %% loss for %v: %d of %d datagrams dropped (%.1f %%); no reconnect; the echoes caught up %v after the loss ended",
		100*rate, loss, dropped, dropped+passed, 100*frac, caughtUp)
}

// sentSoFar returns how many lines the writer wrote so far, and its errors.
func (e *quicEnv) sentSoFar() (int, []error) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	return e.sent, append([]error(nil), e.werrs...)
}

// waitSeq waits until line n (or a later one) has been read.
func (e *quicEnv) waitSeq(n int) {
	e.t.Helper()
	e.waitLines(fmt.Sprintf("the echo of line %d", n), func(lines []quicLine) bool {
		for i := len(lines) - 1; i >= 0; i-- {
			if m, _ := parseSeq(lines[i].text); m >= 0 {
				return m >= n
			}
		}
		return n < 0
	})
}

// The server resets the stream (both directions) while the Tether reads and
// writes: the Tether opens a new stream on the live QUIC connection, with no
// handshake and no new socket, and the echoes go on.
func TestQUICStreamReset(t *testing.T) {
	t.Parallel()
	e := newQUICEnv(t, quicEnvConfig{})
	e.start()

	start := time.Now()
	require.Equal(t, 1, e.srv.resetStreams(3))
	ev, detected := e.rec.WaitAt(t, tether.Disconnected, 1)
	var se *quic.StreamError
	require.ErrorAs(t, ev.Err, &se, "Disconnected.Err = %v, want a *quic.StreamError", ev.Err)
	require.True(t, se.Remote)
	require.Equal(t, quic.StreamErrorCode(3), se.ErrorCode)
	_, back := e.rec.WaitAt(t, tether.Reconnected, 1)
	e.waitGreeting(1, 2) // the new stream's greeting, from the same incarnation
	echo := e.waitEchoes(2, 10)
	// Only now: the Reconnected event comes before the Tether installs the
	// connection, so Tether.Conn may still be nil when the handler saw it.
	require.Equal(t, tetherquic.NewStream, e.origin(), "a new stream on the live connection")
	lost := e.finish(false)

	require.Nil(t, e.tt.Err())
	kinds := e.rec.String()
	require.Equal(t, 1, e.rec.Count(tether.Disconnected), "events: %v", kinds)
	require.Equal(t, 1, e.rec.Count(tether.Reconnected), "events: %v", kinds)
	require.EqualValues(t, 2, e.dials.Load(), "dials")
	require.Equal(t, uint64(2), e.tt.Generation())
	require.EqualValues(t, 1, e.srv.conns.Load(), "server connections: a handshake")
	require.EqualValues(t, 2, e.srv.streams.Load(), "server streams")
	require.Equal(t, 1, e.relay.Sessions(), "the client's socket changed")
	t.Logf("stream reset: detected after %v, reconnected after %v, echoes after %v; %d lines lost",
		detected.Sub(start), back.Sub(start), echo.Sub(start), lost)
}

// Close returns promptly whatever QUIC fault the Tether is in, and every
// operation blocked on it returns net.ErrClosed.
func TestQUICCloseDuring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(t *testing.T, e *quicEnv) // returns once the Tether is in the state
	}{
		// Reading a connection whose server is gone, before the idle
		// timeout says so.
		{"crash", func(t *testing.T, e *quicEnv) {
			e.srv.crash()
		}},
		// Redialing a port where nothing answers: the handshake waits.
		{"crash-redial", func(t *testing.T, e *quicEnv) {
			e.srv.crash()
			e.rec.WaitAt(t, tether.Disconnected, 1)
			waitFor(t, func() bool { return e.dials.Load() == 2 }, "the redial began")
		}},
		// Every datagram lost: the connection is silent, and stays up
		// until its idle timeout.
		{"loss", func(t *testing.T, e *quicEnv) {
			e.relay.Blackhole(true)
		}},
		// The loss outlasted the idle timeout: a redial's handshake gets
		// no answer.
		{"loss-redial", func(t *testing.T, e *quicEnv) {
			e.relay.Blackhole(true)
			e.rec.WaitAt(t, tether.Disconnected, 1)
			waitFor(t, func() bool { return e.dials.Load() == 2 }, "the redial began")
		}},
		// A fraction lost: QUIC retransmits under the Tether's feet.
		{"fractional-loss", func(t *testing.T, e *quicEnv) {
			require.NoError(t, e.relay.SetLoss(faultproxy.BothWays(0.3)))
		}},
		// The stream was reset: the Tether waits out the default policy's
		// backoff, or has opened a new stream already.
		{"stream-reset", func(t *testing.T, e *quicEnv) {
			require.Equal(t, 1, e.srv.resetStreams(3))
			e.rec.WaitAt(t, tether.Disconnected, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newQUICEnv(t, quicEnvConfig{idle: time.Second, policy: tether.DefaultHandler()})
			e.startReader()
			e.waitGreeting(1, 1)
			tc.fault(t, e)

			// A Write blocked behind the fault: 8 MiB are more than
			// QUIC's flow control lets through a silent connection.
			werr := make(chan error, 1)
			go func() {
				_, err := e.tt.Write(make([]byte, 8<<20))
				werr <- err
			}()
			time.Sleep(50 * time.Millisecond) // let the Write block; if it has not yet, it meets the Close instead

			start := time.Now()
			require.NoError(t, e.tt.Close())
			took := time.Since(start)
			t.Logf("close during %s: Close took %v", tc.name, took)
			require.Less(t, took, time.Second, "Close took %v", took)
			transporttest.WaitClosed(t, e.rdone, "a Read blocked at Close")
			e.mu.Lock()
			rerr := e.rerr
			e.mu.Unlock()
			require.ErrorIs(t, rerr, net.ErrClosed)
			e2etest.RequireClosed(t, e.tt, werr)
		})
	}
}
