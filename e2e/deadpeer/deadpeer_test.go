//go:build linux

package deadpeer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/e2e/internal/e2etest"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

const (
	// dialTimeout bounds each dial attempt, so that a dial into the
	// blackhole fails soon.
	dialTimeout = time.Second
	// settle is how long an echo connection rests before the blackhole, so
	// that every segment has been acknowledged and the last byte received
	// is the last activity.
	settle = 300 * time.Millisecond
	// heartbeat is the period of the ticking server's "tick\n".
	heartbeat = 100 * time.Millisecond
)

// A transport is how the client reaches a server in the namespace.
type transport struct {
	name   string
	listen func(net.Listener) net.Listener
	dialer func(nd *tcp.Dialer) tether.Dialer // over a TCP dialer with the mechanism's settings
}

var transports = []transport{{
	name:   "tcp",
	listen: func(l net.Listener) net.Listener { return l },
	dialer: func(nd *tcp.Dialer) tether.Dialer { return nd },
}, {
	name:   "tls",
	listen: func(l net.Listener) net.Listener { return tls.NewListener(l, tethertest.TLSServerConfig()) },
	dialer: func(nd *tcp.Dialer) tether.Dialer {
		return &tethertls.Dialer{Config: tethertest.TLSClientConfig(), NetDialer: nd}
	},
}}

// A mechanism is one way to detect a dead peer, with the bounds of its
// detection time, measured from the last byte received, or from the Write
// when write is set.
type mechanism struct {
	name      string
	net       tcp.Dialer // the client's TCP settings; the test sets Timeout
	opts      []tether.Option
	heartbeat bool // the server sends "tick\n" every heartbeat; otherwise it echoes
	write     bool // once the blackhole is up, the client writes (data that is never acknowledged)
	cause     error
	min, max  time.Duration
}

var mechanisms = []mechanism{{
	// An idle reader: the kernel probes after 1 s of silence, then every
	// second, and gives up after 3 unanswered probes, 4 s after the last
	// byte received.
	name: "keepalive",
	net: tcp.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}},
	cause: syscall.ETIMEDOUT,
	min:   3 * time.Second, // Idle + (Count-1)×Interval: sooner, something else saw it
	max:   8 * time.Second, // Idle + Count×Interval + 4 s
}, {
	// Unacknowledged data: the kernel retransmits it and gives up once it
	// has gone unacknowledged for 2 s (keep-alive, at its 15 s default,
	// plays no part).
	name:  "usertimeout",
	net:   tcp.Dialer{UserTimeout: 2 * time.Second},
	write: true,
	cause: syscall.ETIMEDOUT,
	min:   2*time.Second - 100*time.Millisecond,
	max:   5 * time.Second,
}, {
	// The read watchdog on a heartbeat, with keep-alive off: nothing
	// received for 1 s while a Read waits.
	name:      "watchdog",
	net:       tcp.Dialer{NoKeepAlive: true},
	opts:      []tether.Option{tether.WithReadIdleTimeout(time.Second)},
	heartbeat: true,
	cause:     tether.ErrIdleTimeout,
	min:       time.Second - 20*time.Millisecond,
	max:       3 * time.Second,
}}

// measurement is one case's result, for the summary.
type measurement struct {
	name                string
	detected, blackhole time.Duration // from the reference point; from the blackhole
	min, max            time.Duration
	reconnected         time.Duration // from removing the drop rule to Reconnected
	err                 string
}

