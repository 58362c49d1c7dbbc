package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// calls is a MetricsRecorder that records its calls as strings.
type calls struct {
	mu  sync.Mutex
	got []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	c.got = append(c.got, s)
	c.mu.Unlock()
}

func (c *calls) CountEvent(ev *tether.Event, a tether.Action) {
	c.add("event " + ev.Kind.String() + " " + a.String())
}
func (c *calls) ObserveDial(ev *tether.Event, d time.Duration, ok bool) {
	c.add("dial " + d.String() + map[bool]string{true: " ok", false: " failed"}[ok] + " " + ev.Dialed)
}
func (c *calls) ObserveOutage(ev *tether.Event, d time.Duration, recovered bool) {
	c.add("outage " + d.String() + map[bool]string{true: " recovered", false: " lost"}[recovered] + " " + ev.Kind.String())
}
func (c *calls) ObserveConnection(ev *tether.Event, lifetime time.Duration) {
	c.add("connection " + lifetime.String() + " " + ev.Dialed)
}

func (c *calls) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func TestMetricsCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		tests := []struct {
			name string
			ev   tether.Event
			next tether.Action
			want []string
		}{
			{"connected", tether.Event{Kind: tether.Connected, Addr: addrA, Dialed: addrA, DialTime: 3 * time.Millisecond, Since: now.Add(-time.Second)}, tether.Reconnect,
				[]string{"event connected reconnect", "dial 3ms ok " + addrA}},
			{"disconnected", tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrB, Dialed: addrA, Uptime: 7 * time.Second, Since: now}, tether.Reconnect,
				[]string{"event disconnected reconnect", "connection 7s " + addrA}},
			{"lost-give-up", tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA, Uptime: time.Minute, Since: now}, tether.GiveUp,
				[]string{"event disconnected give-up", "connection 1m0s " + addrA, "outage 0s lost disconnected"}},
			{"unreachable", tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Dialed: addrA, DialTime: time.Millisecond, Since: now.Add(-time.Second)}, tether.Reconnect,
				[]string{"event unreachable reconnect", "dial 1ms failed " + addrA}},
			{"reconnected", tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, DialTime: 2 * time.Millisecond, Since: now.Add(-5 * time.Second)}, tether.Reconnect,
				[]string{"event reconnected reconnect", "dial 2ms ok " + addrA, "outage 5s recovered reconnected"}},
			{"give-up", tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Dialed: addrA, DialTime: time.Millisecond, Since: now.Add(-time.Minute)}, tether.GiveUp,
				[]string{"event unreachable give-up", "dial 1ms failed " + addrA, "outage 1m0s lost unreachable"}},
			{"rejected", tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, DialTime: time.Millisecond, Since: now.Add(-time.Minute)}, tether.GiveUp,
				[]string{"event reconnected give-up", "dial 1ms ok " + addrA, "outage 1m0s lost reconnected"}},
		}
		for _, tt := range tests {
			c := &calls{}
			a, _ := handle(middleware.Metrics(c)(answer(tt.next, nil)), tt.ev)
			require.Equal(t, tt.next, a, tt.name)
			require.Equal(t, tt.want, c.all(), tt.name)
		}
	})
}

// expvarJSON is the JSON that ExpvarMetrics publishes.
type expvarJSON struct {
	Events            map[string]int64 `json:"events"`
	Actions           map[string]int64 `json:"actions"`
	DialsFailed       int64            `json:"dials_failed"`
	OutagesRecovered  int64            `json:"outages_recovered"`
	DialSeconds       histogramJSON    `json:"dial_seconds"`
	OutageSeconds     histogramJSON    `json:"outage_seconds"`
	ConnectionSeconds histogramJSON    `json:"connection_seconds"`
}

type histogramJSON struct {
	Count   int64            `json:"count"`
	Sum     float64          `json:"sum"`
	Buckets map[string]int64 `json:"buckets"`
}

var publishes atomic.Uint64

func TestExpvarMetrics(t *testing.T) {
	var m middleware.ExpvarMetrics // the zero value is ready
	var empty expvarJSON
	require.NoError(t, json.Unmarshal([]byte(m.String()), &empty), "JSON: %s", m.String())
	require.Zero(t, empty.DialSeconds.Count)
	require.Equal(t, int64(0), empty.DialSeconds.Buckets["+Inf"])

	unreachable := &tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Dialed: addrA}
	reconnected := &tether.Event{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA}
	disconnected := &tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA}
	m.CountEvent(unreachable, tether.Reconnect)
	m.CountEvent(unreachable, tether.GiveUp)
	m.CountEvent(reconnected, tether.Reconnect)
	m.ObserveDial(unreachable, 2*time.Millisecond, false)
	m.ObserveDial(reconnected, 700*time.Millisecond, true)
	m.ObserveOutage(reconnected, 90*time.Second, true)
	m.ObserveOutage(unreachable, 2*time.Hour, false)
	m.ObserveConnection(disconnected, 20*time.Second)

	var got expvarJSON
	require.NoError(t, json.Unmarshal([]byte(m.String()), &got), "JSON: %s", m.String())
	require.Equal(t, map[string]int64{"unreachable": 2, "reconnected": 1}, got.Events)
	// An accepted connection is an "accept", as Logging says, not a
	// "reconnect".
	require.Equal(t, map[string]int64{"reconnect": 1, "give-up": 1, "accept": 1}, got.Actions)
	require.Equal(t, int64(1), got.DialsFailed)
	require.Equal(t, int64(1), got.OutagesRecovered)

	require.Equal(t, int64(2), got.DialSeconds.Count)
	require.InDelta(t, 0.702, got.DialSeconds.Sum, 1e-9)
	for le, want := range map[string]int64{"0.001": 0, "0.005": 1, "0.5": 1, "1": 2, "+Inf": 2} {
		require.Equal(t, want, got.DialSeconds.Buckets[le], "dial bucket le=%s", le)
	}
	for le, want := range map[string]int64{"60": 0, "300": 1, "3600": 1, "+Inf": 2} {
		require.Equal(t, want, got.OutageSeconds.Buckets[le], "outage bucket le=%s", le)
	}
	require.Len(t, got.OutageSeconds.Buckets, 16)
	require.Equal(t, int64(1), got.ConnectionSeconds.Count)
	require.InDelta(t, 20, got.ConnectionSeconds.Sum, 1e-9)
	for le, want := range map[string]int64{"10": 0, "30": 1, "+Inf": 1} {
		require.Equal(t, want, got.ConnectionSeconds.Buckets[le], "connection bucket le=%s", le)
	}

	// It is an expvar.Var, to publish.
	// Each run needs its own name: expvar.Publish panics on a reused one.
	name := "tether-middleware-test-" + strconv.FormatUint(publishes.Add(1), 10)
	expvar.Publish(name, &m)
	require.Equal(t, m.String(), expvar.Get(name).String())
}

