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
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "AUTH s3cret\n" {
			c.Write([]byte("DENIED\n"))
			return
		}
		c.Write([]byte("OK\n"))
		c.Write([]byte("secret data\n"))
	}()

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
	go func() {
		for _, msg := range []string{"news: one\n", "news: two\n"} {
			c, err := l.Accept()
			if err != nil {
				return
			}
			sub, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Printf("server: %s", sub)
			c.Write([]byte(msg))
			c.Close() // the server restarts
		}
	}()

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
	go func() {
		// The first server dies in the middle of a 5-byte frame; the
		// second sends a whole one.
		for _, data := range []string{"hel", "world"} {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(data))
			c.Close()
		}
	}()

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
