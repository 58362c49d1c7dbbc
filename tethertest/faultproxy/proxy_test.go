package faultproxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// Tests whose proxy never stops listening run in parallel. Those that go to
// ModeRefuse or ModeHold do not: the proxy listens again on the same port,
// which a parallel test's socket could take meanwhile.
func TestMain(m *testing.M) { transporttest.Main(m) }

// Real sockets on loopback: bounds are generous, for a loaded machine.
const long = 10 * time.Second

// upstream is an echo server on loopback TCP that records what it reads.
type upstream struct {
	*transporttest.Server
	mu   sync.Mutex
	got  bytes.Buffer
	errs []error // how each connection's reads ended
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = transporttest.StartServer(t, transporttest.TCP, u.serve)
	return u
}

// serve echoes c and records what it reads.
func (u *upstream) serve(_ context.Context, c net.Conn, _ int) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		u.mu.Lock()
		u.got.Write(buf[:n])
		if err != nil {
			u.errs = append(u.errs, err)
		}
		u.mu.Unlock()
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (u *upstream) received() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got.String()
}

// readErrs returns how the upstream connections' reads ended so far.
func (u *upstream) readErrs() []error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]error(nil), u.errs...)
}

// startProxied starts an upstream and a proxy in front of it.
func startProxied(t *testing.T) (*upstream, *faultproxy.Proxy) {
	t.Helper()
	u := startUpstream(t)
	return u, startProxy(t, u.Addr())
}

func startProxy(t *testing.T, upstream string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(upstream, 1)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, long)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// echo writes s to c and reads it back.
func echo(t *testing.T, c net.Conn, s string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(long)))
	_, err := c.Write([]byte(s))
	require.NoError(t, err)
	buf := make([]byte, len(s))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, s, string(buf))
}

// readErr reads from c until an error, with a generous deadline.
func readErr(t *testing.T, c net.Conn) error {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(long)))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return io.EOF // io.Copy reports a clean EOF as nil
	}
	return err
}

// dialAndRead dials addr and reads until an error, which it returns: when
// the proxy resets a connection at once, the reset may reach the client
// before its dial returns, and the dial fails with it.
func dialAndRead(t *testing.T, addr string) error {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, long)
	if err != nil {
		return err
	}
	defer c.Close()
	return readErr(t, c)
}

// eventually polls cond until it holds, for up to long.
func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestForward(t *testing.T) {
	_, p := startProxied(t)
	c := dial(t, p.Addr())
	echo(t, c, "hello")
	echo(t, c, "again")
	// The proxy counts a chunk once its Write returns, which may be after
	// the client has read the echo.
	eventually(t, func() bool { st := p.Stats(); return st.BytesUp == 10 && st.BytesDown == 10 },
		"the bytes forwarded did not reach 10 each way")
	st := p.Stats()
	require.Equal(t, 1, st.Accepted)
	require.Equal(t, 1, st.Forwarded)
	require.Equal(t, 0, st.Faults)
	require.Equal(t, 1, p.Conns())

	// A half-close passes through: the server sees EOF, the client still
	// reads the echo.
	_, err := c.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	rest, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "bye", string(rest))
	eventually(t, func() bool { return p.Conns() == 0 }, "the closed connection is still tracked")
}

func TestResetAll(t *testing.T) {
	u, p := startProxied(t)
	c1, c2 := dial(t, p.Addr()), dial(t, p.Addr())
	echo(t, c1, "a")
	echo(t, c2, "b")
	require.Equal(t, 2, p.ResetAll())
	for _, c := range []net.Conn{c1, c2} {
		err := readErr(t, c)
		require.True(t, faultproxy.IsReset(err), "Read after ResetAll = %v, want a reset", err)
	}
	eventually(t, func() bool { return len(u.readErrs()) == 2 }, "the server did not see both resets")
	for _, err := range u.readErrs() {
		require.True(t, faultproxy.IsReset(err), "server Read after ResetAll = %v, want a reset", err)
	}
	st := p.Stats()
	require.Equal(t, 2, st.Resets)
	require.Equal(t, 1, st.Faults)
	require.Equal(t, 0, p.Conns())
	echo(t, dial(t, p.Addr()), "new connections work")
}

