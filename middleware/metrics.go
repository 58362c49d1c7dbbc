package middleware

import (
	"context"
	"expvar"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/io-tether/tether"
)

// A MetricsRecorder receives the measurements of Metrics. Back it with
// expvar (ExpvarMetrics), Prometheus, OpenTelemetry (the module
// github.com/io-tether/tether/otel) or anything else. Its methods are called
// from the handlers of many Tethers at once, so they must be safe for
// concurrent use, and they should return quickly: they run inside a
// reconnect.
//
// Each method gets the event that the measurement comes from, for what a
// recorder may label it with (Event.Dialed, the address dialed or lost;
// Event.Err, the cause). The *Event is valid only during the call, and the
// recorder must not change it.
type MetricsRecorder interface {
	// CountEvent counts ev, and the action that the handlers inside
	// Metrics took on it.
	CountEvent(ev *tether.Event, action tether.Action)
	// ObserveDial records how long the dial that ev reports took (d,
	// OnConnect included) and whether it succeeded: for each Unreachable
	// (failed), Connected and Reconnected (succeeded) event.
	ObserveDial(ev *tether.Event, d time.Duration, ok bool)
	// ObserveOutage records how long an outage lasted, from the loss of a
	// connection (or the start of Dial) to its end: a reconnect the
	// handlers accepted (recovered) or a give-up (not recovered). ev is
	// the event that ended it. An outage that Close ends is not observed.
	ObserveOutage(ev *tether.Event, d time.Duration, recovered bool)
	// ObserveConnection records how long a connection lived, from its
	// acceptance to its loss: for each Disconnected event that the
	// handlers did not Ignore (Ignore keeps the connection; ev.Err is why
	// it ended). A connection that Close ends is not observed.
	ObserveConnection(ev *tether.Event, lifetime time.Duration)
}

// Metrics returns a Middleware that reports every event to r: a count per
// event kind and action, the duration of each dial, the lifetime of each
// lost connection, and the duration of each outage once it ends. It acts
// after next, so it sees the decision; put it near the outside of the chain,
// inside Logging. The first connection of Dial is not an outage, but a
// give-up inside Dial is.
//
// With a write buffer (tether.WithWriteBuffer), a new connection that
// fails while the buffer is written to it does so after its Reconnected
// event, which the handlers accepted: Metrics has then observed the outage
// as recovered, and the Unreachable event that follows begins what it
// observes as a second outage, measured from the same start.
//
// Metrics keeps no state of its own; one value serves any number of Tethers,
// which then share r. A nil r (or a nil pointer in it): the Middleware gives
// up on its first event with an error that wraps ErrBadConfig.
func Metrics(r MetricsRecorder) tether.Middleware {
	if r == nil {
		return failing(badConfig("Metrics: nil MetricsRecorder"))
	}
	if v := reflect.ValueOf(r); v.Kind() == reflect.Pointer && v.IsNil() {
		return failing(badConfig("Metrics: nil MetricsRecorder (a nil " + v.Type().String() + ")"))
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			a := next.HandleDisconnect(ctx, ev)
			r.CountEvent(ev, a)
			switch ev.Kind {
			case tether.Disconnected:
				if a != tether.Ignore { // Ignore keeps the connection
					r.ObserveConnection(ev, ev.Uptime)
				}
			case tether.Unreachable:
				r.ObserveDial(ev, ev.DialTime, false)
			case tether.Connected, tether.Reconnected:
				r.ObserveDial(ev, ev.DialTime, true)
			}
			switch {
			case ev.Kind == tether.Reconnected && a != tether.GiveUp:
				r.ObserveOutage(ev, ev.Outage(time.Now()), true)
			case a == tether.GiveUp:
				r.ObserveOutage(ev, ev.Outage(time.Now()), false)
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
//   - "outages_recovered": the count of outages that ended in a reconnect,
//   - "connection_seconds": a histogram of the lifetimes of lost
//     connections,
//   - "state_seconds": a histogram per state ("idle", "connecting",
//     "ready", "transient-failure") of the time spent in it, from the
//     Tethers given StateObserver's option.
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
	states    expvar.Map
	inState   [tether.Shutdown]histogram // the time spent in each state but Shutdown
	conns     histogram
}

func (m *ExpvarMetrics) init() {
	m.once.Do(func() {
		m.m.Set("events", &m.events)
		m.m.Set("actions", &m.actions)
		m.m.Set("dials_failed", &m.failed)
		m.m.Set("dial_seconds", &m.dials)
		m.m.Set("outage_seconds", &m.outages)
		m.m.Set("outages_recovered", &m.recovered)
		m.m.Set("state_seconds", &m.states)
		for s := range m.inState {
			m.states.Set(tether.State(s).String(), &m.inState[s])
		}
		m.m.Set("connection_seconds", &m.conns)
	})
}

// CountEvent implements MetricsRecorder.
func (m *ExpvarMetrics) CountEvent(ev *tether.Event, a tether.Action) {
	m.init()
	m.events.Add(ev.Kind.String(), 1)
	m.actions.Add(Decision(ev.Kind, a), 1)
}

// ObserveDial implements MetricsRecorder.
func (m *ExpvarMetrics) ObserveDial(_ *tether.Event, d time.Duration, ok bool) {
	m.init()
	if !ok {
		m.failed.Add(1)
	}
	m.dials.observe(d)
}

// ObserveOutage implements MetricsRecorder.
func (m *ExpvarMetrics) ObserveOutage(_ *tether.Event, d time.Duration, recovered bool) {
	m.init()
	if recovered {
		m.recovered.Add(1)
	}
	m.outages.observe(d)
}

// ObserveConnection implements MetricsRecorder.
func (m *ExpvarMetrics) ObserveConnection(_ *tether.Event, lifetime time.Duration) {
	m.init()
	m.conns.observe(lifetime)
}

// StateObserver returns an option for tether.Dial (tether.WithStateObserver)
// that records, in "state_seconds", a histogram per state of the time the
// Tether spent in it, measured when it leaves the state: what Metrics, which
// sees only events, cannot (the end of a backoff delay, Close).
func (m *ExpvarMetrics) StateObserver() tether.Option {
	return tether.WithStateObserver(func(from, to tether.State, in time.Duration) {
		if from != to && from >= 0 && int(from) < len(m.inState) {
			m.init()
			m.inState[from].observe(in)
		}
	})
}

// String implements expvar.Var: the numbers as a JSON object.
func (m *ExpvarMetrics) String() string {
	m.init()
	return m.m.String()
}

// histogramBounds are the upper bounds of the histogram buckets, from a
// millisecond (a dial on a LAN) to an hour (a long outage; connections that
// live longer fall in +Inf).
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
	// sum is in microseconds: in nanoseconds, the connections of 10,000
	// Tethers that live a day each summed past int64 in 11 days.
	sum atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(histogramBounds) && d > histogramBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(d.Microseconds())
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
	b = strconv.AppendFloat(b, float64(h.sum.Load())/1e6, 'g', -1, 64)
	b = append(b, '}')
	return string(b)
}
