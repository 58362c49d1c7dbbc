package tether_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// serve accepts connections on l in a goroutine, and serves the first with
// handlers[0], the next with handlers[1], and so on, closing each after its
// handler; it stops after the last handler, or when l is closed.
func serve(l net.Listener, handlers ...func(c net.Conn)) {
	go func() {
		for _, h := range handlers {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h(c)
			c.Close()
		}
	}()
}

// say is a handler for serve that writes msg.
func say(msg string) func(net.Conn) {
	return func(c net.Conn) { c.Write([]byte(msg)) }
}

// The seed's example: server A writes "foo" and closes; the handler reports
// the disconnect on a channel, moves the next dial to server B, waits, and
// reconnects; B writes "bar". The reader sees "foobar".
func Example_seed() {
	l1, _ := net.Listen("tcp", "127.0.0.1:0")
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l1.Close()
	defer l2.Close()
	serve(l1, say("foo"))
	serve(l2, say("bar"))

	reasons := make(chan string, 10)
	h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		switch ev.Kind {
		case tether.Unreachable:
			ev.Delay = 500 * time.Millisecond // a dial failed: never redial in a tight loop
			return tether.Reconnect
		case tether.Connected, tether.Reconnected:
			return tether.Reconnect // accept the new connection
		}
		reasons <- ev.Err.Error()    // report the reason
		ev.Addr = l2.Addr().String() // retry on the second server
		select {                     // any blocking code may run here
		case <-time.After(50 * time.Millisecond):
			return tether.Reconnect
		case <-ctx.Done(): // the Tether was closed
			return tether.GiveUp
		}
	})

	t, err := tether.Dial(context.Background(), &tcp.Dialer{}, l1.Addr().String(), h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()

	buf := make([]byte, 6)
	if _, err := io.ReadFull(t, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(buf))
	fmt.Println("disconnected:", <-reasons)
	// Output:
	// foobar
	// disconnected: EOF
}

// A middleware is a function from handler to handler; Chain stacks them,
// the first outermost, over the default policy.
func ExampleChain() {
	logging := func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			a := next.HandleDisconnect(ctx, ev)
			fmt.Printf("%s %s -> %s\n", ev.Kind, ev.Dialed, a)
			return a
		})
	}
	h := tether.Chain(nil, logging)
	h.HandleDisconnect(context.Background(), &tether.Event{Kind: tether.Unreachable, Err: io.EOF, Dialed: "db:5432", Addr: "db:5432"})
	h.HandleDisconnect(context.Background(), &tether.Event{Kind: tether.Unreachable, Err: tether.Permanent(io.EOF), Dialed: "db:5432", Addr: "db:5432"})
	// Output:
	// unreachable db:5432 -> reconnect
	// unreachable db:5432 -> give-up
}

// Semantics 5: a Tether whose handler gives up on the peer's clean close
// behaves as a plain connection at EOF, so io.ReadAll ends normally.
func ExampleTether_Done() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	serve(l, say("the whole reply"))

	once := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected {
			return tether.GiveUp
		}
		return tether.Reconnect
	})
	t, err := tcp.Dial(context.Background(), l.Addr().String(), once)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := io.ReadAll(t)
	fmt.Printf("%q %v\n", b, err)
	<-t.Done()
	fmt.Println("ended:", t.Err())
	// Output:
	// "the whole reply" <nil>
	// ended: EOF
}

// OnConnect runs on every new connection before it is used: here a hello
// line that a server expects first.
func ExampleWithOnConnect() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	serve(l, func(c net.Conn) {
		buf := make([]byte, 6)
		io.ReadFull(c, buf)
		fmt.Printf("server got %q\n", buf)
		c.Write([]byte("welcome"))
	})

	hello := tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
		_, err := c.Write([]byte("HELLO\n"))
		return err
	})
	t, err := tcp.Dial(context.Background(), l.Addr().String(), nil, hello)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	buf := make([]byte, 7)
	io.ReadFull(t, buf)
	fmt.Printf("client got %q\n", buf)
	// Output:
	// server got "HELLO\n"
	// client got "welcome"
}

// quick reconnects at once after any loss, for examples.
var quick = tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
	ev.Delay = 10 * time.Millisecond
	return tether.Reconnect
})

// An authentication exchange on every connection: the hook sends a token and
// fails (a failed dial, for the handler) unless the server accepts it.
func ExampleWithOnConnect_authentication() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	serve(l, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "AUTH s3cret\n" {
			c.Write([]byte("DENIED\n"))
			return
		}
		c.Write([]byte("OK\n"))
		c.Write([]byte("secret data\n"))
	})

	auth := tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
		if _, err := io.WriteString(c, "AUTH s3cret\n"); err != nil {
			return err
		}
		reply := make([]byte, 3)
		if _, err := io.ReadFull(c, reply); err != nil {
			return err
		}
		if string(reply) != "OK\n" {
			return errors.New("authentication refused")
		}
		return nil
	})
	t, err := tcp.Dial(context.Background(), l.Addr().String(), quick, auth)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	line, _ := bufio.NewReader(t).ReadString('\n')
	fmt.Print(line)
	// Output: secret data
}

