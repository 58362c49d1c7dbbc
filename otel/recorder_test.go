package tetherotel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	tetherotel "github.com/io-tether/tether/otel"
	"github.com/io-tether/tether/tethertest"
)

// dialTime is how long each dial of the tests takes, in the bubble's
// virtual time.
const dialTime = 20 * time.Millisecond

// slowDialer dials d after dialTime.
func slowDialer(d *tethertest.Dialer) tether.Dialer {
	return tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		select {
		case <-time.After(dialTime):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return d.Dial(ctx, addr)
	})
}

// policy reconnects after a loss, waiting Generation seconds (1 s after the
// first connection's loss, 2 s after the second's), and gives up when a
// dial fails.
var policy = tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
	switch ev.Kind {
	case tether.Unreachable:
		return tether.GiveUp
	case tether.Disconnected:
		ev.Delay = time.Duration(ev.Generation) * time.Second
	}
	return tether.Reconnect
})

// TestRecorderTether drives a Tether through a connect, two losses, a
// failed dial and a give-up, and reads every instrument back.
//
// The timeline, in virtual time from Dial:
//
//	0.02 s   connected (a dial takes 20 ms)
//	10.02 s  the server resets the connection: it lived 10 s
//	11.04 s  reconnected, after a 1 s delay and a dial: an outage of 1.02 s
//	16.04 s  the server closes the connection: it lived 5 s
//	18.06 s  after a 2 s delay, the dial is refused: give-up, after an
//	         outage of 2.02 s
func TestRecorderTether(t *testing.T) {
	tests := []struct {
		name string
		opts []tetherotel.Option
		addr []string // the common attributes it adds
	}{
		{"address", nil, []string{"server.address=server", "server.port=7000"}},
		{"without-address", []tetherotel.Option{tetherotel.WithoutAddress()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				defer mp.Shutdown(context.Background())
				rec, err := tetherotel.New(mp, append(tt.opts, tetherotel.WithTransport("pipe"))...)
				require.NoError(t, err)

				var d tethertest.Dialer
				tn, err := tether.Dial(t.Context(), slowDialer(&d), "server:7000", tether.Chain(policy, middleware.Metrics(rec)))
				require.NoError(t, err)
				defer tn.Close()
				read := make(chan error, 1)
				go func() {
					_, err := io.Copy(io.Discard, tn)
					read <- err
				}()

				s1, err := d.Accept(t.Context())
				require.NoError(t, err)
				time.Sleep(10 * time.Second)
				s1.Reset()
				s2, err := d.Accept(t.Context())
				require.NoError(t, err)
				synctest.Wait() // the Tether takes the connection
				time.Sleep(5 * time.Second)
				d.FailNext(1, nil)
				require.NoError(t, s2.Close())
				<-tn.Done()
				require.ErrorIs(t, <-read, syscall.ECONNREFUSED, "the Read after the give-up")
				require.Equal(t, 3, d.Dials())

				// a returns the common attributes and extra, as attrString
				// writes them.
				a := func(extra ...string) string {
					all := append([]string{"tether.transport=pipe"}, tt.addr...)
					all = append(all, extra...)
					slices.Sort(all)
					return "{" + strings.Join(all, ",") + "}"
				}
				require.Equal(t, []string{
					"tether.connection.duration s " + a("error.type=connection_reset") + " count=1 sum=10 buckets=[10:1]",
					"tether.connection.duration s " + a("error.type=eof") + " count=1 sum=5 buckets=[5:1]",
					"tether.decisions {decision} " + a("tether.action=accept") + " 2",
					"tether.decisions {decision} " + a("tether.action=give-up") + " 1",
					"tether.decisions {decision} " + a("tether.action=reconnect") + " 2",
					"tether.dial.duration s " + a("error.type=connection_refused") + " count=1 sum=0.02 buckets=[0.025:1]",
					"tether.dial.duration s " + a() + " count=2 sum=0.04 buckets=[0.025:2]",
					"tether.dial.failures {dial} " + a("error.type=connection_refused") + " 1",
					"tether.events {event} " + a("tether.event.kind=connected") + " 1",
					"tether.events {event} " + a("tether.event.kind=disconnected") + " 2",
					"tether.events {event} " + a("tether.event.kind=reconnected") + " 1",
					"tether.events {event} " + a("tether.event.kind=unreachable") + " 1",
					"tether.outage.duration s " + a("error.type=connection_refused", "tether.outage.recovered=false") + " count=1 sum=2.02 buckets=[2.5:1]",
					"tether.outage.duration s " + a("tether.outage.recovered=true") + " count=1 sum=1.02 buckets=[2.5:1]",
				}, collect(t, reader))
			})
		})
	}
}

