package tethertest

import (
	"context"
	"sync"
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

// Serve plays the server of every connection d makes from now until the
// test ends: it runs handle on each, in a goroutine of its own, and closes
// the connection when handle returns. When the test ends it closes the
// connections still open, so that handlers blocked on them return, and
// waits for the handlers. Inside a synctest bubble, call it in the bubble.
//
// Use it where servers answer by themselves (greet, echo, or close at once)
// and the test watches the client; handle may tell servers apart by
// [Conn.Addr], and [Dialer.Down] takes an address down. A test that plays
// the server step by step takes each connection with [Dialer.Server] or
// [Dialer.Accept] instead: do not mix the two over one Dialer.
func Serve(t testing.TB, d *Dialer, handle func(c *Conn)) {
	ctx, cancel := context.WithCancel(context.Background())
	var handlers sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := d.Accept(ctx)
			if err != nil {
				return
			}
			handlers.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-accepting
		for _, c := range d.Conns() {
			c.Close()
		}
		handlers.Wait()
	})
}