func TestExpvarMetricsConcurrent(t *testing.T) {
	var m middleware.ExpvarMetrics
	h := middleware.Metrics(&m)(reconnect)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, DialTime: time.Millisecond})
				_ = m.String()
			}
		})
	}
	wg.Wait()
	var got expvarJSON
	require.NoError(t, json.Unmarshal([]byte(m.String()), &got))
	require.Equal(t, int64(800), got.Events["unreachable"])
	require.Equal(t, int64(800), got.DialSeconds.Count)
}

// TestMetricsTether counts a real Tether's outage.
func TestMetricsTether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &calls{}
		n := servers(t, map[string]func(net.Conn){addrA: hold})
		tn := tethertest.Dial(t, n, addrA, tether.Chain(nil, middleware.Metrics(c),
			middleware.Backoff(middleware.BackoffConfig{BaseDelay: time.Second, Multiplier: 2, Jitter: 0.001})))
		done := drain(tn)
		time.Sleep(10 * time.Second)
		n.Down(addrA)
		time.Sleep(time.Second + 500*time.Millisecond) // two failed dials: at most 0.2 ms, then 1 s after
		n.Up(addrA)
		time.Sleep(3 * time.Second) // the third dial, 2 s after the second, succeeds
		require.NoError(t, tn.Close())
		<-done
		got := c.all()
		require.Equal(t, []string{
			"event connected reconnect", "dial 0s ok " + addrA,
			"event disconnected reconnect", "connection 10s " + addrA,
			"event unreachable reconnect", "dial 0s failed " + addrA,
			"event unreachable reconnect", "dial 0s failed " + addrA,
		}, got[:8])
		require.Equal(t, "event reconnected reconnect", got[8])
		require.Equal(t, "dial 0s ok "+addrA, got[9])
		require.Regexp(t, `^outage (2\.99|3\.00)\d*s recovered reconnected$`, got[10], "about 0 + 1 s + 2 s")
		require.Len(t, got, 11)
	})
}

// ExpvarMetrics.StateObserver records the time a Tether spent in each
// state, as it leaves it.
func TestExpvarMetricsStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m middleware.ExpvarMetrics
		n := servers(t, map[string]func(net.Conn){addrA: func(c net.Conn) {}})
		tn := tethertest.Dial(t, n, addrA, nil, m.StateObserver())
		time.Sleep(time.Minute)
		tn.Close()
		var got struct {
			States map[string]histogramJSON `json:"state_seconds"`
		}
		require.NoError(t, json.Unmarshal([]byte(m.String()), &got), "JSON: %s", m.String())
		require.Equal(t, int64(1), got.States["connecting"].Count)
		require.Equal(t, int64(1), got.States["ready"].Count)
		require.InDelta(t, 60, got.States["ready"].Sum, 1e-9)
		require.Zero(t, got.States["idle"].Count)
		require.Zero(t, got.States["transient-failure"].Count)
	})
}

// Metrics records a connection's lifetime once, when it is lost: not on a
// Disconnected event that the handlers answered with Ignore (the
// connection is kept).
func TestMetricsIgnoreIsNoLoss(t *testing.T) {
	var m middleware.ExpvarMetrics
	ignoreTimeouts := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if errors.Is(ev.Err, errRefused) {
			return tether.Ignore
		}
		return tether.Reconnect
	})
	h := middleware.Metrics(&m)(ignoreTimeouts)
	handle(h, tether.Event{Kind: tether.Disconnected, Err: errRefused, Addr: addrA, Dialed: addrA, Uptime: time.Minute}) // kept
	handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA, Uptime: 2 * time.Minute}) // lost
	t.Log(m.String())
	require.Contains(t, m.String(), `"connection_seconds": {"buckets": {"0.001": 0, "0.005": 0, "0.01": 0, "0.05": 0, "0.1": 0, "0.5": 0, "1": 0, "5": 0, "10": 0, "30": 0, "60": 0, "300": 1`,
		"one connection was lost, after 2 minutes")
}

// ExpvarMetrics' sums do not wrap negative: in nanoseconds they did after
// 292 years of summed durations (10,000 Tethers whose connections live a
// day get there in 11 days).
func TestExpvarSumsDoNotOverflow(t *testing.T) {
	var m middleware.ExpvarMetrics
	for range 2 {
		m.ObserveConnection(&tether.Event{}, 150*365*24*time.Hour)
	}
	s := m.String()
	t.Log(s)
	require.NotContains(t, s, `"sum": -`)
}
