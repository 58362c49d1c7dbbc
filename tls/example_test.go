package tls_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// serve accepts TLS connections on ln and runs handle on each, with its
// number (from 1), until ln is closed.
func serve(ln net.Listener, handle func(c *tls.Conn, n int)) {
	for n := 1; ; n++ {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				return
			}
			handle(tc, n)
		}()
	}
}

// reconnectAtOnce is a policy for examples: reconnect at once, give up on
// permanent errors.
var reconnectAtOnce = tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
	if ev.Err != nil && tether.IsPermanent(ev.Err) {
		return tether.GiveUp
	}
	return tether.Reconnect
})

func ExampleDial() {
	// An echo server on 127.0.0.1, with tethertest's test certificate.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tethertest.TLSServerConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, func(c *tls.Conn, _ int) { io.Copy(c, c) })

	// Trust the test CA; the Dialer sets ServerName to the host dialed.
	config := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
	t, err := tethertls.Dial(context.Background(), ln.Addr().String(), config, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	fmt.Fprintln(t, "hello over TLS")
	line, err := bufio.NewReader(t).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	// Output: hello over TLS
}

// The Dialer keeps a session cache across its dials: the server sees the
// reconnect resume the session of the first connection.
func ExampleDialer() {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tethertest.TLSServerConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, func(c *tls.Conn, n int) {
		fmt.Fprintf(c, "connection %d resumed a session: %t\n", n, c.ConnectionState().DidResume)
		if n == 1 {
			return // the server closes the first connection
		}
		io.Copy(io.Discard, c)
	})

	d := &tethertls.Dialer{Config: &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}}
	t, err := tether.Dial(context.Background(), d, ln.Addr().String(), reconnectAtOnce)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	r := bufio.NewReader(t)
	for range 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(line)
	}
	// Output:
	// connection 1 resumed a session: false
	// connection 2 resumed a session: true
}