// A resubscription: the hook subscribes again on every new connection, so a
// subscriber keeps its feed across a server restart.
func ExampleWithOnConnect_resubscribe() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	news := func(msg string) func(net.Conn) {
		return func(c net.Conn) {
			sub, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Printf("server: %s", sub)
			c.Write([]byte(msg))
		} // then the server restarts
	}
	serve(l, news("news: one\n"), news("news: two\n"))

	topics := []string{"news"}
	resubscribe := tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
		for _, topic := range topics {
			if _, err := fmt.Fprintf(c, "SUB %s\n", topic); err != nil {
				return err
			}
		}
		return nil
	})
	t, err := tcp.Dial(context.Background(), l.Addr().String(), quick, resubscribe)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	r := bufio.NewReader(t)
	for range 2 {
		line, _ := r.ReadString('\n')
		fmt.Printf("client: %s", line)
	}
	// Output:
	// server: SUB news
	// client: news: one
	// server: SUB news
	// client: news: two
}

// A framed protocol reads with ReadGeneration: the bytes of one Read come
// from one connection, so a frame begun on a lost connection is discarded
// instead of being spliced with bytes of the next one.
func ExampleTether_ReadGeneration() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	// The first server dies in the middle of a 5-byte frame; the second
	// sends a whole one.
	serve(l, say("hel"), say("world"))

	t, err := tcp.Dial(context.Background(), l.Addr().String(), quick)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	frame, chunk := make([]byte, 0, 5), make([]byte, 5)
	var gen uint64
	for len(frame) < 5 {
		n, g, err := t.ReadGeneration(chunk[:5-len(frame)])
		if err != nil {
			fmt.Println(err)
			return
		}
		if len(frame) > 0 && g != gen {
			fmt.Printf("discarded %q from connection %d\n", frame, gen)
			frame = frame[:0]
		}
		gen = g
		frame = append(frame, chunk[:n]...)
	}
	fmt.Printf("frame %q from connection %d\n", frame, gen)
	// Output:
	// discarded "hel" from connection 1
	// frame "world" from connection 2
}

// A request/response client over WithReconnectBoundary. Each direction
// meets a reconnect once, with the same ReconnectedError.New: a request
// written on a connection older than New lost its reply, and is written
// again; one written on New (after the Write met the boundary) has its
// reply coming. (Reconnect stands for the losses of a real network here.)
func ExampleWithReconnectBoundary() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	echo := func(c net.Conn) {
		for s := bufio.NewScanner(c); s.Scan(); {
			fmt.Fprintf(c, "re: %s\n", s.Text())
		}
	}
	serve(l, echo, echo, echo)

	t, err := tcp.Dial(context.Background(), l.Addr().String(), quick, tether.WithReconnectBoundary())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()

	type request struct {
		line string
		gen  uint64 // the connection it was written on
	}
	var inflight []request
	gen := t.Generation()
	send := func(line string) error {
		for {
			_, err := io.WriteString(t, line+"\n")
			if re := (*tether.ReconnectedError)(nil); errors.As(err, &re) && re.Dropped == 0 {
				fmt.Printf("write met connection %d: %s goes there\n", re.New, line)
				gen = re.New // nothing was sent
				continue
			}
			if err != nil {
				return err
			}
			inflight = append(inflight, request{line, gen})
			return nil
		}
	}
	r := bufio.NewReader(t)
	receive := func() (string, error) {
		for {
			reply, err := r.ReadString('\n')
			if re := (*tether.ReconnectedError)(nil); errors.As(err, &re) {
				r.Reset(t) // no partial reply of the old connection
				lost := inflight
				inflight = nil
				for _, req := range lost {
					if req.gen >= re.New {
						fmt.Printf("read met connection %d: %s was written there\n", re.New, req.line)
						inflight = append(inflight, req)
						continue
					}
					fmt.Printf("read met connection %d: %s lost its reply\n", re.New, req.line)
					if err := send(req.line); err != nil {
						return "", err
					}
				}
				continue
			}
			if err != nil {
				return "", err
			}
			if len(inflight) > 0 {
				inflight = inflight[1:]
			}
			return reply, nil
		}
	}
	show := func() {
		reply, err := receive()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(reply)
	}

	send("A")
	show()
	send("B")
	t.Reconnect() // B's reply dies with connection 1
	show()
	t.Reconnect()
	send("C") // the Write meets connection 3 first
	show()
	// Output:
	// re: A
	// read met connection 2: B lost its reply
	// write met connection 2: B goes there
	// re: B
	// write met connection 3: C goes there
	// read met connection 3: C was written there
	// re: C
}

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
