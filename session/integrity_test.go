package session_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	"github.com/io-tether/tether/tethertest/faultproxy"
	"github.com/io-tether/tether/tethertest/records"
	tethertls "github.com/io-tether/tether/tls"
	"github.com/quic-go/quic-go"
)

var (
	soakFor  = flag.Duration("soak", 3*time.Second, "how long TestIntegritySoak injects faults")
	soakSeed = flag.Uint64("seed", 1, "the seed of TestIntegritySoak's faults and data")
)

// writeRecords sends records in writes of 1 to max records until stop,
// then CloseWrite.
func writeRecords(c *session.Conn, s *records.Sender, r *rand.Rand, stop <-chan struct{}, max int) error {
	for {
		select {
		case <-stop:
			return c.CloseWrite()
		default:
		}
		if err := s.Send(c, 1+r.IntN(max)); err != nil {
			return err
		}
	}
}

// readRecords feeds what c reads to ch until EOF. A session is one stream
// across its connections: every byte has the same generation.
func readRecords(c *session.Conn, ch *records.Checker) error {
	buf := make([]byte, 40<<10)
	for {
		n, err := c.Read(buf)
		ch.Feed(buf[:n], 1)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// proxied returns dialers that reach addr through the proxy.
func proxiedDialer(tr transport, timeout time.Duration) tether.Dialer {
	switch tr.name {
	case "tls":
		return &tethertls.Dialer{Config: tethertest.TLSClientConfig(), NetDialer: &tethertcp.Dialer{Timeout: timeout}}
	}
	return &tethertcp.Dialer{Timeout: timeout}
}

// TestIntegritySoak streams bytes both ways through a session while the
// fault proxy injects every kind of fault, drawn from -seed, for -soak;
// then both ends finish, and each checks that what it received is what
// the other wrote, byte for byte: nothing lost, duplicated, reordered or
// corrupted.
func TestIntegritySoak(t *testing.T) {
	for _, tr := range transports {
		if tr.name == "quic" {
			continue // TestIntegritySoakQUIC: the fault proxy is TCP
		}
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel() // TestMain checks for leaks
			sum := runSoak(t, tr, *soakSeed, *soakFor)
			t.Log(sum)
			fmt.Println(sum)
		})
	}
}

// dirResult is one direction of a soak.
type dirResult struct {
	send       *records.Sender
	check      *records.Checker
	werr, rerr error
}

// verify requires that what was sent arrived, all of it, intact and in
// order, and returns the tally.
func (d *dirResult) verify(t *testing.T, name string) records.Tally {
	t.Helper()
	require.NoError(t, d.werr, "%s: write", name)
	require.NoError(t, d.rerr, "%s: read", name)
	r, tl := d.check.Result(), records.Compare(d.send, d.check)
	require.Empty(t, r.Violations, "%s: records corrupted, reordered, duplicated or missing", name)
	require.Zero(t, r.Cut, "%s: records cut", name)
	require.Zero(t, tl.Failed, "%s: writes failed", name)
	require.Zero(t, tl.Lost, "%s: records lost in flight", name)
	require.Equal(t, tl.Sent, tl.Received, "%s: sent = received", name)
	return tl
}

// faultPath is what a soak runs through: the address the client dials,
// its dialer, and the faults, played until ctx ends.
type faultPath struct {
	addr   string
	dialer tether.Dialer
	play   func(ctx context.Context) (faults string, err error)
	stats  func() string
	dialed func(c *session.Conn) // if not nil, told the client's end
}

func runSoak(t *testing.T, tr transport, seed uint64, d time.Duration) string {
	opts := []session.Option{session.WithKeepAlive(200*time.Millisecond, 300*time.Millisecond), session.WithBufferSize(256 << 10)}
	sl := session.NewListener(tr.listen(t), opts...)
	defer sl.Close()
	p, err := faultproxy.New(sl.Addr().String(), seed)
	require.NoError(t, err)
	defer p.Close()
	p.SetSocketBuffers(64 << 10)
	path := faultPath{
		addr:   p.Addr(),
		dialer: proxiedDialer(tr, 300*time.Millisecond),
		play: func(ctx context.Context) (string, error) {
			steps := faultproxy.Schedule(seed, 100000, faultproxy.ScheduleConfig{MaxFor: 700 * time.Millisecond, MaxGap: 300 * time.Millisecond})
			faults := map[faultproxy.Fault]int{}
			err := p.Run(ctx, steps, func(s faultproxy.Step) { faults[s.Fault]++ })
			return fmt.Sprint(faults), err
		},
		stats: func() string {
			st := p.Stats()
			return fmt.Sprintf("proxy: %d connections, %d resets, %d closes, %d cut", st.Accepted, st.Resets, st.Closes, st.Cuts)
		},
	}
	return soak(t, tr.name, sl, path, seed, d, opts)
}

