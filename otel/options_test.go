package tetherotel_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	tetherotel "github.com/io-tether/tether/otel"
	"github.com/io-tether/tether/tethertest"
)

// newRecorder returns a Recorder on a fresh MeterProvider and its reader.
func newRecorder(t *testing.T, opts ...tetherotel.Option) (*tetherotel.Recorder, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	rec, err := tetherotel.New(mp, opts...)
	require.NoError(t, err)
	return rec, reader
}

// TestAddressAttributes checks how the dialed address becomes
// server.address and server.port.
func TestAddressAttributes(t *testing.T) {
	tests := []struct {
		dialed string
		want   string
	}{
		{"127.0.0.1:7001", "{server.address=127.0.0.1,server.port=7001}"},
		{"[::1]:443", "{server.address=::1,server.port=443}"},
		{"example.test:https", "{server.address=example.test}"}, // a named port is not a number
		{"/run/app.sock", "{server.address=/run/app.sock}"},     // a Unix socket
		{"", "{}"},
	}
	for _, tt := range tests {
		rec, reader := newRecorder(t)
		rec.ObserveDial(&tether.Event{Kind: tether.Connected, Addr: tt.dialed, Dialed: tt.dialed}, time.Millisecond, true)
		require.Equal(t, []string{"tether.dial.duration s " + tt.want + " count=1 sum=0.001 buckets=[0.001:1]"},
			collect(t, reader), "Dialed %q", tt.dialed)
	}
}

// TestTransportAttribute checks that without WithTransport there is no
// transport attribute, and that Recorders on one provider share the
// instruments.
func TestTransportAttribute(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	plain, err := tetherotel.New(mp, tetherotel.WithoutAddress())
	require.NoError(t, err)
	tls, err := tetherotel.New(mp, tetherotel.WithoutAddress(), tetherotel.WithTransport("tls"))
	require.NoError(t, err)
	ev := &tether.Event{Kind: tether.Connected, Addr: "127.0.0.1:7001", Dialed: "127.0.0.1:7001"}
	plain.CountEvent(ev, tether.Reconnect)
	tls.CountEvent(ev, tether.Reconnect)
	tls.CountEvent(ev, tether.Reconnect)
	require.Equal(t, []string{
		"tether.decisions {decision} {tether.action=accept,tether.transport=tls} 2",
		"tether.decisions {decision} {tether.action=accept} 1",
		"tether.events {event} {tether.event.kind=connected,tether.transport=tls} 2",
		"tether.events {event} {tether.event.kind=connected} 1",
	}, collect(t, reader))
}

func TestNewBadOption(t *testing.T) {
	rec, err := tetherotel.New(noop.NewMeterProvider(), tetherotel.WithTransport(""))
	require.Nil(t, rec)
	require.EqualError(t, err, "tether/otel: WithTransport: empty transport name")
	_, err = tetherotel.New(noop.NewMeterProvider(), nil) // a nil Option is ignored
	require.NoError(t, err)
}

// failingMeter fails to make histograms.
type failingMeter struct{ noop.Meter }

var errNoHistogram = errors.New("no histograms here")

func (failingMeter) Float64Histogram(string, ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return nil, errNoHistogram
}

type failingProvider struct{ noop.MeterProvider }

func (failingProvider) Meter(string, ...metric.MeterOption) metric.Meter { return failingMeter{} }

func TestNewInstrumentError(t *testing.T) {
	rec, err := tetherotel.New(failingProvider{})
	require.Nil(t, rec)
	require.ErrorIs(t, err, errNoHistogram)
	require.True(t, strings.HasPrefix(err.Error(), "tether/otel: "), "New(failingProvider{}) = %q", err)
}

// TestZeroRecorder checks that a Recorder not made by New, a nil one, and
// a nil event record nothing and do not panic.
func TestZeroRecorder(t *testing.T) {
	ev := &tether.Event{Kind: tether.Unreachable, Err: io.EOF, Addr: "a:1", Dialed: "a:1"}
	for _, r := range []*tetherotel.Recorder{nil, {}} {
		r.CountEvent(ev, tether.Reconnect)
		r.ObserveDial(ev, time.Second, false)
		r.ObserveOutage(ev, time.Second, false)
		r.ObserveConnection(ev, time.Second)
	}
	rec, reader := newRecorder(t)
	rec.CountEvent(nil, tether.Reconnect)
	rec.ObserveDial(nil, time.Second, false)
	rec.ObserveOutage(nil, time.Second, false)
	rec.ObserveConnection(nil, time.Second)
	require.Empty(t, collect(t, reader))
}

// TestGlobalProvider checks that New(nil) records on the global
// MeterProvider. (It is the only test that sets the global provider.)
func TestGlobalProvider(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	otel.SetMeterProvider(mp)
	rec, err := tetherotel.New(nil)
	require.NoError(t, err)

	rec.ObserveConnection(&tether.Event{Kind: tether.Disconnected, Err: io.EOF, Dialed: "a:1"}, 2*time.Second)
	require.Equal(t, []string{
		"tether.connection.duration s {error.type=eof,server.address=a,server.port=1} count=1 sum=2 buckets=[5:1]",
	}, collect(t, reader))
}

// TestMetricsConformance runs middleware.Metrics with a Recorder through
// tethertest's rules for middleware (concurrent use among them).
func TestMetricsConformance(t *testing.T) {
	rec, reader := newRecorder(t, tetherotel.WithTransport("tcp"))
	tethertest.TestMiddleware(t, middleware.Metrics(rec))
	require.NotEmpty(t, collect(t, reader))
}

// TestConcurrent records from many goroutines at once (run with -race)
// and checks that no measurement is lost.
func TestConcurrent(t *testing.T) {
	rec, reader := newRecorder(t, tetherotel.WithoutAddress())
	h := tether.Chain(nil, middleware.Metrics(rec))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				ev := tether.Event{Kind: tether.Reconnected, Addr: "a:1", Dialed: "a:1", DialTime: time.Millisecond,
					Since: time.Now().Add(-time.Minute)}
				h.HandleDisconnect(context.Background(), &ev)
			}
		})
	}
	wg.Wait()
	got := collect(t, reader)
	require.Contains(t, got, "tether.events {event} {tether.event.kind=reconnected} 800")
	require.Contains(t, got, "tether.decisions {decision} {tether.action=accept} 800")
	require.Contains(t, got, "tether.dial.duration s {} count=800 sum=0.8 buckets=[0.001:800]")
}

// TestBuckets checks the bucket bounds that the package documentation
// lists.
func TestBuckets(t *testing.T) {
	rec, reader := newRecorder(t)
	ev := &tether.Event{Kind: tether.Disconnected, Err: io.EOF, Dialed: "a:1"}
	rec.ObserveDial(ev, time.Second, true)
	rec.ObserveOutage(ev, time.Second, true)
	rec.ObserveConnection(ev, time.Second)
	durations := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	lifetimes := []float64{0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600}
	want := map[string][]float64{
		"tether.dial.duration":       durations,
		"tether.outage.duration":     durations,
		"tether.connection.duration": lifetimes,
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string][]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			require.True(t, ok, "%s: %T", m.Name, m.Data)
			require.Len(t, h.DataPoints, 1, m.Name)
			got[m.Name] = h.DataPoints[0].Bounds
		}
	}
	require.Equal(t, want, got)
}
