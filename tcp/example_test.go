package tcp_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/io-tether/tether/tcp"
)

// Dial is the one-line way to a reconnecting TCP connection with the
// default policy.
func ExampleDial() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()

	t, err := tcp.Dial(context.Background(), l.Addr().String(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	t.Write([]byte("ping"))
	buf := make([]byte, 4)
	io.ReadFull(t, buf)
	fmt.Println(string(buf))
	// Output: ping
}

// A Dialer with a shorter per-attempt timeout and faster keep-alive probes.
func ExampleDialer() {
	d := &tcp.Dialer{Timeout: 3e9}
	_, err := d.Dial(context.Background(), "127.0.0.1") // no port
	fmt.Println(err)
	// Output: dial tcp: address 127.0.0.1: missing port in address
}