func TestCloseAll(t *testing.T) {
	u, p := startProxied(t)
	c := dial(t, p.Addr())
	echo(t, c, "a")
	require.Equal(t, 1, p.CloseAll())
	require.Equal(t, io.EOF, readErr(t, c))
	eventually(t, func() bool { return len(u.readErrs()) == 1 }, "the server did not see the close")
	require.Equal(t, io.EOF, u.readErrs()[0])
	require.Equal(t, 1, p.Stats().Closes)
}

// CloseAll closes with a FIN though the proxy holds bytes it has not read
// (a delay holds the first chunk, or the connection is stranded): Linux
// resets a socket closed with bytes unread, so the proxy drops what has
// arrived before it closes.
func TestCloseAllWithBytesUnread(t *testing.T) {
	for name, fault := range map[string]func(*faultproxy.Proxy){
		"delay":  func(p *faultproxy.Proxy) { p.SetShape(faultproxy.Shape{Delay: time.Hour}) },
		"strand": func(p *faultproxy.Proxy) { p.Strand() },
	} {
		t.Run(name, func(t *testing.T) {
			u, p := startProxied(t)
			c := dial(t, p.Addr())
			echo(t, c, "before")
			fault(p)
			for _, s := range []string{"one", "two"} {
				_, err := c.Write([]byte(s))
				require.NoError(t, err)
				time.Sleep(20 * time.Millisecond) // two chunks: the proxy reads the first only
			}
			require.Equal(t, 1, p.CloseAll())
			require.Equal(t, io.EOF, readErr(t, c))
			eventually(t, func() bool { return len(u.readErrs()) == 1 }, "the server did not see the close")
			require.Equal(t, io.EOF, u.readErrs()[0])
		})
	}
}

// The close is a FIN also when more is held back than the proxy drains in
// its millisecond (a client that uploaded megabytes into a strand): the FIN
// goes first, and a reset the close may send comes after it. (The client
// read a reset, in 19 runs of 20.)
func TestCloseAllWithBacklog(t *testing.T) {
	_, p := startProxied(t)
	c := dial(t, p.Addr())
	echo(t, c, "before")
	p.Strand()
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	c.Write(make([]byte, 64<<20)) // until the buffers are full
	c.SetWriteDeadline(time.Time{})
	require.Equal(t, 1, p.CloseAll())
	require.Equal(t, io.EOF, readErr(t, c))
}

func TestRefuseThenBack(t *testing.T) {
	_, p := startProxied(t)
	live := dial(t, p.Addr())
	echo(t, live, "before")

	require.NoError(t, p.SetMode(faultproxy.ModeRefuse))
	_, err := net.DialTimeout("tcp", p.Addr(), long)
	require.True(t, faultproxy.IsRefused(err), "dial while refusing = %v, want refused", err)
	echo(t, live, "live connections are not affected")

	require.NoError(t, p.SetMode(faultproxy.ModeForward))
	echo(t, dial(t, p.Addr()), "back on the same port")
	require.Equal(t, faultproxy.ModeForward, p.Mode())
}

