package faultmatrix

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/e2e/internal/e2etest"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tethertest/faultproxy"
	"github.com/io-tether/tether/tethertest/records"
)

// TestIntegritySoak streams records both ways through a Tether while the
// proxy injects random faults drawn from -seed, for -soak (3 s by default),
// and checks the integrity invariant (see checkIntegrity). It prints a
// summary.
func TestIntegritySoak(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			steps := faultproxy.Schedule(*soakSeed, 100000, soakSchedule)
			sum := runIntegrity(t, integrityConfig{tr: tr, seed: *soakSeed, steps: steps, duration: *soakFor})
			t.Log(sum)
			fmt.Println(sum) // the summary, also without -v
		})
	}
}

// soakSchedule bounds the soak's faults: each lasts up to a second, with up
// to half a second of health between them.
var soakSchedule = faultproxy.ScheduleConfig{
	MaxFor:   time.Second,
	MaxGap:   500 * time.Millisecond,
	MaxDelay: 100 * time.Millisecond,
}

// The client's settings: the read watchdog tells a silent peer (blackhole,
// strand) from a live one, which sends a record at least every few
// milliseconds; a dial that hangs fails after dialTimeout.
const (
	idleTimeout = time.Second
	dialTimeout = 500 * time.Millisecond
	// Each writer writes a batch of records every pace.
	pace  = time.Millisecond
	batch = 8
	// Every socket on the path gets buffers of sockBuf bytes (the kernel
	// doubles them), so what a dead connection loses is bounded, and Writes
	// block, and meet the loss, often.
	sockBuf   = 64 << 10
	streamC2S = 0xc25
	streamS2C = 0x52c
)

type integrityConfig struct {
	tr       transport
	seed     uint64
	steps    []faultproxy.Step
	duration time.Duration // 0: play every step
}

// summary is what one run did.
type summary struct {
	transport               string
	seed                    uint64
	duration                time.Duration
	faults                  map[faultproxy.Fault]int
	steps                   int
	reconnects, unreach     int
	recovery                time.Duration
	c2s, s2c                dirSummary
	proxy                   faultproxy.Stats
	maxLossBytes, lossBound int64
}

type dirSummary struct {
	written, writtenBytes int64 // reported written
	received, recvBytes   int64
	dropped               int64 // Writes that failed (never reported written)
	lost                  int64 // reported written, never received: in flight on a connection that died
	lostBytes             int64
	lossGaps              int   // connections whose death lost records
	partials              int64 // incomplete records dropped at a connection's end
}

func (s summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "integrity soak over %s: seed %d, %v of faults (%d steps:", s.transport, s.seed, s.duration.Round(time.Millisecond), s.steps)
	for f := faultproxy.Fault(0); f < 20; f++ {
		if n := s.faults[f]; n > 0 {
			fmt.Fprintf(&b, " %v %d", f, n)
		}
	}
	fmt.Fprintf(&b, "), %d reconnects, %d failed dials, recovered %v after the last fault\n", s.reconnects, s.unreach, s.recovery.Round(time.Millisecond))
	for _, d := range []struct {
		name string
		d    dirSummary
	}{{"client→server", s.c2s}, {"server→client", s.s2c}} {
		fmt.Fprintf(&b, "  %s: %d records (%d bytes) reported written, %d received (%d bytes), %d lost in flight on %d dead connections, %d writes failed (dropped), %d partial records dropped\n",
			d.name, d.d.written, d.d.writtenBytes, d.d.received, d.d.recvBytes, d.d.lost, d.d.lossGaps, d.d.dropped, d.d.partials)
	}
	fmt.Fprintf(&b, "  proxy: %d connections accepted, %d forwarded, %d reset, %d closed, %d cut, %d refused upstream, %d bytes up, %d down; largest loss at one connection's death %d bytes (bound %d)",
		s.proxy.Accepted, s.proxy.Forwarded, s.proxy.Resets, s.proxy.Closes, s.proxy.Cuts, s.proxy.UpstreamFailures, s.proxy.BytesUp, s.proxy.BytesDown, s.maxLossBytes, s.lossBound)
	return b.String()
}

// soakServer is the server end of the record streams: one client session at
// a time, a new connection taking over from the last (as a server that
// knows its client would), reading one stream and writing the other.
type soakServer struct {
	ln   net.Listener
	recv *records.Checker
	send *records.Sender
	wg   sync.WaitGroup

	mu      sync.Mutex
	cur     net.Conn
	curID   int
	changed chan struct{} // closed and replaced when cur changes
	closed  bool
	bad     error // a hello that did not parse
}

func startSoakServer(t *testing.T, tr transport, recv *records.Checker, send *records.Sender) *soakServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &soakServer{ln: tr.listen(ln), recv: recv, send: send, changed: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	return s
}

