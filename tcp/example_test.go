package tcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/io-tether/tether"
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
// Its errors name the transport and the address, as net.Dialer's do.
func ExampleDialer() {
	d := &tcp.Dialer{
		Timeout:         3 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
	_, err := d.Dial(context.Background(), "127.0.0.1") // no port
	fmt.Println(err)
	fmt.Println("permanent:", tether.IsPermanent(err))
	// Output:
	// dial tcp 127.0.0.1: address 127.0.0.1: missing port in address
	// permanent: true
}
