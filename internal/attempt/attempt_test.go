package attempt_test

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/io-tether/tether/internal/attempt"
)

func TestTimeout(t *testing.T) {
	base := &net.Dialer{Timeout: 3 * time.Second}
	for _, tc := range []struct {
		timeout time.Duration
		base    *net.Dialer
		want    time.Duration
	}{
		{0, nil, attempt.DefaultTimeout},
		{0, &net.Dialer{}, attempt.DefaultTimeout},
		{time.Second, nil, time.Second},
		{0, base, 3 * time.Second},
		{time.Second, base, time.Second},
		{-1, base, 0},
	} {
		if got := attempt.Timeout(tc.timeout, tc.base); got != tc.want {
			t.Errorf("Timeout(%v, %v) = %v, want %v", tc.timeout, tc.base, got, tc.want)
		}
	}
}

func TestNetDialer(t *testing.T) {
	base := &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{}}
	nd := attempt.NetDialer(base, time.Second)
	if nd == base || nd.Timeout != time.Second || nd.LocalAddr != base.LocalAddr || base.Timeout != 3*time.Second {
		t.Errorf("NetDialer(base, 1s) = %+v, base %+v; want a copy of base with a Timeout of 1s", nd, base)
	}
	if nd := attempt.NetDialer(nil, 0); nd == nil || nd.Timeout != attempt.DefaultTimeout {
		t.Errorf("NetDialer(nil, 0) = %+v, want a zero net.Dialer with the default timeout", nd)
	}
}

func TestError(t *testing.T) {
	refused := os.NewSyscallError("connect", syscall.ECONNREFUSED)
	cause := errors.New("tether/x: cause")
	netErr := func(addr net.Addr) *net.OpError {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: refused}
	}
	resolved := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	for _, tc := range []struct {
		name    string
		network string
		err     error
		want    string
		is      error
	}{
		{"a cause of ours", "quic", cause, "dial quic host:1: tether/x: cause", cause},
		{"net's, resolved", "tcp", netErr(resolved), "dial tcp 127.0.0.1:1: connect: connection refused", syscall.ECONNREFUSED},
		{"net's, no address", "tcp", netErr(nil), "dial tcp host:1: connect: connection refused", syscall.ECONNREFUSED},
		{"net's, another network", "tls", netErr(resolved), "dial tls host:1: dial tcp 127.0.0.1:1: connect: connection refused", syscall.ECONNREFUSED},
		{"a timeout", "quic", &attempt.TimeoutError{Pkg: "tether/quic", After: time.Second}, "dial quic host:1: tether/quic: no connection within 1s", context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := attempt.Error(tc.network, "host:1", tc.err)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Error(%q, host:1, %v) = %v, want %q", tc.network, tc.err, err, tc.want)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "dial" || oe.Net != tc.network || oe.Addr == nil {
				t.Errorf("errors.As(%v, *net.OpError) = %+v, want a dial over %s with an address", err, oe, tc.network)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
	resolvedErr := netErr(resolved)
	if err := attempt.Error("tcp", "host:1", resolvedErr); err != error(resolvedErr) {
		t.Errorf("Error(tcp, host:1, %v) = %v, want the same error", resolvedErr, err)
	}
	noAddr := netErr(nil)
	if attempt.Error("tcp", "host:1", noAddr); noAddr.Addr != nil {
		t.Errorf("Error(tcp, host:1, err) set err's Addr to %v, want it unchanged", noAddr.Addr)
	}
	if err := attempt.Error("tcp", "host:1", nil); err != nil {
		t.Errorf("Error(tcp, host:1, nil) = %v, want nil", err)
	}
}

func TestTimeoutError(t *testing.T) {
	err := attempt.Error("quic", "host:1", &attempt.TimeoutError{Pkg: "tether/quic", After: time.Second})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v: not a net.Error whose Timeout is true", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
}

func TestWithTimeout(t *testing.T) {
	ctx, cancel := attempt.WithTimeout(context.Background(), "tether/x", time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	var te *attempt.TimeoutError
	if cause := context.Cause(ctx); !errors.As(cause, &te) || te.Pkg != "tether/x" {
		t.Errorf("context.Cause() = %v, want a *TimeoutError of tether/x", cause)
	}
	ctx, cancel = attempt.WithTimeout(context.Background(), "tether/x", 0)
	if _, ok := ctx.Deadline(); ok {
		t.Error("WithTimeout(0) has a deadline, want none")
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("WithTimeout(0)'s cancel did not cancel")
	}
}
