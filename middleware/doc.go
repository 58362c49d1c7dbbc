// Package middleware holds the reconnect policies of package tether, as
// [tether.Middleware] to compose with [tether.Chain]: [Logging], [Backoff],
// [Failover] and [StickyFailover], [Notify] and [NotifyDropped],
// [MaxDowntime], [When], [RetryIf], [CircuitBreaker] and [Metrics].
//
// # Composing a policy
//
// tether.Chain(h, mw...) wraps h so that mw[0] sees each event first. A nil h
// is [tether.DefaultHandler]: it gives up on the errors that
// [tether.IsPermanent] calls permanent, and sets a backoff delay that an
// outer Backoff replaces. The recommended order, outermost first, is
//
//	tether.Chain(nil,
//		middleware.Logging(logger),            // after next: logs the final decision
//		middleware.Metrics(recorder),          // after next: counts the final decision
//		middleware.Notify(events),             // after next: every event, with the decision
//		middleware.MaxDowntime(time.Minute),   // around: bounds the delays and waits inside
//		middleware.CircuitBreaker(breaker),    // around: counts failed dials, holds back the dial chosen inside
//		middleware.Backoff(backoffConfig),     // after next: sets the delay
//		middleware.RetryIf(transient),         // before next: gives up on what is not worth a retry
//		middleware.Failover(primary, backup),  // before next: picks the next address
//	)
//
// Observers (Logging, Metrics, Notify) go outside the policies, so that they
// see every event, and decisions that the policies take without asking the
// inner handlers. MaxDowntime goes outside whatever sets a delay or waits.
// Each middleware's documentation says where it acts relative to next:
// before (it changes the event, or decides without asking next), after (it
// changes or observes the decision, the delay and the address), or around.
//
// # State
//
// A handler may serve many Tethers at once. Every middleware of this package
// derives what it does from the Event alone (Event.Attempt, Event.Since,
// Event.Addr), keeps no per-Tether state and is safe for concurrent use, so
// one chain serves any number of Tethers. The exception is CircuitBreaker,
// whose [Breaker] is shared on purpose: the Tethers that dial one address share
// its circuit. Package tethertest checks these rules for any middleware
// ([github.com/io-tether/tether/tethertest.TestMiddleware]); a middleware written by hand (see the
// examples) should run it too.
//
// # Bad configuration
//
// A middleware built from a bad configuration (no addresses, a negative
// delay, a jitter outside 0..1, a nil logger or channel) does not panic: it
// gives up on its first event, with an error that wraps ErrBadConfig and
// starts with "tether/middleware: ", so tether.Dial fails with that error.
package middleware