func TestHold(t *testing.T) {
	_, p := startProxied(t)
	live := dial(t, p.Addr())
	echo(t, live, "before")

	require.NoError(t, p.SetMode(faultproxy.ModeHold))
	start := time.Now()
	_, err := net.DialTimeout("tcp", p.Addr(), 300*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "dial while holding = %v, want a timeout", err)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	echo(t, live, "live connections are not affected")

	// A dial that hangs completes once the hold ends (at its next SYN).
	done := make(chan error, 1)
	go func() {
		c, err := net.DialTimeout("tcp", p.Addr(), long)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // not synchronisation: lets the SYN be dropped first; either order passes
	require.NoError(t, p.SetMode(faultproxy.ModeForward))
	require.NoError(t, <-done)
	echo(t, dial(t, p.Addr()), "after")
}

func TestAcceptClose(t *testing.T) {
	_, p := startProxied(t)
	require.NoError(t, p.SetMode(faultproxy.ModeAcceptClose))
	require.Equal(t, io.EOF, readErr(t, dial(t, p.Addr())))
	require.NoError(t, p.SetMode(faultproxy.ModeAcceptReset))
	err := dialAndRead(t, p.Addr())
	require.True(t, faultproxy.IsReset(err), "Read on an accepted-and-reset connection = %v, want a reset", err)
	st := p.Stats()
	require.Equal(t, 2, st.AcceptClosed)
	require.Equal(t, 0, st.Forwarded)
	require.Equal(t, 2, st.Faults)
	require.NoError(t, p.Heal())
	echo(t, dial(t, p.Addr()), "healed")
}

// ModeAcceptClose closes with a FIN though the client wrote first (a
// request, an OnConnect hello): closed with those bytes unread, the socket
// would be reset.
func TestAcceptCloseClientWritesFirst(t *testing.T) {
	_, p := startProxied(t)
	require.NoError(t, p.SetMode(faultproxy.ModeAcceptClose))
	for i := range 20 {
		c := dial(t, p.Addr())
		_, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		require.NoError(t, err)
		require.Equal(t, io.EOF, readErr(t, c), "connection %d", i)
		c.Close()
	}
	require.Equal(t, 20, p.Stats().AcceptClosed)
}

func TestBlackhole(t *testing.T) {
	t.Parallel()
	u, p := startProxied(t)
	c := dial(t, p.Addr())
	echo(t, c, "before")

	p.Blackhole(true)
	_, err := c.Write([]byte("held"))
	require.NoError(t, err)
	fresh := dial(t, p.Addr()) // new connections are blackholed too
	_, err = fresh.Write([]byte("fresh"))
	require.NoError(t, err)
	for _, c := range []net.Conn{c, fresh} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		_, err = c.Read(make([]byte, 1))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "Read through a blackhole")
	}
	require.Equal(t, "before", u.received(), "nothing went through")

	p.Blackhole(false)
	for _, tc := range []struct {
		c net.Conn
		s string
	}{{c, "held"}, {fresh, "fresh"}} {
		require.NoError(t, tc.c.SetReadDeadline(time.Now().Add(long)))
		buf := make([]byte, len(tc.s))
		_, err = io.ReadFull(tc.c, buf)
		require.NoError(t, err)
		require.Equal(t, tc.s, string(buf), "the held bytes go through once it ends")
	}
}

// TestBlackholeHoldsClose: a client's close (FIN or RST) during a
// blackhole is held like its bytes: the server sees it once the blackhole
// ends, not before.
func TestBlackholeHoldsClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		close func(c *net.TCPConn) error
		want  func(err error) bool
	}{
		{"close", (*net.TCPConn).Close, func(err error) bool { return err == io.EOF }},
		{"reset", func(c *net.TCPConn) error { c.SetLinger(0); return c.Close() }, faultproxy.IsReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p := startProxied(t)
			c := dial(t, p.Addr())
			echo(t, c, "before")
			p.Blackhole(true)
			require.NoError(t, tc.close(c.(*net.TCPConn)))
			time.Sleep(300 * time.Millisecond) // a close that went through would show within this
			require.Empty(t, u.readErrs(), "the server saw the client's %s through a blackhole", tc.name)
			require.Equal(t, 1, p.Conns(), "both sides stay open")

			p.Blackhole(false)
			eventually(t, func() bool { return len(u.readErrs()) > 0 }, "the server never saw the client's %s", tc.name)
			err := u.readErrs()[0]
			require.True(t, tc.want(err), "the server's Read after the blackhole = %v, want the client's %s", err, tc.name)
		})
	}
}

