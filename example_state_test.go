package tether_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// retryFast reconnects after 20 ms on a failed dial: the examples' servers
// come up within a moment.
var retryFast = tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
	if ev.Kind == tether.Unreachable {
		ev.Delay = 20 * time.Millisecond
	}
	return tether.Reconnect
})

// laterServer returns a free loopback address, and a function that starts
// a server there which calls h on its first connection.
func laterServer(h func(net.Conn)) (addr string, start func() (stop func())) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr = l.Addr().String()
	l.Close() // dials are refused until start
	return addr, func() func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			panic(err)
		}
		serve(l, h)
		return func() { l.Close() }
	}
}

// A client that starts before its server: WithLazy makes Dial return at
// once, Connect starts dialing, and WaitForStateChange waits for the
// connection without polling.
func ExampleTether_WaitForStateChange() {
	addr, start := laterServer(say("hello"))
	t, err := tether.Dial(context.Background(), &tcp.Dialer{}, addr, retryFast, tether.WithLazy())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	fmt.Println("after Dial:", t.State())
	t.Connect() // refused, again and again, until the server starts

	started := make(chan func(), 1)
	time.AfterFunc(100*time.Millisecond, func() { started <- start() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for s := t.State(); s != tether.Ready; s = t.State() {
		if !t.WaitForStateChange(ctx, s) {
			fmt.Println("no connection:", ctx.Err())
			return
		}
	}
	fmt.Println("then:", t.State())
	defer (<-started)()
	buf := make([]byte, 5)
	io.ReadFull(t, buf)
	fmt.Printf("%s\n", buf)
	// Output:
	// after Dial: idle
	// then: ready
	// hello
}

// A producer that must not block while the server is down: its Writes go
// to the write buffer and return at once; the buffer goes first to the
// connection once there is one.
func ExampleWithWriteBuffer() {
	got := make(chan string, 1)
	addr, start := laterServer(func(c net.Conn) {
		buf := make([]byte, 11)
		io.ReadFull(c, buf)
		got <- string(buf)
	})
	t, err := tether.Dial(context.Background(), &tcp.Dialer{}, addr, retryFast,
		tether.WithLazy(), tether.WithWriteBuffer(64<<10))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	t.Write([]byte("hello ")) // starts the dial, which is refused
	t.Write([]byte("world"))
	fmt.Println("buffered:", t.Buffered())
	defer start()()
	fmt.Printf("the server got %q\n", <-got)
	// Output:
	// buffered: 11
	// the server got "hello world"
}
