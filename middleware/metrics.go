package middleware

import (
	"context"
	"expvar"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/io-tether/tether"
)

// A MetricsRecorder receives the measurements of Metrics. Back it with
// expvar (ExpvarMetrics), Prometheus, OpenTelemetry or anything else. Its
// methods are called from the handlers of many Tethers at once, so they must
// be safe for concurrent use, and they should return quickly: they run
// inside a reconnect.
type MetricsRecorder interface {
	// CountEvent counts one event of kind, and the action that the handlers
	// inside Metrics took on it.
	CountEvent(kind tether.EventKind, action tether.Action)
	// ObserveDial records how long one dial took (OnConnect included) and
	// whether it succeeded: for each Unreachable (failed), Connected and
	// Reconnected (succeeded) event.
	ObserveDial(d time.Duration, ok bool)
	// ObserveOutage records how long an outage lasted, from the loss of a
	// connection (or the start of Dial) to its end: a reconnect the handlers
	// accepted (recovered) or a give-up (not recovered). An outage that
	// Close ends is not observed.
	ObserveOutage(d time.Duration, recovered bool)
}

// Metrics returns a Middleware that reports every event to r: a count per
// event kind and action, the duration of each dial, and the duration of
// each outage once it ends. It acts after next, so it sees the decision;
// put it near the outside of the chain, inside Logging. The first connection
// of Dial is not an outage, but a give-up inside Dial is.
//
// Metrics keeps no state of its own; one value serves any number of Tethers,
// which then share r. A nil r: the Middleware gives up on its first event
// with an error that wraps ErrBadConfig.
func Metrics(r MetricsRecorder) tether.Middleware {
	if r == nil {
		return failing(badConfig("Metrics: nil MetricsRecorder"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			a := next.HandleDisconnect(ctx, ev)
			r.CountEvent(ev.Kind, a)
			switch ev.Kind {
			case tether.Unreachable:
				r.ObserveDial(ev.DialTime, false)
			case tether.Connected, tether.Reconnected:
				r.ObserveDial(ev.DialTime, true)
			}
			switch {
			case ev.Kind == tether.Reconnected && a != tether.GiveUp:
				r.ObserveOutage(ev.Outage(time.Now()), true)
			case a == tether.GiveUp:
				r.ObserveOutage(ev.Outage(time.Now()), false)
			}
			return a
		})
	}
}

// ExpvarMetrics is a MetricsRecorder that keeps its numbers as an
// expvar.Var: publish it with expvar.Publish to serve them, as JSON, on
// /debug/vars. Its zero value is ready to use, and it is safe for concurrent
// use. The JSON object holds:
//
//   - "events": a count per event kind ("disconnected", ...),
//   - "actions": a count per decision taken (see Decision: "reconnect",
//     "give-up", "ignore" on a failure; "accept" or "reject" on a new
//     connection),
//   - "dials_failed": the count of failed dials,
//   - "dial_seconds": a histogram of dial durations,
//   - "outage_seconds": a histogram of outage durations,
//   - "outages_recovered": the count of outages that ended in a reconnect.
//
// A histogram is an object with "count", "sum" (seconds) and "buckets", a
// cumulative count per upper bound in seconds ("0.001", ..., "3600",
// "+Inf"), as Prometheus has them.
type ExpvarMetrics struct {
	once      sync.Once
	m         expvar.Map
	events    expvar.Map
	actions   expvar.Map
	failed    expvar.Int
	recovered expvar.Int
	dials     histogram
	outages   histogram
}

func (m *ExpvarMetrics) init() {
	m.once.Do(func() {
		m.m.Set("events", &m.events)
		m.m.Set("actions", &m.actions)
		m.m.Set("dials_failed", &m.failed)
		m.m.Set("dial_seconds", &m.dials)
		m.m.Set("outage_seconds", &m.outages)
		m.m.Set("outages_recovered", &m.recovered)
	})
}

// CountEvent implements MetricsRecorder.
func (m *ExpvarMetrics) CountEvent(kind tether.EventKind, a tether.Action) {
	m.init()
	m.events.Add(kind.String(), 1)
	m.actions.Add(Decision(kind, a), 1)
}

// ObserveDial implements MetricsRecorder.
func (m *ExpvarMetrics) ObserveDial(d time.Duration, ok bool) {
	m.init()
	if !ok {
		m.failed.Add(1)
	}
	m.dials.observe(d)
}

// ObserveOutage implements MetricsRecorder.
func (m *ExpvarMetrics) ObserveOutage(d time.Duration, recovered bool) {
	m.init()
	if recovered {
		m.recovered.Add(1)
	}
	m.outages.observe(d)
}

// String implements expvar.Var: the numbers as a JSON object.
func (m *ExpvarMetrics) String() string {
	m.init()
	return m.m.String()
}

// histogramBounds are the upper bounds of the histogram buckets, from a
// millisecond (a dial on a LAN) to an hour (a long outage).
var histogramBounds = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second,
	10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour,
}

// histogram counts durations in the buckets of histogramBounds, and beyond.
// Its zero value is empty; it implements expvar.Var.
type histogram struct {
	counts [len(histogramBounds) + 1]atomic.Int64 // the last is +Inf
	sum    atomic.Int64                           // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(histogramBounds) && d > histogramBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// String returns h as JSON: count, sum in seconds and cumulative buckets.
func (h *histogram) String() string {
	var b []byte
	b = append(b, `{"buckets": {`...)
	var n int64
	for i := range h.counts {
		n += h.counts[i].Load()
		le := "+Inf"
		if i < len(histogramBounds) {
			le = strconv.FormatFloat(histogramBounds[i].Seconds(), 'g', -1, 64)
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendQuote(b, le)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, `}, "count": `...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `, "sum": `...)
	b = strconv.AppendFloat(b, time.Duration(h.sum.Load()).Seconds(), 'g', -1, 64)
	b = append(b, '}')
	return string(b)
}