// collect reads reader and returns one line per data point, sorted:
// "name unit {attributes} value", or for a histogram "name unit
// {attributes} count=N sum=S buckets=[le:n ...]", listing the buckets with
// a count (not cumulative, as OpenTelemetry has them; "+Inf" for the last).
// It checks that counters are monotonic cumulative sums, that histograms
// are cumulative, and that every instrument is in the Meter ScopeName.
func collect(t *testing.T, reader sdkmetric.Reader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, tetherotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			require.NotEmpty(t, m.Description, m.Name)
			prefix := m.Name + " " + m.Unit + " "
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				require.Equal(t, m.Name != "tether.count", data.IsMonotonic, m.Name)
				require.Equal(t, metricdata.CumulativeTemporality, data.Temporality, m.Name)
				for _, p := range data.DataPoints {
					lines = append(lines, prefix+attrString(p.Attributes)+" "+strconv.FormatInt(p.Value, 10))
				}
			case metricdata.Histogram[float64]:
				require.Equal(t, metricdata.CumulativeTemporality, data.Temporality, m.Name)
				for _, p := range data.DataPoints {
					var buckets []string
					for i, n := range p.BucketCounts {
						if n == 0 {
							continue
						}
						le := "+Inf"
						if i < len(p.Bounds) {
							le = strconv.FormatFloat(p.Bounds[i], 'g', -1, 64)
						}
						buckets = append(buckets, le+":"+strconv.FormatUint(n, 10))
					}
					lines = append(lines, fmt.Sprintf("%s%s count=%d sum=%.6g buckets=[%s]",
						prefix, attrString(p.Attributes), p.Count, p.Sum, strings.Join(buckets, " ")))
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// attrString returns s as {k=v,...}, sorted by key.
func attrString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// StateObserver counts the Tethers in each state and records the time they
// spent in each, Close included, which no handler sees.
func TestStateObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer mp.Shutdown(context.Background())
		rec, err := tetherotel.New(mp, tetherotel.WithTransport("pipe"))
		require.NoError(t, err)

		var d tethertest.Dialer
		delay := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected {
				ev.Delay = time.Minute
			}
			return tether.Reconnect
		})
		a, err := tether.Dial(t.Context(), slowDialer(&d), "server:7000", delay, rec.StateObserver())
		require.NoError(t, err)
		defer a.Close()
		b, err := tether.Dial(t.Context(), slowDialer(&d), "server:7000", delay, rec.StateObserver())
		require.NoError(t, err)
		c, err := tether.Dial(t.Context(), &d, "server:7000", nil, tether.WithLazy(), rec.StateObserver())
		require.NoError(t, err)
		defer c.Close()
		sa, err := d.Accept(t.Context())
		require.NoError(t, err)
		time.Sleep(10 * time.Second)
		sa.Reset()
		go a.Read(make([]byte, 1)) // notices the loss: a minute's delay
		synctest.Wait()
		require.NoError(t, b.Close()) // after 10 s Ready
		// a is in its delay, b closed, c lazy. Connecting was left three
		// times: after a's and b's dials in Dial (20 ms each), and after
		// the decision on a's loss (at once). a was Ready from 0.02 s to
		// 10.04 s, b from 0.04 s to 10.04 s.
		require.Equal(t, []string{
			"tether.count {tether} {tether.state=connecting,tether.transport=pipe} 0",
			"tether.count {tether} {tether.state=idle,tether.transport=pipe} 1",
			"tether.count {tether} {tether.state=ready,tether.transport=pipe} 0",
			"tether.count {tether} {tether.state=transient-failure,tether.transport=pipe} 1",
			"tether.state.duration s {tether.state=connecting,tether.transport=pipe} count=3 sum=0.04 buckets=[0.01:1 0.1:2]",
			"tether.state.duration s {tether.state=ready,tether.transport=pipe} count=2 sum=20.02 buckets=[10:1 30:1]",
		}, collect(t, reader))
	})
}