// soak streams both ways through a session over path while its faults
// play for d, then checks written = received, byte for byte.
func soak(t *testing.T, name string, sl *session.Listener, path faultPath, seed uint64, d time.Duration, opts []session.Option) string {
	var reconnects atomic.Int64
	h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Reconnected {
			reconnects.Add(1)
		}
		return quick().HandleDisconnect(ctx, ev)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, path.dialer, path.addr, h, opts...)
	require.NoError(t, err)
	if path.dialed != nil {
		path.dialed(c)
	}
	s, err := sl.AcceptSession()
	require.NoError(t, err)

	up := dirResult{send: records.NewSender(seed ^ 0xc25), check: records.NewChecker(seed^0xc25, nil)}
	down := dirResult{send: records.NewSender(seed ^ 0x52c), check: records.NewChecker(seed^0x52c, nil)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { up.werr = writeRecords(c, up.send, rand.New(rand.NewPCG(seed, 1)), stop, 300) })
	wg.Go(func() { down.werr = writeRecords(s, down.send, rand.New(rand.NewPCG(seed, 2)), stop, 300) })
	wg.Go(func() { up.rerr = readRecords(s, up.check) })
	wg.Go(func() { down.rerr = readRecords(c, down.check) })

	fctx, fcancel := context.WithTimeout(context.Background(), d)
	faults, err := path.play(fctx)
	fcancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		require.NoError(t, err)
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the streams did not finish within 30 s after the faults (client→server at record %d of %d, server→client at %d of %d)",
			up.check.Last(), up.send.LastSent(), down.check.Last(), down.send.LastSent())
	}
	ut, dt := up.verify(t, "client→server"), down.verify(t, "server→client")
	require.NoError(t, c.Close())
	require.NoError(t, s.Close())
	return fmt.Sprintf("session integrity soak over %s: seed %d, %v of faults %s, %d reconnects; client→server %d records (%d bytes) sent, %d received; server→client %d (%d bytes) sent, %d received; lost in flight 0, corrupted 0; %s",
		name, seed, d, faults, reconnects.Load(), ut.Sent, ut.SentBytes, ut.Received, dt.Sent, dt.SentBytes, dt.Received, path.stats())
}

// TestIntegritySoakQUIC is the soak over QUIC streams, through a UDP relay
// that loses every datagram for a while (longer or shorter than the
// keep-alive), or 30 % of them, and with streams reset by the client.
func TestIntegritySoakQUIC(t *testing.T) {
	t.Parallel() // TestMain checks for leaks
	tr := transports[2]
	opts := []session.Option{session.WithKeepAlive(200*time.Millisecond, 300*time.Millisecond),
		session.WithBufferSize(256 << 10), session.WithHandshakeTimeout(2 * time.Second)}
	sl := session.NewListener(tr.listen(t), opts...)
	defer sl.Close()
	r, err := faultproxy.NewUDPRelay(sl.Addr().String(), *soakSeed)
	require.NoError(t, err)
	defer r.Close()
	d := &tetherquic.Dialer{TLSConfig: tethertest.TLSClientConfig("tether-test"),
		Config: &quic.Config{MaxIdleTimeout: 2 * time.Second, HandshakeIdleTimeout: time.Second}}
	defer d.Close()
	var conn atomic.Pointer[session.Conn]
	rnd := rand.New(rand.NewPCG(*soakSeed, 3))
	path := faultPath{
		addr:   r.Addr(),
		dialer: d,
		play: func(ctx context.Context) (string, error) {
			counts := map[string]int{}
			for ctx.Err() == nil {
				var ended <-chan struct{}
				switch k := rnd.IntN(3); k {
				case 0:
					counts["blackout"]++
					ended, err = r.LoseFor(faultproxy.BothWays(1), time.Duration(100+rnd.IntN(1400))*time.Millisecond)
				case 1:
					counts["30% loss"]++
					ended, err = r.LoseFor(faultproxy.BothWays(0.3), time.Second)
				case 2:
					counts["stream reset"]++
					if c := conn.Load(); c != nil {
						if sc := c.Tether().Conn(); sc != nil {
							sc.Close()
						}
					}
				}
				if err != nil {
					return "", err
				}
				if ended != nil {
					select {
					case <-ended:
					case <-ctx.Done():
					}
				}
				select {
				case <-time.After(300 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			r.Heal()
			return fmt.Sprint(counts), nil
		},
		stats: func() string {
			st := r.Stats()
			return fmt.Sprintf("relay: %+v", st)
		},
		dialed: func(c *session.Conn) { conn.Store(c) },
	}
	sum := soak(t, "quic", sl, path, *soakSeed, *soakFor, opts)
	t.Log(sum)
	fmt.Println(sum)
}
