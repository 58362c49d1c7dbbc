package tethertest_test

import (
	"context"
	"fmt"
	"io"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// The test plays the server: it takes each connection with Accept, writes to
// it, and breaks it. The Tether reconnects; its reader sees only the bytes.
func ExampleDialer() {
	ctx := context.Background()
	var d tethertest.Dialer

	// Print each event, and reconnect at once (no backoff: the example
	// runs in real time).
	h := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		fmt.Println("event:", ev.Kind)
		return tether.Reconnect
	})
	t, err := tether.Dial(ctx, &d, "server:1", h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()

	s, _ := d.Accept(ctx)
	go s.Write([]byte("hello "))
	buf := make([]byte, 6)
	io.ReadFull(t, buf)
	fmt.Printf("read %q\n", buf)

	// The server resets the connection, and the first redial is refused.
	s.Reset()
	d.FailNext(1, nil)
	go func() {
		s, _ := d.Accept(ctx)
		s.Write([]byte("world!"))
	}()
	io.ReadFull(t, buf)
	fmt.Printf("read %q\n", buf)
	fmt.Println("dials:", d.Dials())
	// Output:
	// event: connected
	// read "hello "
	// event: disconnected
	// event: unreachable
	// event: reconnected
	// read "world!"
	// dials: 3
}