func TestStrand(t *testing.T) {
	t.Parallel()
	u, p := startProxied(t)
	c := dial(t, p.Addr())
	echo(t, c, "before")
	require.Equal(t, 1, p.Strand())
	_, err := c.Write([]byte("lost"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	echo(t, dial(t, p.Addr()), "new connections are not stranded")

	// A close on either side is not passed on.
	c.Close()
	u.KillConns()
	time.Sleep(100 * time.Millisecond) // a close that went through would show within this
	require.Equal(t, 2, p.Conns(), "the stranded connection lasts until ResetAll")
	require.Equal(t, 2, p.ResetAll())
	require.Equal(t, "beforenew connections are not stranded", u.received(), "nothing of the stranded connection went through")

	// A stranded connection holds what it read and reads no more: the
	// sender's buffers fill and its writes block.
	p.SetSocketBuffers(8 << 10)
	c = dial(t, p.Addr())
	require.NoError(t, c.(*net.TCPConn).SetWriteBuffer(8<<10))
	echo(t, c, "x")
	p.Strand()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	n, err := c.Write(make([]byte, 16<<20))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Less(t, n, 256<<10)
}

func TestShapeDelay(t *testing.T) {
	_, p := startProxied(t)
	c := dial(t, p.Addr())
	p.SetShape(faultproxy.Shape{Delay: 100 * time.Millisecond})
	start := time.Now()
	echo(t, c, "slow")
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "a round trip waits the delay each way")
}

func TestShapeSlice(t *testing.T) {
	_, p := startProxied(t)
	c := dial(t, p.Addr())
	p.SetShape(faultproxy.Shape{Slice: 4})
	msg := string(bytes.Repeat([]byte("0123456789"), 100))
	echo(t, c, msg)
	// Each piece has at most 4 bytes: at least 250 writes each way (the
	// last counted once its Write returns, maybe after the echo is read).
	eventually(t, func() bool { return p.Stats().Writes >= 500 }, "fewer than 500 writes")
}

func TestShapeCutAfter(t *testing.T) {
	u, p := startProxied(t)
	p.SetShape(faultproxy.Shape{CutAfter: 10})
	c := dial(t, p.Addr())
	_, err := c.Write([]byte("0123456789abcdef"))
	require.NoError(t, err)
	err = readErr(t, c)
	require.True(t, faultproxy.IsReset(err), "Read on a cut connection = %v, want a reset", err)
	require.LessOrEqual(t, len(u.received()), 10, "the byte after the 10th never passes")
	require.Equal(t, 1, p.Stats().Cuts)
}

func TestUpstreamDown(t *testing.T) {
	u, p := startProxied(t)
	u.Stop()
	err := dialAndRead(t, p.Addr())
	require.True(t, faultproxy.IsReset(err), "Read with the upstream down = %v, want a reset", err)
	eventually(t, func() bool { return p.Stats().UpstreamFailures == 1 }, "the upstream failure was not counted")
}

func TestCloseStopsEverything(t *testing.T) {
	u := startUpstream(t)
	p, err := faultproxy.New(u.Addr(), 1)
	require.NoError(t, err)
	c := dial(t, p.Addr())
	echo(t, c, "x")
	p.Blackhole(true)
	_, err = c.Write([]byte("held")) // a pump waits in the blackhole
	require.NoError(t, err)
	require.NoError(t, p.SetMode(faultproxy.ModeHold))
	require.NoError(t, p.Close()) // returns once every goroutine is done
	require.Error(t, p.Close())
	require.Error(t, p.SetMode(faultproxy.ModeForward))
	err = readErr(t, c)
	require.True(t, faultproxy.IsReset(err), "Read after Close = %v, want a reset", err)
}

// TestCloseDuringUpstreamDial: Close aborts an upstream dial in progress
// (to a server that drops SYNs) instead of waiting for it to time out.
func TestCloseDuringUpstreamDial(t *testing.T) {
	held := startProxy(t, "127.0.0.1:1") // its own upstream never matters: it holds every dial
	require.NoError(t, held.SetMode(faultproxy.ModeHold))
	p, err := faultproxy.New(held.Addr(), 1)
	require.NoError(t, err)
	dial(t, p.Addr())
	eventually(t, func() bool { return p.Stats().Accepted == 1 }, "the proxy did not accept")
	start := time.Now()
	require.NoError(t, p.Close())
	require.Less(t, time.Since(start), faultproxy.DefaultUpstreamTimeout/2, "Close waited for the upstream dial")
	require.Zero(t, p.Stats().Forwarded)
}

func TestBadInput(t *testing.T) {
	_, err := faultproxy.New("no-port", 1)
	require.Error(t, err)
	_, p := startProxied(t)
	require.Error(t, p.SetMode(faultproxy.Mode(42)))
	require.Error(t, p.Apply(faultproxy.Step{Fault: faultproxy.Fault(42)}))
}

func TestScheduleDeterministic(t *testing.T) {
	cfg := faultproxy.ScheduleConfig{MaxFor: time.Second, MaxGap: 100 * time.Millisecond}
	a := faultproxy.Schedule(7, 50, cfg)
	require.Equal(t, a, faultproxy.Schedule(7, 50, cfg), "the same seed gives the same schedule")
	require.NotEqual(t, a, faultproxy.Schedule(8, 50, cfg))
	seen := map[faultproxy.Fault]bool{}
	for _, s := range a {
		seen[s.Fault] = true
		require.GreaterOrEqual(t, s.For, time.Duration(0))
		require.Less(t, s.For, time.Second)
		require.Less(t, s.Gap, 100*time.Millisecond)
		require.NotContains(t, s.String(), "fault(")
	}
	require.Greater(t, len(seen), 5, "50 steps draw from many faults")
	require.Empty(t, faultproxy.Schedule(7, -1, cfg), "a negative count gives no step")

	d := faultproxy.DecodeSchedule([]byte{0, 0, 0, 0, 255, 255, 255, 255, 9}, cfg)
	require.Len(t, d, 2, "four bytes a step; the tail is ignored")
	require.Equal(t, faultproxy.FaultReset, d[0].Fault)
	require.Less(t, d[1].For, time.Second)
	all := faultproxy.AllFaults()
	require.Equal(t, all[len(all)-1], d[1].Fault)
}

func TestRun(t *testing.T) {
	_, p := startProxied(t)
	steps := []faultproxy.Step{
		{Fault: faultproxy.FaultRefuse, For: 20 * time.Millisecond},
		{Fault: faultproxy.FaultDelay, Arg: 5, For: 20 * time.Millisecond},
		{Fault: faultproxy.FaultBlackhole, For: 20 * time.Millisecond},
		{Fault: faultproxy.FaultReset, Gap: 10 * time.Millisecond},
	}
	var played []faultproxy.Fault
	require.NoError(t, p.Run(context.Background(), steps, func(s faultproxy.Step) { played = append(played, s.Fault) }))
	require.Equal(t, []faultproxy.Fault{faultproxy.FaultRefuse, faultproxy.FaultDelay, faultproxy.FaultBlackhole, faultproxy.FaultReset}, played)
	require.Equal(t, faultproxy.ModeForward, p.Mode(), "Run ends healed")
	echo(t, dial(t, p.Addr()), "healed")

	// Run stops with its ctx, healed.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Run(ctx, []faultproxy.Step{{Fault: faultproxy.FaultRefuse, For: time.Hour}}, nil)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "Run = %v, want the ctx's error", err)
	require.Equal(t, faultproxy.ModeForward, p.Mode())
}

// Small socket buffers bound what a blackholed connection holds in flight.
func TestSetSocketBuffers(t *testing.T) {
	t.Parallel()
	_, p := startProxied(t)
	p.SetSocketBuffers(8 << 10)
	c := dial(t, p.Addr())
	require.NoError(t, c.(*net.TCPConn).SetWriteBuffer(8<<10))
	echo(t, c, "x")
	p.Blackhole(true)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(500*time.Millisecond)))
	n, err := c.Write(make([]byte, 16<<20))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the write blocks once the buffers are full")
	t.Logf("a blackholed connection took %d bytes", n)
	require.Less(t, n, 256<<10)
	p.Blackhole(false)
}

