// Command seed is io-tether's README example in Go: server A writes "foo"
// and closes the connection; the handler reports the disconnect on a
// channel, moves the next dial to server B, waits, and reconnects; B writes
// "bar". One io.ReadFull of 6 bytes returns "foobar".
//
//	go run ./examples/seed
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run plays the example against two embedded servers on loopback.
func run(w io.Writer) error {
	// Two servers, each writing half of "foobar".
	l1, err := listenOnce("foo")
	if err != nil {
		return err
	}
	defer l1.Close()
	l2, err := listenOnce("bar")
	if err != nil {
		return err
	}
	defer l2.Close()

	// The handler: report the reason, try the second server, wait, retry.
	reasons := make(chan string, 10)
	h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		fmt.Fprintf(w, "event: %s %s\n", ev.Kind, ev.Dialed)
		switch ev.Kind {
		case tether.Unreachable:
			ev.Delay = 500 * time.Millisecond // a dial failed: never redial in a tight loop
			return tether.Reconnect
		case tether.Connected, tether.Reconnected:
			return tether.Reconnect // accept the new connection
		}
		reasons <- ev.Err.Error()
		ev.Addr = l2.Addr().String()
		select { // arbitrary blocking code can run here
		case <-time.After(500 * time.Millisecond):
			return tether.Reconnect
		case <-ctx.Done():
			return tether.GiveUp
		}
	})

	t, err := tether.Dial(context.Background(), &tcp.Dialer{}, l1.Addr().String(), h)
	if err != nil {
		return err
	}
	defer t.Close()

	// A disconnect happens in the middle of this read; the handler moves
	// the Tether to the second server, and the read goes on.
	buf := make([]byte, 6)
	if _, err := io.ReadFull(t, buf); err != nil {
		return err
	}
	fmt.Fprintf(w, "read: %s\n", buf)
	fmt.Fprintf(w, "disconnect reason: %s\n", <-reasons)
	if string(buf) != "foobar" {
		return fmt.Errorf("read %q, want %q", buf, "foobar")
	}
	return nil
}

// listenOnce listens on a loopback port and serves one connection: it
// writes msg and closes it.
func listenOnce(msg string) (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte(msg))
			c.Close()
		}
	}()
	return l, nil
}