func (s *soakServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		setBuffers(context.Background(), c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		old := s.cur
		s.cur = c
		s.curID++
		id := s.curID
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if old != nil {
			// The new connection takes over; the old one ends at once
			// (for TLS, without a close_notify that could wait on a
			// full buffer).
			if nc, ok := old.(interface{ NetConn() net.Conn }); ok {
				nc.NetConn().Close()
			}
			old.Close()
		}
		s.wg.Add(1)
		go s.read(c, id)
	}
}

// read checks the records of connection id while it is the current one;
// the connection's number is its generation.
func (s *soakServer) read(c net.Conn, id int) {
	defer s.wg.Done()
	defer c.Close()
	// The connection's generation for the checker is the client's count
	// of its connections, from the hello: a connection that the proxy
	// reset before it reached this server carried records too, and its
	// loss is a reconnect that this server's own count would not show.
	r := bufio.NewReaderSize(c, 64<<10)
	hello, err := r.ReadString('\n')
	if err != nil {
		return // lost before its hello: it carried no record
	}
	gen, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSuffix(hello, "\n"), "hello "), 10, 64)
	if err != nil {
		s.mu.Lock()
		s.bad = fmt.Errorf("connection %d: bad hello %q", id, hello)
		s.mu.Unlock()
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.mu.Lock() // records are taken in connection order
			current := s.curID == id
			if current {
				s.recv.Feed(buf[:n], gen)
			}
			s.mu.Unlock()
			if !current {
				return // taken over: the rest is lost
			}
		}
		if err != nil {
			return
		}
	}
}

