package tetherotel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
)

// ScopeName is the name of the instrumentation scope (the Meter) that the
// instruments belong to: this module's import path.
const ScopeName = "github.com/io-tether/tether/otel"

// The instrument names and units; the package documentation tables them.
const (
	eventsName      = "tether.events"
	decisionsName   = "tether.decisions"
	dialFailsName   = "tether.dial.failures"
	dialName        = "tether.dial.duration"
	outageName      = "tether.outage.duration"
	connectionName  = "tether.connection.duration"
	countName       = "tether.count"
	stateName       = "tether.state.duration"
	tetherUnit      = "{tether}"
	secondsUnit     = "s"
	eventUnit       = "{event}"
	decisionUnit    = "{decision}"
	dialFailureUnit = "{dial}"
)

// The attribute keys.
const (
	// TransportKey names the transport, as WithTransport gives it.
	TransportKey = attribute.Key("tether.transport")
	// EventKindKey is the kind of an event (tether.EventKind.String).
	EventKindKey = attribute.Key("tether.event.kind")
	// ActionKey is the decision the handlers took (middleware.Decision).
	ActionKey = attribute.Key("tether.action")
	// RecoveredKey says whether an outage ended in a reconnect (true) or a
	// give-up (false).
	RecoveredKey = attribute.Key("tether.outage.recovered")
	// ServerAddressKey is the host of the address dialed (Event.Dialed),
	// or all of it when it has no port, as a Unix socket's path does; as
	// in OpenTelemetry's semantic conventions for clients.
	ServerAddressKey = attribute.Key("server.address")
	// ServerPortKey is the port of the address dialed, when it has a
	// numeric one.
	ServerPortKey = attribute.Key("server.port")
	// StateKey is a Tether's state (tether.State.String).
	StateKey = attribute.Key("tether.state")
	// ErrorTypeKey classifies an error (see ErrorType), as in
	// OpenTelemetry's semantic conventions.
	ErrorTypeKey = attribute.Key("error.type")
)

// durationBuckets are the upper bounds, in seconds, of the buckets of the
// dial and outage duration histograms: from a millisecond (a dial on a LAN)
// to ten minutes (a long outage); longer ones fall in the last, unbounded
// bucket.
var durationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600,
}

// lifetimeBuckets are the upper bounds, in seconds, of the buckets of the
// connection lifetime histogram: from 10 ms (a server that accepts and
// closes at once) through the stability period (about a second) to a day.
var lifetimeBuckets = []float64{
	0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600,
	1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600,
}

// An Option configures a Recorder.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	transport    string
	noAddress    bool
	errTransport bool // WithTransport was given an empty name
}

// WithTransport adds the attribute tether.transport=name to every
// measurement: the name of the dialer, such as "tcp", "tls", "quic" or
// "unix". Without it the measurements have no transport attribute: a
// Recorder cannot tell which dialer a Tether uses, so give each dialer's
// Tethers a Recorder of their own (they share the instruments). An empty
// name makes New fail.
func WithTransport(name string) Option {
	return optionFunc(func(c *config) {
		c.transport = name
		c.errTransport = name == ""
	})
}

// WithoutAddress leaves the address attributes (server.address and
// server.port) out of every measurement, for fleets that dial so many
// addresses that a time series per address costs too much.
func WithoutAddress() Option {
	return optionFunc(func(c *config) { c.noAddress = true })
}

// A Recorder is a middleware.MetricsRecorder that records on OpenTelemetry
// instruments: give it to middleware.Metrics. The package documentation
// lists the instruments and their attributes.
//
// A Recorder keeps no per-Tether state and is safe for concurrent use: one
// serves any number of Tethers. Its zero value records nothing; make one
// with New.
type Recorder struct {
	common    []attribute.KeyValue // the transport, if any
	noAddress bool

	events     metric.Int64Counter
	decisions  metric.Int64Counter
	dialFails  metric.Int64Counter
	dials      metric.Float64Histogram
	outages    metric.Float64Histogram
	lifetimes  metric.Float64Histogram
	count      metric.Int64UpDownCounter
	states     metric.Float64Histogram
	registered bool
}

