package middleware_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// records is a slog.Handler that keeps the records it is given, with their
// attributes flattened to "group.key" strings.
type records struct {
	level slog.Level
	mu    sync.Mutex
	got   []record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *records) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *records) WithGroup(string) slog.Handler                { return r }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	attrs := map[string]string{}
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, g := range v.Group() {
				add(prefix+a.Key+".", g)
			}
			return
		}
		attrs[prefix+a.Key] = v.String()
	}
	rec.Attrs(func(a slog.Attr) bool { add("", a); return true })
	r.mu.Lock()
	r.got = append(r.got, record{rec.Level, rec.Message, attrs})
	r.mu.Unlock()
	return nil
}

func (r *records) all() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.got...)
}

func TestLoggingRecords(t *testing.T) {
	errAuth := errors.New("auth failed")
	tests := []struct {
		name   string
		ev     tether.Event
		next   tether.Action
		change func(*tether.Event)
		level  slog.Level
		msg    string
		attrs  map[string]string
	}{
		{
			name: "connected", ev: tether.Event{Kind: tether.Connected, Addr: addrA, Dialed: addrA, Generation: 1},
			next: tether.Reconnect, level: slog.LevelInfo, msg: "tether connected",
			attrs: map[string]string{"action": "accept", "state": "ready", "event.kind": "connected", "event.addr": addrA, "event.generation": "1"},
		},
		{
			name: "disconnected, reconnect", ev: tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA, Uptime: time.Minute},
			next: tether.Reconnect, change: func(ev *tether.Event) { ev.Delay, ev.Addr = 1600*time.Millisecond, addrB },
			level: slog.LevelInfo, msg: "tether disconnected",
			attrs: map[string]string{"action": "reconnect", "state": "transient-failure", "event.kind": "disconnected", "event.err": "EOF",
				"event.addr": addrB, "event.dialed": addrA, "event.delay": "1.6s", "event.uptime": "1m0s", "outage": "0s"},
		},
		{
			name: "unreachable, reconnect", ev: tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Dialed: addrA, Attempt: 2},
			next: tether.Reconnect, level: slog.LevelInfo, msg: "tether unreachable",
			attrs: map[string]string{"action": "reconnect", "state": "connecting", "event.attempt": "2", "event.err": errRefused.Error()},
		},
		{
			name: "ignore", ev: tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA},
			next: tether.Ignore, level: slog.LevelWarn, msg: "tether disconnected",
			attrs: map[string]string{"action": "ignore", "state": "ready"},
		},
		{
			name: "give-up with a new cause", ev: tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 9},
			next: tether.GiveUp, change: func(ev *tether.Event) { ev.Err = errAuth },
			level: slog.LevelError, msg: "tether unreachable",
			attrs: map[string]string{"action": "give-up", "state": "shutdown", "event.err": "auth failed", "cause": errRefused.Error()},
		},
		{
			name: "rejected", ev: tether.Event{Kind: tether.Reconnected, Addr: addrA, Attempt: 1},
			next: tether.GiveUp, level: slog.LevelError, msg: "tether reconnected",
			attrs: map[string]string{"action": "reject", "state": "shutdown", "event.kind": "reconnected"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &records{level: slog.LevelDebug}
				n := answer(tt.next, tt.change)
				ev := tt.ev
				ev.Since = time.Now()
				a, _ := handle(middleware.Logging(slog.New(rec))(n), ev)
				require.Equal(t, tt.next, a, "Logging changed the action")
				got := rec.all()
				require.Len(t, got, 1, "one record per event")
				require.Equal(t, tt.level, got[0].level)
				require.Equal(t, tt.msg, got[0].msg)
				for k, v := range tt.attrs {
					require.Equal(t, v, got[0].attrs[k], "attribute %s in %v", k, got[0].attrs)
				}
				if tt.ev.Kind == tether.Connected {
					require.NotContains(t, got[0].attrs, "outage")
				}
			})
		})
	}
}

func TestLoggingLevelDisabled(t *testing.T) {
	rec := &records{level: slog.LevelError}
	l := slog.New(rec)
	h := middleware.Logging(l)(reconnect)
	handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA})
	require.Empty(t, rec.all(), "a reconnect is not logged at level Error")
	h = middleware.Logging(l)(tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.GiveUp }))
	handle(h, tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA})
	require.Len(t, rec.all(), 1, "a give-up is logged at level Error")
}

// uncomparable is an error type that == panics on.
type uncomparable struct{ s []string }

func (u uncomparable) Error() string { return "uncomparable" }

func TestLoggingUncomparableErrors(t *testing.T) {
	rec := &records{}
	h := middleware.Logging(slog.New(rec))(tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		ev.Err = uncomparable{[]string{"b"}}
		return tether.GiveUp
	}))
	a, _ := handle(h, tether.Event{Kind: tether.Disconnected, Err: uncomparable{[]string{"a"}}, Addr: addrA})
	require.Equal(t, tether.GiveUp, a)
	require.Len(t, rec.all(), 1)
}

// TestLoggingTether logs a real Tether's life: one record per event.
func TestLoggingTether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &records{}
		n := servers(t, map[string]func(net.Conn){addrA: sendAndClose("foo")})
		tn := tethertest.Dial(t, n, addrA,
			tether.Chain(nil, middleware.Logging(slog.New(rec)), middleware.Backoff(middleware.BackoffConfig{MaxAttempts: 2})))
		buf := make([]byte, 3)
		_, err := io.ReadFull(tn, buf)
		require.NoError(t, err)
		require.Equal(t, "foo", string(buf))
		time.Sleep(2 * time.Second) // stable: the redials count from 0
		n.Down(addrA)
		_, err = io.ReadAll(tn)
		require.ErrorIs(t, err, middleware.ErrMaxAttempts)
		var msgs []string
		for _, r := range rec.all() {
			msgs = append(msgs, r.level.String()+" "+r.msg+" "+r.attrs["action"])
		}
		require.Equal(t, []string{
			"INFO tether connected accept",
			"INFO tether disconnected reconnect",
			"INFO tether unreachable reconnect",
			"ERROR tether unreachable give-up",
		}, msgs)
	})
}

type wrapErr struct{ err error }

func (e wrapErr) Error() string { return "wrapped: " + e.err.Error() }
func (e wrapErr) Unwrap() error { return e.err }

type sliceErr []string

func (sliceErr) Error() string { return "slice" }

// Logging compares errors of a comparable type that hold uncomparable
// values without a panic (== on them panics at run time).
func TestLoggingUncomparableValues(t *testing.T) {
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := middleware.Logging(l)(tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		ev.Err = wrapErr{sliceErr{"b"}}
		return tether.GiveUp
	}))
	require.NotPanics(t, func() {
		handle(h, tether.Event{Kind: tether.Disconnected, Err: wrapErr{sliceErr{"a"}}, Addr: addrA})
	})
}

// An error that == cannot compare, left as it was, is no replaced cause: a
// reconnect or a give-up logs no "cause" (it logged one beside every such
// error).
func TestLoggingUnchangedUncomparableCause(t *testing.T) {
	giveUp := tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.GiveUp })
	for _, next := range []tether.DisconnectHandler{reconnect, giveUp} {
		rec := &records{}
		h := middleware.Logging(slog.New(rec))(next)
		handle(h, tether.Event{Kind: tether.Disconnected, Err: wrapErr{sliceErr{"a"}}, Addr: addrA})
		require.Len(t, rec.all(), 1)
		require.NotContains(t, rec.all()[0].attrs, "cause")
	}
}