// write writes records on the current connection until stop.
func (s *soakServer) write(stop <-chan struct{}) {
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for {
		s.mu.Lock()
		c, id, changed := s.cur, s.curID, s.changed
		s.mu.Unlock()
		if c == nil {
			select {
			case <-changed:
				continue
			case <-stop:
				return
			}
		}
		for range batch {
			if err := s.send.Send(c, 1); err != nil {
				// Wait for the next connection.
				for {
					s.mu.Lock()
					cur := s.curID
					changed = s.changed
					s.mu.Unlock()
					if cur != id {
						break
					}
					select {
					case <-changed:
					case <-stop:
						return
					}
				}
				break
			}
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

func (s *soakServer) close() {
	s.mu.Lock()
	s.closed = true
	if s.cur != nil {
		s.cur.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// runIntegrity runs the record streams through a Tether and the proxy
// while the proxy plays cfg.steps, then heals, waits for the streams to
// recover, stops them and checks the integrity invariant.
func runIntegrity(t *testing.T, cfg integrityConfig) summary {
	c2s, s2c := records.NewChecker(streamC2S, nil), records.NewChecker(streamS2C, nil)
	csend, ssend := records.NewSender(streamC2S), records.NewSender(streamS2C)
	tr := cfg.tr
	if tr.name == "" {
		tr = transports[0]
	}
	srv := startSoakServer(t, tr, c2s, ssend)
	defer srv.close()
	p, err := faultproxy.New(srv.ln.Addr().String(), cfg.seed)
	require.NoError(t, err)
	defer p.Close()

	rec := e2etest.NewRecorder(transporttest.QuickBackoff())
	p.SetSocketBuffers(sockBuf)
	var conns atomic.Uint64 // the client's connections, each named in a hello
	ctx, cancel := context.WithTimeout(context.Background(), long)
	tt, err := tether.Dial(ctx, tr.dialer(dialTimeout), p.Addr(),
		rec,
		tether.WithWritePolicy(tether.WriteDrop), tether.WithReadIdleTimeout(idleTimeout),
		tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
			setBuffers(ctx, c)
			_, err := fmt.Fprintf(c, "hello %d\n", conns.Add(1))
			return err
		}))
	cancel()
	require.NoError(t, err)
	defer tt.Close()

	stop := make(chan struct{})
	var writers, reader sync.WaitGroup
	writers.Add(2)
	reader.Add(1)
	go func() {
		defer writers.Done()
		srv.write(stop)
	}()
	var unexpected atomic.Pointer[error]
	go func() { // the client's writer
		defer writers.Done()
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for {
			for range batch {
				err := csend.Send(tt, 1)
				switch {
				case err == nil, errors.Is(err, tether.ErrDropped):
				case errors.Is(err, net.ErrClosed):
					return
				default:
					unexpected.CompareAndSwap(nil, &err)
					return
				}
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	go func() { // the client's reader
		defer reader.Done()
		buf := make([]byte, 32<<10)
		for {
			n, gen, err := tt.ReadGeneration(buf)
			if n > 0 {
				s2c.Feed(buf[:n], gen)
			}
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					unexpected.CompareAndSwap(nil, &err)
				}
				return
			}
		}
	}()

	// The faults.
	faults := map[faultproxy.Fault]int{}
	played := 0
	runCtx := context.Background()
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(runCtx, cfg.duration)
		defer cancel()
	}
	start := time.Now()
	err = p.Run(runCtx, cfg.steps, func(s faultproxy.Step) {
		faults[s.Fault]++
		played++
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		require.NoError(t, err)
	}
	faulted := time.Since(start)

	// Healed: both streams must recover, well within the longest backoff
	// and the idle timeout.
	healed := time.Now()
	cw, sw := csend.LastSent(), ssend.LastSent()
	waitStreams(t, "recover after the faults", c2s, cw+100, s2c, sw+100, rec)
	recovery := time.Since(healed)

	// Stop the writers; every record reported written since must arrive.
	close(stop)
	waitDone(t, &writers, "the writers", tt)
	cw, sw = csend.LastSent(), ssend.LastSent()
	waitStreams(t, "deliver the last records", c2s, cw, s2c, sw, rec)
	require.NoError(t, tt.Close())
	waitDone(t, &reader, "the reader", nil)
	if e := unexpected.Load(); e != nil {
		t.Fatalf("an operation on the Tether failed: %v", *e)
	}
	srv.close()
	p.Close()
	require.NoError(t, srv.bad)

	bound := lossBound()
	deaths := int64(rec.Count(tether.Disconnected))
	sum := summary{
		transport: tr.name, seed: cfg.seed, duration: faulted, faults: faults, steps: played,
		reconnects: rec.Count(tether.Reconnected), unreach: rec.Count(tether.Unreachable),
		recovery: recovery, proxy: p.Stats(), lossBound: bound,
	}
	sum.c2s = checkIntegrity(t, "client→server", c2s, csend, &sum.maxLossBytes)
	sum.s2c = checkIntegrity(t, "server→client", s2c, ssend, &sum.maxLossBytes)
	for _, d := range []dirSummary{sum.c2s, sum.s2c} {
		require.LessOrEqual(t, d.lostBytes, deaths*bound,
			"%d lost connections lost %d bytes: more than their buffers hold", deaths, d.lostBytes)
	}
	return sum
}

// waitStreams waits until each checker has received the given record.
func waitStreams(t *testing.T, what string, c2s *records.Checker, cw int64, s2c *records.Checker, sw int64, rec *e2etest.Recorder) {
	t.Helper()
	deadline := time.Now().Add(long)
	for c2s.Last() < cw || s2c.Last() < sw {
		if time.Now().After(deadline) {
			t.Fatalf("the streams did not %s within %v: client→server at %d of %d, server→client at %d of %d; last events: %v",
				what, long, c2s.Last(), cw, s2c.Last(), sw, kindsOfTail(rec.Events(), 6))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDone waits for wg, closing tt (when not nil) if it takes long, and
// fails if it still does not return.
func waitDone(t *testing.T, wg *sync.WaitGroup, what string, tt *tether.Tether) {
	t.Helper()
	done := waitChan(wg)
	select {
	case <-done:
		return
	case <-time.After(long):
	}
	if tt != nil {
		tt.Close()
	}
	select {
	case <-done:
		t.Fatalf("%s did not stop within %v", what, long)
	case <-time.After(long):
		t.Fatalf("%s did not return, even after Close", what)
	}
}

// checkIntegrity checks one direction's invariant: no violation (no record
// corrupted, reordered, duplicated, or missing within one connection), and
// every record reported written either arrived or was lost where a
// connection died; the lost ones are counted.
func checkIntegrity(t *testing.T, name string, c *records.Checker, s *records.Sender, maxLoss *int64) dirSummary {
	t.Helper()
	res, tl := c.Result(), records.Compare(s, c)
	require.Empty(t, res.Violations, "%s: integrity violations", name)
	require.Equal(t, s.LastSent(), res.Last, "%s: the last record reported written is the last received", name)
	// Every record: received, dropped by its writer, or lost in a gap.
	require.Equal(t, tl.Sent, tl.Received+tl.Lost, "%s: records reported written = received + lost in flight", name)
	*maxLoss = max(*maxLoss, tl.MaxLostBytes)
	return dirSummary{
		written: tl.Sent, writtenBytes: tl.SentBytes, received: tl.Received, recvBytes: res.Bytes,
		dropped: tl.Failed, lost: tl.Lost, lostBytes: tl.LostBytes, lossGaps: tl.LostAt, partials: res.Cut,
	}
}

// lossBound is what the docs say one connection's death may lose: the bytes
// it accepted and had not delivered, which on this path are at most what the
// buffers hold: the sender's send buffer, the proxy's receive buffer, read
// buffer (32 KiB) and send buffer, and the receiver's receive buffer (the
// kernel doubles each sockBuf), the record that was being read, and over
// TLS a record (16 KiB and its overhead) buffered at each end.
func lossBound() int64 {
	return 4*2*sockBuf + 32<<10 + records.MaxSize + 2*(16<<10+256)
}

// setBuffers sets the socket buffers of a TCP connection, or of the one
// under a TLS connection, to sockBuf.
func setBuffers(_ context.Context, c net.Conn) error {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(sockBuf)
		tc.SetWriteBuffer(sockBuf)
	}
	return nil
}

// kindsOfTail describes the last n events.
func kindsOfTail(evs []tether.Event, n int) []string {
	k := transporttest.Describe(evs)
	return k[max(0, len(k)-n):]
}