var _ middleware.MetricsRecorder = (*Recorder)(nil)

// New returns a Recorder whose instruments come from mp's Meter named
// ScopeName. A nil mp is the global MeterProvider, otel.GetMeterProvider().
// Several Recorders on one provider share the instruments.
//
// New fails if an option is bad or mp cannot make an instrument.
func New(mp metric.MeterProvider, opts ...Option) (*Recorder, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.errTransport {
		return nil, errors.New("tether/otel: WithTransport: empty transport name")
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	r := &Recorder{noAddress: c.noAddress}
	if c.transport != "" {
		r.common = []attribute.KeyValue{TransportKey.String(c.transport)}
	}

	var errs [8]error
	r.events, errs[0] = m.Int64Counter(eventsName, metric.WithUnit(eventUnit),
		metric.WithDescription("Events of the Tethers: connected, disconnected, unreachable, reconnected."))
	r.decisions, errs[1] = m.Int64Counter(decisionsName, metric.WithUnit(decisionUnit),
		metric.WithDescription("Decisions the handlers took on the events: reconnect, give-up, ignore."))
	r.dialFails, errs[2] = m.Int64Counter(dialFailsName, metric.WithUnit(dialFailureUnit),
		metric.WithDescription("Dials that failed (OnConnect included)."))
	r.dials, errs[3] = m.Float64Histogram(dialName, metric.WithUnit(secondsUnit),
		metric.WithDescription("Duration of the dials, OnConnect included; error.type is set on the failed ones."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	r.outages, errs[4] = m.Float64Histogram(outageName, metric.WithUnit(secondsUnit),
		metric.WithDescription("Duration of the outages, from the loss of a connection (or the start of Dial) to a reconnect or a give-up."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	r.lifetimes, errs[5] = m.Float64Histogram(connectionName, metric.WithUnit(secondsUnit),
		metric.WithDescription("Lifetime of the lost connections, from their acceptance to their loss."),
		metric.WithExplicitBucketBoundaries(lifetimeBuckets...))
	r.count, errs[6] = m.Int64UpDownCounter(countName, metric.WithUnit(tetherUnit),
		metric.WithDescription("Tethers in each state (tether.state), from the Tethers given the Recorder's StateObserver; closed ones are not counted."))
	r.states, errs[7] = m.Float64Histogram(stateName, metric.WithUnit(secondsUnit),
		metric.WithDescription("Time the Tethers spent in each state (tether.state) before they left it."),
		metric.WithExplicitBucketBoundaries(lifetimeBuckets...))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("tether/otel: %w", err)
	}
	r.registered = true
	return r, nil
}

// CountEvent implements middleware.MetricsRecorder: it adds 1 to
// tether.events and to tether.decisions.
func (r *Recorder) CountEvent(ev *tether.Event, a tether.Action) {
	if !r.ok(ev) {
		return
	}
	ctx := context.Background()
	attrs := r.attrs(ev, EventKindKey.String(ev.Kind.String()))
	r.events.Add(ctx, 1, metric.WithAttributes(attrs...))
	attrs[len(attrs)-1] = ActionKey.String(middleware.Decision(ev.Kind, a)) // WithAttributes copied attrs
	r.decisions.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// ObserveDial implements middleware.MetricsRecorder: it records d on
// tether.dial.duration, and counts a failed dial on tether.dial.failures.
func (r *Recorder) ObserveDial(ev *tether.Event, d time.Duration, ok bool) {
	if !r.ok(ev) {
		return
	}
	ctx := context.Background()
	if ok {
		r.dials.Record(ctx, d.Seconds(), metric.WithAttributes(r.attrs(ev)...))
		return
	}
	opt := metric.WithAttributes(r.attrs(ev, ErrorTypeKey.String(ErrorType(ev.Err)))...)
	r.dials.Record(ctx, d.Seconds(), opt)
	r.dialFails.Add(ctx, 1, opt)
}

// ObserveOutage implements middleware.MetricsRecorder: it records d on
// tether.outage.duration, with error.type set from the event's error when
// the outage ended in a give-up.
func (r *Recorder) ObserveOutage(ev *tether.Event, d time.Duration, recovered bool) {
	if !r.ok(ev) {
		return
	}
	extra := []attribute.KeyValue{RecoveredKey.Bool(recovered)}
	if !recovered && ev.Err != nil {
		extra = append(extra, ErrorTypeKey.String(ErrorType(ev.Err)))
	}
	r.outages.Record(context.Background(), d.Seconds(), metric.WithAttributes(r.attrs(ev, extra...)...))
}

// ObserveConnection implements middleware.MetricsRecorder: it records
// lifetime on tether.connection.duration, with error.type set from the
// cause of the loss.
func (r *Recorder) ObserveConnection(ev *tether.Event, lifetime time.Duration) {
	if !r.ok(ev) {
		return
	}
	var extra []attribute.KeyValue
	if ev.Err != nil {
		extra = append(extra, ErrorTypeKey.String(ErrorType(ev.Err)))
	}
	r.lifetimes.Record(context.Background(), lifetime.Seconds(), metric.WithAttributes(r.attrs(ev, extra...)...))
}

// ok reports whether r can record ev: r was made by New and ev is not nil.
func (r *Recorder) ok(ev *tether.Event) bool {
	return r != nil && r.registered && ev != nil
}

// attrs returns the attributes of a measurement of ev: the transport, the
// address dialed, then extra.
func (r *Recorder) attrs(ev *tether.Event, extra ...attribute.KeyValue) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, len(r.common)+2+len(extra))
	attrs = append(attrs, r.common...)
	if !r.noAddress {
		attrs = appendAddress(attrs, ev.Dialed)
	}
	return append(attrs, extra...)
}

// appendAddress appends the attributes of addr: server.address (the host,
// or all of addr if it has no port, as a Unix socket's path) and
// server.port (if addr has a numeric port).
func appendAddress(attrs []attribute.KeyValue, addr string) []attribute.KeyValue {
	if addr == "" {
		return attrs
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return append(attrs, ServerAddressKey.String(addr))
	}
	attrs = append(attrs, ServerAddressKey.String(host))
	if p, err := strconv.ParseUint(port, 10, 16); err == nil {
		attrs = append(attrs, ServerPortKey.Int(int(p)))
	}
	return attrs
}

// StateObserver returns an option for tether.Dial (tether.WithStateObserver)
// that records the Tether's states on r: tether.count counts the Tethers in
// each state (a closed one leaves the count), and tether.state.duration the
// time spent in each state, measured when the Tether leaves it. Unlike
// middleware.Metrics, which sees only events, it sees every change: the end
// of a backoff delay, Close. Both carry r's transport attribute and
// tether.state; the address is not known to a state change.
//
//	rec, _ := tetherotel.New(nil, tetherotel.WithTransport("tcp"))
//	t, err := tcp.Dial(ctx, addr, tether.Chain(nil, middleware.Metrics(rec)), rec.StateObserver())
func (r *Recorder) StateObserver() tether.Option {
	return tether.WithStateObserver(func(from, to tether.State, in time.Duration) {
		if r == nil || !r.registered {
			return
		}
		ctx := context.Background()
		attrs := make([]attribute.KeyValue, 0, len(r.common)+1)
		attrs = append(append(attrs, r.common...), StateKey.String(from.String()))
		if from != to {
			r.count.Add(ctx, -1, metric.WithAttributes(attrs...))
			r.states.Record(ctx, in.Seconds(), metric.WithAttributes(attrs...))
		}
		if to != tether.Shutdown {
			attrs[len(attrs)-1] = StateKey.String(to.String()) // WithAttributes copied attrs
			r.count.Add(ctx, 1, metric.WithAttributes(attrs...))
		}
	})
}