// Each mechanism, over tcp and tls, detects a peer behind a true blackhole
// (every segment dropped in the peer's namespace, nothing sent back) within
// its bounds; while the blackhole lasts new dials time out, and once it is
// gone the Tether reconnects and carries data again.
func TestDeadPeer(t *testing.T) {
	ns := newNetns(t)
	lns := ns.listeners(t, len(mechanisms)*len(transports))
	for _, ln := range lns {
		t.Cleanup(func() { ln.Close() })
	}
	var (
		mu      sync.Mutex
		results []measurement
	)
	t.Cleanup(func() {
		if len(results) == 0 {
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "dead-peer detection over a true blackhole (%s ↔ %s):\n", ns.hostIP, ns.peerIP)
		fmt.Fprintf(&b, "%-22s %10s %14s %16s %12s  %s\n", "case", "detected", "after drop", "bound", "reconnected", "cause")
		for _, m := range results {
			fmt.Fprintf(&b, "%-22s %10v %14v %16s %12v  %s\n", m.name, m.detected.Round(time.Millisecond),
				m.blackhole.Round(time.Millisecond), fmt.Sprintf("[%v, %v]", m.min, m.max),
				m.reconnected.Round(time.Millisecond), m.err)
		}
		t.Log(b.String())
	})
	i := 0
	for _, m := range mechanisms {
		for _, tr := range transports {
			ln := lns[i]
			i++
			t.Run(m.name+"/"+tr.name, func(t *testing.T) {
				t.Parallel()
				res := testDeadPeer(t, ns, tr, m, ln)
				res.name = m.name + "/" + tr.name
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			})
		}
	}
}

func testDeadPeer(t *testing.T, ns *netns, tr transport, m mechanism, ln net.Listener) measurement {
	handle := echo
	if m.heartbeat {
		handle = e2etest.Ticker(heartbeat)
	}
	startServer(t, tr.listen(ln), handle)
	addr := ln.Addr().String()

	nd := m.net
	nd.Timeout = dialTimeout
	rec := e2etest.NewRecorder(transporttest.QuickBackoff())
	ctx, cancel := context.WithTimeout(context.Background(), e2etest.Long)
	defer cancel()
	tt, err := tether.Dial(ctx, tr.dialer(&nd), addr, rec, m.opts...)
	require.NoError(t, err)
	t.Cleanup(func() { tt.Close() })
	r := e2etest.StartReader(tt)

	// Traffic flows; an echo connection then rests, so that the last byte
	// received is the last activity.
	if m.heartbeat {
		r.WaitRead(t, "tick\n", 3)
	} else {
		_, err := tt.Write([]byte("ping\n"))
		require.NoError(t, err)
		r.WaitRead(t, "ping\n", 1)
		time.Sleep(settle)
	}

	ns.blackhole(t, addr, true)
	dropped := time.Now()
	from, ref := r.LastRead(), "last byte received"
	if m.write {
		from, ref = time.Now(), "Write"
		_, err := tt.Write([]byte("lost\n"))
		require.NoError(t, err, "Write into the socket buffer")
	}
	ev, at := rec.WaitAt(t, tether.Disconnected, 1)
	res := measurement{detected: at.Sub(from), blackhole: at.Sub(dropped), min: m.min, max: m.max, err: fmt.Sprint(ev.Err)}
	t.Logf("Disconnected %v after the %s (%v after the drop rule): %v", res.detected, ref, res.blackhole, ev.Err)
	require.ErrorIs(t, ev.Err, m.cause, "Disconnected.Err")
	require.GreaterOrEqual(t, res.detected, m.min, "detected sooner than %s can", m.name)
	require.LessOrEqual(t, res.detected, m.max, "detected late")

	// New connections go into the blackhole too: the redial times out.
	ev, _ = rec.WaitAt(t, tether.Unreachable, 1)
	require.True(t, e2etest.IsTimeout(ev.Err), "Unreachable.Err = %v, want a timeout", ev.Err)

	healed := time.Now() // a dial may get through as soon as the rule is gone
	ns.blackhole(t, addr, false)
	require.False(t, rec.AnyBefore(tether.Reconnected, healed), "Reconnected through the blackhole; events: %v", rec)
	_, back := rec.WaitAt(t, tether.Reconnected, 1)
	res.reconnected = back.Sub(healed)

	// The new connection carries data.
	if m.heartbeat {
		r.WaitRead(t, "tick\n", r.Count("tick\n")+3)
	} else {
		_, err := tt.Write([]byte("pong\n"))
		require.NoError(t, err)
		r.WaitRead(t, "pong\n", 1)
	}
	require.Equal(t, 1, rec.Count(tether.Disconnected), "Disconnected events; events: %v", rec)
	require.Nil(t, tt.Err())
	require.NoError(t, tt.Close())
	if err := r.Stopped(t); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
	return res
}
