package quic_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tethertest"
	"github.com/quic-go/quic-go"
)

// A server that speaks first never hears of a stream until the client writes
// on it: an OnConnect hook sends a hello on every new stream, the first and
// each one after a reconnect.
func Example_serverSpeaksFirst() {
	// The server greets each stream once the client's hello arrives, then
	// echoes.
	addr, stop := startExampleServer("greeter", func(st *quic.Stream) {
		hello := make([]byte, len("hello\n"))
		if _, err := io.ReadFull(st, hello); err != nil {
			return
		}
		fmt.Fprintf(st, "welcome\n")
		io.Copy(st, st)
	})
	defer stop()

	tlsConfig := tethertest.TLSClientConfig("greeter") // RootCAs, NextProtos
	d := &tetherquic.Dialer{TLSConfig: tlsConfig}
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := tether.Dial(ctx, d, addr, nil,
		tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
			_, err := c.Write([]byte("hello\n"))
			return err
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	greeting, err := bufio.NewReader(t).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(greeting)
	// Output: welcome
}

// Tethers that share a Dialer share its QUIC connection: the second one's
// stream costs no handshake.
func ExampleDialer() {
	addr, stop := startExampleServer("echo", func(st *quic.Stream) { io.Copy(st, st) })
	defer stop()

	d := &tetherquic.Dialer{TLSConfig: tethertest.TLSClientConfig("echo")}
	defer d.Close() // closes the QUIC connection

	for range 2 {
		t, err := tether.Dial(context.Background(), d, addr, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer t.Close()
		fmt.Println(t.Conn().(*tetherquic.Conn).Origin())
	}
	// Output:
	// full-handshake
	// new-stream
}

// Request/response over streams, as HTTP/3 does it: one Tether per request
// on a shared Dialer. The request ends with CloseWrite (the server reads it
// to its end), and the response with the server's FIN, which after
// CloseWrite is the end of the exchange (io.EOF), not a lost connection.
// Each request after the first costs a new stream, no handshake; a request
// whose connection died fails, and the next one redials.
func Example_requestResponse() {
	addr, stop := startExampleServer("rr", func(st *quic.Stream) {
		req, err := io.ReadAll(st) // to the client's FIN
		if err != nil {
			return
		}
		fmt.Fprintf(st, "re: %s", req)
		st.Close()
	})
	defer stop()

	d := &tetherquic.Dialer{
		TLSConfig: tethertest.TLSClientConfig("rr"),
		// A Tether closed in the middle of a request resets its stream
		// rather than ending half a request with a FIN.
		ResetOnClose: true,
	}
	defer d.Close()

	do := func(req string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t, err := tether.Dial(ctx, d, addr, nil)
		if err != nil {
			return "", err
		}
		defer t.Close()
		t.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(t, req); err != nil {
			return "", err
		}
		if err := t.CloseWrite(); err != nil {
			return "", err
		}
		resp, err := io.ReadAll(t)
		return string(resp), err
	}
	for _, req := range []string{"one", "two", "three"} {
		resp, err := do(req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp)
	}
	// Output:
	// re: one
	// re: two
	// re: three
}

// startExampleServer serves each stream with serve on 127.0.0.1, with the
// ALPN protocol proto.
func startExampleServer(proto string, serve func(*quic.Stream)) (addr string, stop func()) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tethertest.TLSServerConfig(proto), nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := c.AcceptStream(ctx)
					if err != nil {
						return
					}
					go serve(st)
				}
			}()
		}
	}()
	return ln.Addr().String(), func() {
		cancel()
		tr.Close() // ends every connection
		udp.Close()
		<-done
	}
}
