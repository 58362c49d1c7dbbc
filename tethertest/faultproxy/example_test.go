package faultproxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// A client under test (here a Tether) reaches a server through the proxy,
// which resets its connection, then refuses its dials for a while. The
// client's handler sees each fault, and the client comes back after each.
func Example() {
	// The server greets each connection with its number.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from connection %d\n", n)
			defer c.Close() // when the listener closes
		}
	}()

	p, err := faultproxy.New(ln.Addr().String(), 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	// The client dials the proxy. Its handler prints each event (once in a
	// row of the same kind), reports failed dials, and retries after 10 ms.
	var (
		mu   sync.Mutex
		last tether.EventKind // none yet
	)
	refused := make(chan struct{}, 1)
	h := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		mu.Lock()
		defer mu.Unlock()
		if ev.Kind != last {
			fmt.Println("event:", ev.Kind)
			last = ev.Kind
		}
		if ev.Kind == tether.Unreachable {
			select {
			case refused <- struct{}{}:
			default:
			}
		}
		ev.Delay = 10 * time.Millisecond
		return tether.Reconnect
	})
	t, err := tcp.Dial(context.Background(), p.Addr(), h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	r := bufio.NewReader(t)
	readLine := func() {
		line, err := r.ReadString('\n')
		fmt.Printf("read %q %v\n", line, err)
	}
	readLine()

	fmt.Println("reset", p.ResetAll(), "connection")
	readLine() // reconnects

	// The server is down: dials are refused until the proxy heals.
	p.SetMode(faultproxy.ModeRefuse)
	fmt.Println("refuse dials, reset", p.ResetAll(), "connection")
	go func() {
		<-refused
		p.Heal()
	}()
	readLine() // reconnects once healed

	// Output:
	// event: connected
	// read "hello from connection 1\n" <nil>
	// reset 1 connection
	// event: disconnected
	// event: reconnected
	// read "hello from connection 2\n" <nil>
	// refuse dials, reset 1 connection
	// event: disconnected
	// event: unreachable
	// event: reconnected
	// read "hello from connection 3\n" <nil>
}
