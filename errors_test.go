package tether_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/io-tether/tether"
)

// Semantics 11: permanent errors are told apart from transient ones.
func TestIsPermanent(t *testing.T) {
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"marked", tether.Permanent(errors.New("x")), true},
		{"marked and wrapped", fmt.Errorf("dial: %w", tether.Permanent(errors.New("x"))), true},
		{"certificate verification", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{"unknown authority", op(x509.UnknownAuthorityError{}), true},
		{"hostname", x509.HostnameError{Host: "h"}, true},
		{"certificate invalid", x509.CertificateInvalidError{Reason: x509.Expired}, true},
		{"alert: protocol version", op(tls.AlertError(70)), true},
		{"alert: no application protocol", op(tls.AlertError(120)), true},
		{"alert: bad certificate", tls.AlertError(42), true},
		{"alert: internal error", tls.AlertError(80), false},
		{"missing port", op(&net.AddrError{Err: "missing port in address", Addr: "x"}), true},
		{"cancelled", context.Canceled, true},
		{"cancelled, wrapped", fmt.Errorf("tether: %w", context.Canceled), true},
		{"refused", op(os.NewSyscallError("connect", syscall.ECONNREFUSED)), false},
		{"reset", op(os.NewSyscallError("read", syscall.ECONNRESET)), false},
		{"unreachable", op(os.NewSyscallError("connect", syscall.ENETUNREACH)), false},
		{"EOF", io.EOF, false},
		{"timeout", op(os.ErrDeadlineExceeded), false},
		{"deadline exceeded", context.DeadlineExceeded, false},
		{"name does not resolve now", op(&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}), false},
		{"closed pipe", io.ErrClosedPipe, false},
		{"marked transient around marked", transient{tether.Permanent(errors.New("x"))}, false},
		{"marked transient around a certificate", transient{x509.UnknownAuthorityError{}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tether.IsPermanent(tc.err); got != tc.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// transient is an error whose Permanent method says false: IsPermanent takes
// the first such method's word over the rest of the chain.
type transient struct{ error }

func (e transient) Unwrap() error { return e.error }
func (transient) Permanent() bool { return false }

func TestPermanentNil(t *testing.T) {
	if err := tether.Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v, want nil", err)
	}
}

// The default policy gives up at once on a permanent error and delays a
// transient one.
func TestDefaultHandler(t *testing.T) {
	h := tether.DefaultHandler()
	ev := &tether.Event{Kind: tether.Unreachable, Err: tls.AlertError(70), Addr: "a", Attempt: 1}
	if a := h.HandleDisconnect(t.Context(), ev); a != tether.GiveUp {
		t.Errorf("HandleDisconnect(permanent) = %v, want give-up", a)
	}
	for attempt, bounds := range map[int][2]float64{0: {0, 0.2}, 1: {0.8, 1.2}, 2: {1.28, 1.92}, 100: {96, 144}} {
		ev := &tether.Event{Kind: tether.Disconnected, Err: io.EOF, Addr: "a", Attempt: attempt}
		if a := h.HandleDisconnect(t.Context(), ev); a != tether.Reconnect {
			t.Errorf("HandleDisconnect(EOF) = %v, want reconnect", a)
		}
		if s := ev.Delay.Seconds(); s < bounds[0] || s > bounds[1] {
			t.Errorf("attempt %d: Delay = %v, want within %v s", attempt, ev.Delay, bounds)
		}
	}
	for _, k := range []tether.EventKind{tether.Connected, tether.Reconnected} {
		ev := &tether.Event{Kind: k, Addr: "a"}
		if a := h.HandleDisconnect(t.Context(), ev); a != tether.Reconnect || ev.Delay != 0 {
			t.Errorf("HandleDisconnect(%v) = %v, delay %v; want reconnect, 0", k, a, ev.Delay)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		s    fmt.Stringer
		want string
	}{
		{tether.Reconnect, "reconnect"}, {tether.GiveUp, "give-up"}, {tether.Ignore, "ignore"},
		{tether.Action(9), "action(9)"},
		{tether.Connected, "connected"}, {tether.Disconnected, "disconnected"},
		{tether.Unreachable, "unreachable"}, {tether.Reconnected, "reconnected"},
		{tether.EventKind(0), "event(0)"},
		{tether.PropagateCause, "cause"}, {tether.PropagateIO, "io"}, {tether.PropagateNone, "none"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// Chain puts mw[0] outermost.
func TestChainOrder(t *testing.T) {
	var order []string
	tag := func(name string) tether.Middleware {
		return func(next tether.DisconnectHandler) tether.DisconnectHandler {
			return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
				order = append(order, name+">")
				a := next.HandleDisconnect(ctx, ev)
				order = append(order, "<"+name)
				return a
			})
		}
	}
	inner := tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action {
		order = append(order, "h")
		return tether.Ignore
	})
	h := tether.Chain(inner, tag("a"), nil, tag("b"))
	if a := h.HandleDisconnect(t.Context(), &tether.Event{}); a != tether.Ignore {
		t.Errorf("HandleDisconnect = %v, want ignore", a)
	}
	if got, want := fmt.Sprint(order), "[a> b> h <b <a]"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
}
