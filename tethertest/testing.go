package tethertest

import (
	"context"
	"testing"

	"github.com/io-tether/tether"
)

// Dial dials a Tether as tether.Dial does, with the test's context, fails
// the test if that fails, and closes the Tether when the test ends. Call it
// from the test's goroutine.
func Dial(t testing.TB, d tether.Dialer, addr string, h tether.DisconnectHandler, opts ...tether.Option) *tether.Tether {
	t.Helper()
	tt, err := tether.Dial(t.Context(), d, addr, h, opts...)
	if err != nil {
		t.Fatalf("tethertest: tether.Dial(%q) = %v", addr, err)
	}
	t.Cleanup(func() { tt.Close() })
	return tt
}

// Server returns the server end of the next connection, as Accept does,
// for a test that plays the server step by step, and closes it when the
// test ends. It fails the test if no connection comes within [WaitTimeout]
// (in virtual time inside a synctest bubble, so a dial that never comes
// fails the test at once). Call it from the test's goroutine.
func (d *Dialer) Server(t testing.TB) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	c, err := d.Accept(ctx)
	if err != nil {
		t.Fatalf("tethertest: no connection was dialed within %v (%d dials so far)", WaitTimeout, d.Dials())
	}
	t.Cleanup(func() { c.Close() })
	return c
}
