// Package tetherotel records the metrics of Tethers on OpenTelemetry
// instruments: a [Recorder] is the recorder of
// [github.com/io-tether/tether/middleware.Metrics].
//
//	rec, err := tetherotel.New(nil, tetherotel.WithTransport("tcp")) // nil: the global MeterProvider
//	...
//	h := tether.Chain(nil, middleware.Metrics(rec), middleware.Backoff(cfg))
//
// It is a module of its own, so that package tether and its middleware
// depend on nothing beyond the standard library. Any OpenTelemetry exporter
// serves the numbers; the Prometheus example serves them on /metrics.
//
// # Instruments
//
// The instruments belong to the Meter named [ScopeName]. Their names and
// units follow OpenTelemetry's naming guidelines (a tether namespace,
// counts of discrete things pluralised with a {unit} annotation, durations
// in seconds); the Prometheus exporter turns tether.events into
// tether_events_total and tether.outage.duration into
// tether_outage_duration_seconds.
//
//	instrument                  kind       unit        attributes besides the common ones
//	tether.events               counter    {event}     tether.event.kind: connected, disconnected, unreachable, reconnected
//	tether.decisions            counter    {decision}  tether.action: reconnect, give-up, ignore, accept, reject
//	tether.dial.failures        counter    {dial}      error.type
//	tether.dial.duration        histogram  s           error.type, on failed dials only
//	tether.outage.duration      histogram  s           tether.outage.recovered (bool); error.type, on a give-up with a cause
//	tether.connection.duration  histogram  s           error.type: why the connection was lost
//	tether.count                up-down    {tether}    tether.state: Tethers in each state (StateObserver)
//	tether.state.duration       histogram  s           tether.state: time spent in a state, when left (StateObserver)
//
// The common attributes, on every measurement:
//
//   - tether.transport: the name given to [WithTransport] ("tcp", "tls",
//     "quic", "unix"); absent without it;
//   - server.address and server.port: the address dialed (or lost), split
//     as OpenTelemetry's semantic conventions for clients have it; absent
//     with [WithoutAddress].
//
// error.type takes a few values that [ErrorType] lists (connection_refused,
// connection_reset, eof, timeout, tls, ...).
//
// What each instrument measures, as middleware.Metrics reports it:
// tether.events counts every event, and tether.decisions the action the
// handlers inside Metrics took on it, named as middleware.Decision names it
// (a reconnect is an event of kind reconnected; on connected and
// reconnected events the decision is accept or reject). tether.dial.duration records each dial, OnConnect
// included; tether.dial.failures counts the failed ones. An outage lasts
// from the loss of a connection (or the start of Dial) to a reconnect that
// the handlers accept or a give-up; tether.connection.duration records how
// long each lost connection lived. An outage or a connection that Close
// ends is not recorded.
//
// The buckets of the dial and outage histograms reach from 1 ms to 10 min
// (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
// 30, 60, 120, 300, 600 s); those of the connection lifetime from 10 ms to a
// day (0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 h, 6 h,
// 12 h, 24 h). An SDK View changes them.
//
// tether.count and tether.state.duration come from the option that
// [Recorder.StateObserver] returns, given to each Tether: middleware.Metrics
// sees events only, and some changes of state, such as Close or the end of
// a backoff delay, reach no handler. They carry the transport attribute and
// tether.state (idle, connecting, ready, transient-failure), not the
// address; a closed Tether leaves the count.
package tetherotel
