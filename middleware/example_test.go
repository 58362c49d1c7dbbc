package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// fooBar returns a Dialer with two servers in memory, until ctx ends:
// 127.0.0.1:7001 says "foo" and closes, 127.0.0.1:7002 says "bar". The
// examples and the tests that replay the seed (addrA, addrB) share it.
func fooBar(ctx context.Context) *tethertest.Dialer {
	var d tethertest.Dialer
	go d.Serve(ctx, func(c *tethertest.Conn) {
		c.Write([]byte(map[string]string{"127.0.0.1:7001": "foo", "127.0.0.1:7002": "bar"}[c.Addr()]))
	})
	return &d
}

// exampleLogger logs to stdout without what changes from run to run: the
// time and the measured durations.
func exampleLogger() *slog.Logger {
	drop := []string{slog.TimeKey, "delay", "uptime", "dial_time", "outage"}
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if slices.Contains(drop, a.Key) {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// The recommended chain, outermost first: observers, then the policies
// that bound the outage, then those that choose the delay and the address.
// Server A sends "foo" and closes; Failover moves to server B, which sends
// "bar".
func Example() {
	events := make(chan tether.Event, 16)
	var metrics middleware.ExpvarMetrics // publish it with expvar.Publish
	breaker := middleware.NewBreaker(middleware.BreakerConfig{Failures: 5, CoolDown: 30 * time.Second})
	h := tether.Chain(nil,
		middleware.Logging(exampleLogger()),
		middleware.Metrics(&metrics),
		middleware.Notify(events),
		middleware.MaxDowntime(time.Minute),
		middleware.CircuitBreaker(breaker),
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond, MaxAttempts: 10}),
		middleware.RetryIf(func(ev *tether.Event) bool { return !tether.IsPermanent(ev.Err) }),
		middleware.Failover("127.0.0.1:7001", "127.0.0.1:7002"),
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	t, err := tether.Dial(ctx, fooBar(ctx), "127.0.0.1:7001", h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(t, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(buf), len(events), "events")
	// Output:
	// level=INFO msg="tether connected" action=accept state=ready event.kind=connected event.addr=127.0.0.1:7001 event.attempt=0 event.total=0 event.generation=1
	// level=INFO msg="tether disconnected" action=reconnect state=transient-failure event.kind=disconnected event.err=EOF event.addr=127.0.0.1:7002 event.dialed=127.0.0.1:7001 event.attempt=1 event.total=1 event.generation=1
	// level=INFO msg="tether reconnected" action=accept state=ready event.kind=reconnected event.addr=127.0.0.1:7002 event.attempt=1 event.total=1 event.generation=2
	// foobar 3 events
}

func ExampleLogging() {
	h := tether.Chain(nil, middleware.Logging(exampleLogger()), middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 3}))

	ev := tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: "127.0.0.1:7001",
		Dialed: "127.0.0.1:7001", Attempt: 2, Total: 2, Generation: 1}
	h.HandleDisconnect(context.Background(), &ev)

	ev = tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: "127.0.0.1:7001",
		Dialed: "127.0.0.1:7001", Attempt: 3, Total: 3, Generation: 1}
	h.HandleDisconnect(context.Background(), &ev)
	// Output:
	// level=INFO msg="tether unreachable" action=reconnect state=transient-failure event.kind=unreachable event.err="connection refused" event.addr=127.0.0.1:7001 event.attempt=2 event.total=2 event.generation=1
	// level=ERROR msg="tether unreachable" action=give-up state=shutdown event.kind=unreachable event.err="tether/middleware: too many failed dials (3 in a row): connection refused" event.addr=127.0.0.1:7001 event.attempt=3 event.total=3 event.generation=1 cause="connection refused"
}

func ExampleBackoff() {
	// Jitter 0.001 keeps the printed delays steady; the default is 0.2.
	h := tether.Chain(nil, middleware.Backoff(middleware.BackoffConfig{
		BaseDelay: time.Second, MaxDelay: 20 * time.Second, Multiplier: 2, Jitter: 0.001, MaxAttempts: 7,
	}))
	for attempt := 1; attempt <= 7; attempt++ {
		ev := tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: "127.0.0.1:7001", Attempt: attempt}
		a := h.HandleDisconnect(context.Background(), &ev)
		if a == tether.GiveUp {
			fmt.Printf("after %d failed dials: %v\n", attempt, ev.Err)
			break
		}
		fmt.Printf("after %d failed dials: %v in %v\n", attempt, a, ev.Delay.Round(100*time.Millisecond))
	}
	// Output:
	// after 1 failed dials: reconnect in 1s
	// after 2 failed dials: reconnect in 2s
	// after 3 failed dials: reconnect in 4s
	// after 4 failed dials: reconnect in 8s
	// after 5 failed dials: reconnect in 16s
	// after 6 failed dials: reconnect in 20s
	// after 7 failed dials: tether/middleware: too many failed dials (7 in a row): connection refused
}