// A SetMode that cannot listen again (the port was taken meanwhile) leaves
// the proxy refusing, as it then is, and saying so: Heal listens again, and
// a later SetMode does not trip over the listener that never came.
func TestSetModeAfterFailedListen(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer up.Close()
	p, err := faultproxy.New(up.Addr().String(), 1)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.SetMode(faultproxy.ModeRefuse))
	squat, err := net.Listen("tcp", p.Addr()) // the port is taken meanwhile
	require.NoError(t, err)
	require.Error(t, p.SetMode(faultproxy.ModeForward))
	require.Equal(t, faultproxy.ModeRefuse, p.Mode())
	require.NoError(t, p.SetMode(faultproxy.ModeRefuse))
	squat.Close()
	require.NoError(t, p.Heal())
	require.Equal(t, faultproxy.ModeForward, p.Mode())
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "after Heal, the proxy listens")
	c.Close()
}

// CutAfter bounds both directions together: with bytes going both ways at
// once, no connection forwards more than CutAfter bytes (the two
// directions could each spend what was left).
func TestCutAfterBothWays(t *testing.T) {
	t.Parallel()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer up.Close()
	go func() { // writes while it reads
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
			go func() {
				defer c.Close()
				for {
					if _, err := c.Write(make([]byte, 7)); err != nil {
						return
					}
				}
			}()
		}
	}()
	p, err := faultproxy.New(up.Addr().String(), 1)
	require.NoError(t, err)
	defer p.Close()
	const cutAfter = 4000
	p.SetShape(faultproxy.Shape{CutAfter: cutAfter, Slice: 7})
	settled := func() faultproxy.Stats { // once the connection's pumps are done
		var s faultproxy.Stats
		require.Eventually(t, func() bool {
			a := p.Stats()
			time.Sleep(5 * time.Millisecond)
			s = p.Stats()
			return p.Conns() == 0 && a.BytesUp == s.BytesUp && a.BytesDown == s.BytesDown
		}, 10*time.Second, time.Millisecond)
		return s
	}
	before := settled()
	for i := range 60 {
		// The cut may come before the dial returns (the upstream writes
		// at once): that dial fails with a reset, and counts all the same.
		c, err := net.Dial("tcp", p.Addr())
		if err == nil {
			go io.Copy(io.Discard, c)
			for {
				if _, err := c.Write(make([]byte, 7)); err != nil {
					break
				}
			}
		} else {
			require.ErrorIs(t, err, syscall.ECONNRESET, "connection %d", i)
		}
		if c != nil {
			c.Close()
		}
		after := settled()
		n := after.BytesUp + after.BytesDown - before.BytesUp - before.BytesDown
		require.LessOrEqual(t, n, int64(cutAfter), "connection %d", i)
		before = after
	}
	// Both directions may find the budget spent: one cut each all the same.
	require.Equal(t, 60, p.Stats().Cuts)
}

// A connection that the proxy accepted as FaultRefuse began is reset with
// the live ones: none gets through to the server while it is "down". (It
// did, in one round of 10 or so, when the accept loop registered it after
// ResetAll had taken the list.)
func TestRefuseLeavesNoConnection(t *testing.T) {
	_, p := startProxied(t)
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for !stop.Load() {
				c, err := net.DialTimeout("tcp", p.Addr(), 200*time.Millisecond)
				if err != nil {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				time.Sleep(100 * time.Millisecond)
				c.Close()
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	for round := range 60 {
		require.NoError(t, p.Apply(faultproxy.Step{Fault: faultproxy.FaultRefuse}))
		time.Sleep(10 * time.Millisecond)
		require.Zero(t, p.ResetAll(), "round %d: connections live through a proxy that refuses", round)
		require.NoError(t, p.Heal())
		time.Sleep(2 * time.Millisecond)
	}
}
