package dialers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
)

// echo serves ln with an echo server until ln is closed.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// roundtrip writes a line to c and prints the line that comes back.
func roundtrip(c net.Conn, line string) {
	fmt.Fprintln(c, line)
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(got)
}

func ExampleUnix() {
	dir, err := os.MkdirTemp("", "tether-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echo(ln)

	t, err := tether.Dial(context.Background(), &dialers.Unix{}, path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	roundtrip(t, "hello over a Unix socket")
	// Output: hello over a Unix socket
}

func ExampleFromFunc() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echo(ln)

	// Any func(ctx, network, addr) (net.Conn, error): a net.Dialer's, an
	// http.Transport's, a proxy dialer's.
	nd := &net.Dialer{KeepAlive: 30 * time.Second}
	d := dialers.FromFunc("tcp", nd.DialContext)
	t, err := tether.Dial(context.Background(), d, ln.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	roundtrip(t, "hello through a dial function")
	// Output: hello through a dial function
}

func ExampleTimeout() {
	// A dial that hangs, as one to a host behind a firewall that drops
	// packets may, and that does not even heed its ctx.
	unplugged := make(chan struct{})
	defer close(unplugged)
	hang := tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
		<-unplugged
		return nil, errors.New("unplugged")
	})
	d := dialers.Timeout(hang, 100*time.Millisecond)

	_, err := d.Dial(context.Background(), "192.0.2.1:443")
	fmt.Println(err)
	fmt.Println("transient:", !tether.IsPermanent(err), "- deadline exceeded:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// dial 192.0.2.1:443: tether/dialers: no connection within 100ms
	// transient: true - deadline exceeded: true
}