func ExampleFailover() {
	h := tether.Chain(nil, middleware.Failover("127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"))
	addr := "127.0.0.1:7001"
	for attempt := 1; attempt <= 4; attempt++ {
		ev := tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: addr, Dialed: addr, Attempt: attempt}
		h.HandleDisconnect(context.Background(), &ev)
		fmt.Println(ev.Dialed, "failed, next:", ev.Addr)
		addr = ev.Addr
	}
	// Output:
	// 127.0.0.1:7001 failed, next: 127.0.0.1:7002
	// 127.0.0.1:7002 failed, next: 127.0.0.1:7003
	// 127.0.0.1:7003 failed, next: 127.0.0.1:7001
	// 127.0.0.1:7001 failed, next: 127.0.0.1:7002
}

func ExampleStickyFailover() {
	h := tether.Chain(nil, middleware.StickyFailover("127.0.0.1:7001", "127.0.0.1:7002"))

	// On the backup, the connection is lost: the next dial goes to the
	// primary first.
	ev := tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: "127.0.0.1:7002", Dialed: "127.0.0.1:7002", Attempt: 0}
	h.HandleDisconnect(context.Background(), &ev)
	fmt.Println("lost", ev.Dialed, "next:", ev.Addr)

	// The primary does not answer: on to the backup.
	ev = tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: ev.Addr, Dialed: ev.Addr, Attempt: 1}
	h.HandleDisconnect(context.Background(), &ev)
	fmt.Println(ev.Dialed, "failed, next:", ev.Addr)
	// Output:
	// lost 127.0.0.1:7002 next: 127.0.0.1:7001
	// 127.0.0.1:7001 failed, next: 127.0.0.1:7002
}

func ExampleNotify() {
	events := make(chan tether.Event, 16) // room for the events a reader may lag behind
	h := tether.Chain(nil, middleware.Notify(events),
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond}),
		middleware.Failover("127.0.0.1:7001", "127.0.0.1:7002"))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	t, err := tether.Dial(ctx, fooBar(ctx), "127.0.0.1:7001", h)
	if err != nil {
		fmt.Println(err)
		return
	}
	io.ReadFull(t, make([]byte, 6))
	t.Close()
	for len(events) > 0 {
		ev := <-events
		fmt.Println(ev.Kind, ev.Dialed, ev.Err)
	}
	// Output:
	// connected 127.0.0.1:7001 <nil>
	// disconnected 127.0.0.1:7001 EOF
	// reconnected 127.0.0.1:7002 <nil>
}

func ExampleNotifyDropped() {
	var dropped atomic.Uint64
	events := make(chan tether.Event) // nobody receives: every event is dropped
	h := tether.Chain(nil, middleware.NotifyDropped(events, &dropped))
	for _, kind := range []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected} {
		ev := tether.Event{Kind: kind, Addr: "127.0.0.1:7001"}
		h.HandleDisconnect(context.Background(), &ev)
	}
	fmt.Println("dropped:", dropped.Load())
	// Output:
	// dropped: 3
}

func ExampleMaxDowntime() {
	h := tether.Chain(nil, middleware.MaxDowntime(time.Minute))

	// 50 s into the outage, the default policy's delay would take the next
	// dial past the limit: it is shortened.
	ev := tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: "127.0.0.1:7001",
		Attempt: 20, Since: time.Now().Add(-50 * time.Second)}
	a := h.HandleDisconnect(context.Background(), &ev)
	fmt.Println(a, ev.Delay <= 10*time.Second)

	// 61 s into the outage: give up.
	ev = tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: "127.0.0.1:7001",
		Attempt: 21, Since: time.Now().Add(-61 * time.Second)}
	a = h.HandleDisconnect(context.Background(), &ev)
	fmt.Println(a, errors.Is(ev.Err, middleware.ErrMaxDowntime))
	// Output:
	// reconnect true
	// give-up true
}

func ExampleWhen() {
	// A slow backoff for refused dials; other errors keep the default's.
	refused := func(ev *tether.Event) bool { return errors.Is(ev.Err, syscall.ECONNREFUSED) }
	h := tether.Chain(nil, middleware.When(refused, middleware.Backoff(middleware.BackoffConfig{
		BaseDelay: time.Minute, MaxDelay: time.Hour, Jitter: 0.001,
	})))
	for _, err := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET} {
		ev := tether.Event{Kind: tether.Unreachable, Err: err, Addr: "127.0.0.1:7001", Attempt: 1}
		h.HandleDisconnect(context.Background(), &ev)
		fmt.Println(err, "->", ev.Delay >= time.Minute-time.Second)
	}
	// Output:
	// connection refused -> true
	// connection reset by peer -> false
}

