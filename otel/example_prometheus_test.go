package tetherotel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	tetherotel "github.com/io-tether/tether/otel"
	"github.com/io-tether/tether/tcp"
)

// A service serves its Tethers' metrics to Prometheus on /metrics, through
// OpenTelemetry's Prometheus exporter. Here the server drops the first
// connection after "hello, ", the Tether reconnects, and a scrape of
// /metrics counts one reconnect and one outage.
func Example_prometheus() {
	// OpenTelemetry, with a Prometheus exporter as its reader.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		fmt.Println(err)
		return
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())

	// /metrics on a loopback port.
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(metricsLn)
	defer srv.Close()

	// The Tether's metrics go to the provider.
	rec, err := tetherotel.New(mp, tetherotel.WithTransport("tcp"))
	if err != nil {
		fmt.Println(err)
		return
	}
	h := tether.Chain(nil,
		middleware.Metrics(rec),
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond}),
	)

	ln, stop, err := helloWorldServer()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	t, err := tcp.Dial(context.Background(), ln.Addr().String(), h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	buf := make([]byte, len("hello, world"))
	if _, err := io.ReadFull(t, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("read %q\n", buf)

	// Scrape /metrics, as Prometheus does.
	families, err := scrape("http://" + metricsLn.Addr().String() + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range families["tether_events_total"].GetMetric() {
		fmt.Printf("tether_events_total{tether_event_kind=%q} %g\n", label(m, "tether_event_kind"), m.GetCounter().GetValue())
	}
	for _, m := range families["tether_outage_duration_seconds"].GetMetric() {
		fmt.Printf("tether_outage_duration_seconds{tether_outage_recovered=%q} count %d, transport %s\n",
			label(m, "tether_outage_recovered"), m.GetHistogram().GetSampleCount(), label(m, "tether_transport"))
	}
	// Output:
	// read "hello, world"
	// tether_events_total{tether_event_kind="connected"} 1
	// tether_events_total{tether_event_kind="disconnected"} 1
	// tether_events_total{tether_event_kind="reconnected"} 1
	// tether_outage_duration_seconds{tether_outage_recovered="true"} count 1, transport tcp
}

// helloWorldServer listens on a loopback port: it writes "hello, " to its
// first connection and closes it, and "world" to the others. stop closes
// it and its connections.
func helloWorldServer() (ln net.Listener, stop func(), err error) {
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if i == 0 {
				c.Write([]byte("hello, "))
				c.Close()
				continue
			}
			conns = append(conns, c)
			c.Write([]byte("world"))
		}
	}()
	return ln, func() {
		ln.Close()
		<-done
	}, nil
}

// scrape gets url and parses the Prometheus text exposition it returns.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// label returns the value of m's label name.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
