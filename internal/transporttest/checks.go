package transporttest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
)

// A DialError is what a failed dial must return: every dialer's error is a
// *net.OpError, "dial NETWORK ADDR: cause", that names the address it was
// given and wraps its cause.
type DialError struct {
	// Msg is the whole message.
	Msg string
	// Is, when not nil, is an error that errors.Is must find in the chain.
	Is error
	// As, when not nil, is a pointer to a type that errors.As must find.
	As any
	// Permanent is what tether.IsPermanent must report.
	Permanent bool
}

// DialFails dials addr with d and requires that it fail as want says, with
// no connection. It returns the *net.OpError, for the checks that differ
// from one transport to the next (its Net, its Timeout).
func DialFails(t *testing.T, ctx context.Context, d tether.Dialer, addr string, want DialError) *net.OpError {
	t.Helper()
	c, err := d.Dial(ctx, addr)
	require.Nil(t, c)
	require.EqualError(t, err, want.Msg)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, addr, oe.Addr.String(), "the address in %v", err)
	if want.Is != nil {
		require.ErrorIs(t, err, want.Is)
	}
	if want.As != nil {
		require.ErrorAs(t, err, want.As)
	}
	require.Equal(t, want.Permanent, tether.IsPermanent(err), "IsPermanent(%v)", err)
	return oe
}

// WaitClosed waits for ch to be closed, and fails t if it is not within a
// generous bound.
func WaitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("%s: not closed within %v", what, waitTimeout)
	}
}
