package tethertest_test

import (
	"bufio"
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

// Servers that answer by themselves, by address: Serve plays them, Down
// takes the primary away, and a failover policy moves to the backup. History
// shows where each dial went.
func ExampleDialer_Serve() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var d tethertest.Dialer
	go d.Serve(ctx, func(c *tethertest.Conn) {
		fmt.Fprintf(c, "hello from %s\n", c.Addr())
		io.Copy(io.Discard, c) // keep the connection until it is closed
	})

	// Reconnect at once, and to the backup after a failed dial.
	h := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Unreachable {
			ev.Addr = "backup:1"
		}
		return tether.Reconnect
	})
	t, err := tether.Dial(ctx, &d, "primary:1", h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	r := bufio.NewReader(t)
	line, _ := r.ReadString('\n')
	fmt.Print(line)

	d.Down("primary:1") // the primary's connection closes, and it refuses dials
	line, _ = r.ReadString('\n')
	fmt.Print(line)
	for _, dial := range d.History() {
		fmt.Println("dialed", dial.Addr, dial.Err)
	}
	// Output:
	// hello from primary:1
	// hello from backup:1
	// dialed primary:1 <nil>
	// dialed primary:1 dial tethertest primary:1: connect: connection refused
	// dialed backup:1 <nil>
}