func ExampleRetryIf() {
	errAuth := errors.New("authentication failed")
	h := tether.Chain(nil, middleware.RetryIf(func(ev *tether.Event) bool { return !errors.Is(ev.Err, errAuth) }))
	for _, err := range []error{io.EOF, errAuth} {
		ev := tether.Event{Kind: tether.Disconnected, Err: err, Addr: "127.0.0.1:7001"}
		fmt.Println(err, "->", h.HandleDisconnect(context.Background(), &ev))
	}
	// Output:
	// EOF -> reconnect
	// authentication failed -> give-up
}

func ExampleCircuitBreaker() {
	// One Breaker for every Tether that dials the same servers.
	breaker := middleware.NewBreaker(middleware.BreakerConfig{Failures: 3, Window: time.Minute, CoolDown: 30 * time.Second})
	h := tether.Chain(nil, middleware.CircuitBreaker(breaker))

	// Three Tethers fail to reach 127.0.0.1:7001 and move on to 7002.
	for range 3 {
		ev := tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"),
			Dialed: "127.0.0.1:7001", Addr: "127.0.0.1:7002", Attempt: 1}
		h.HandleDisconnect(context.Background(), &ev)
	}
	// From now on, a Tether whose next dial goes to 7001 waits in its
	// handler for the cool-down, and then one of them tries.
	fmt.Println("7001:", breaker.State("127.0.0.1:7001"))
	fmt.Println("7002:", breaker.State("127.0.0.1:7002"))
	// Output:
	// 7001: open
	// 7002: closed
}

// printRecorder is a MetricsRecorder that prints what it is given.
type printRecorder struct{}

func (printRecorder) CountEvent(ev *tether.Event, a tether.Action) {
	fmt.Println("event:", ev.Kind, a)
}
func (printRecorder) ObserveDial(ev *tether.Event, d time.Duration, ok bool) {
	fmt.Println("dial:", ev.Dialed, d, ok)
}
func (printRecorder) ObserveOutage(_ *tether.Event, d time.Duration, recovered bool) {
	fmt.Println("outage:", d.Round(time.Second), recovered)
}
func (printRecorder) ObserveConnection(ev *tether.Event, lifetime time.Duration) {
	fmt.Println("connection:", ev.Dialed, lifetime, ev.Err)
}

func ExampleMetrics() {
	h := tether.Chain(nil, middleware.Metrics(printRecorder{}))
	ev := tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: "127.0.0.1:7001", Dialed: "127.0.0.1:7001", Uptime: time.Hour}
	h.HandleDisconnect(context.Background(), &ev)
	ev = tether.Event{Kind: tether.Reconnected, Addr: "127.0.0.1:7001", Dialed: "127.0.0.1:7001", DialTime: 3 * time.Millisecond, Since: time.Now().Add(-42 * time.Second)}
	h.HandleDisconnect(context.Background(), &ev)
	// Output:
	// event: disconnected reconnect
	// connection: 127.0.0.1:7001 1h0m0s EOF
	// event: reconnected reconnect
	// dial: 127.0.0.1:7001 3ms true
	// outage: 42s true
}

func ExampleExpvarMetrics() {
	var m middleware.ExpvarMetrics
	// expvar.Publish("tether", &m) serves it on /debug/vars.
	h := tether.Chain(nil, middleware.Metrics(&m))
	ev := tether.Event{Kind: tether.Unreachable, Err: errors.New("connection refused"), Addr: "127.0.0.1:7001", DialTime: 2 * time.Millisecond, Attempt: 1}
	h.HandleDisconnect(context.Background(), &ev)
	ev = tether.Event{Kind: tether.Reconnected, Addr: "127.0.0.1:7001", DialTime: 2 * time.Millisecond, Attempt: 1}
	h.HandleDisconnect(context.Background(), &ev)

	var v struct {
		Events      map[string]int `json:"events"`
		DialsFailed int            `json:"dials_failed"`
		DialSeconds struct {
			Count   int            `json:"count"`
			Buckets map[string]int `json:"buckets"`
		} `json:"dial_seconds"`
	}
	json.Unmarshal([]byte(m.String()), &v)
	fmt.Println(v.Events, v.DialsFailed, v.DialSeconds.Count, v.DialSeconds.Buckets["0.005"])
	// Output:
	// map[reconnected:1 unreachable:1] 1 2 2
}
