// Command quic keeps a Tether over a QUIC stream alive while an embedded
// server resets the stream, closes the connection, crashes and restarts, and
// prints which kind of reconnect each one cost: a new stream on the live
// connection, a redial with 0-RTT, or a full handshake.
//
//	go run ./examples/quic
//
// Everything runs on 127.0.0.1 and ends within a few seconds. The server
// speaks first (a welcome line on each stream), so the client sends a hello
// from an OnConnect hook: a QUIC stream does not exist for the server until
// the client writes on it. The hello is idempotent, which makes it safe to
// send in 0-RTT.
//
// This file is the client; server.go is the embedded server and its
// self-signed certificate.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/quic-go/quic-go"
)

const proto = "tether-example"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, 2*time.Second); err != nil {
		log.Fatal(err)
	}
}

// run plays the scenario. idle is the client's idle timeout: how long it
// takes to notice that the server crashed.
func run(ctx context.Context, w io.Writer, idle time.Duration) error {
	cert, roots, err := selfSigned()
	if err != nil {
		return err
	}
	srv := &server{cert: cert, resetKey: newKey(), ticketKey: newKey()}
	if err := srv.start("127.0.0.1:0"); err != nil {
		return err
	}
	defer srv.crash()

	// The client: 0-RTT on, since its first bytes (the hello) are safe to
	// receive twice; a short idle timeout so that a crash is noticed soon.
	d := &tetherquic.Dialer{
		TLSConfig:  &tls.Config{RootCAs: roots, NextProtos: []string{proto}},
		Config:     &quic.Config{MaxIdleTimeout: idle},
		Enable0RTT: true,
	}
	defer d.Close()

	// Each new stream begins with the hello and the server's welcome.
	welcomes := make(chan string, 1)
	hello := tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			return err
		}
		line, err := readLine(c)
		if err != nil {
			return err
		}
		select {
		case welcomes <- line: // report takes it before the next reconnect
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	// The policy: redial at once after a loss, 100 ms after a failed
	// dial, and give up on a permanent error (a certificate that does not
	// verify). Notify hands each event and its decision to report.
	events := make(chan tether.Event, 16)
	h := tether.Chain(tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		switch {
		case tether.IsPermanent(ev.Err):
			return tether.GiveUp
		case ev.Kind == tether.Unreachable:
			ev.Delay = 100 * time.Millisecond
		}
		return tether.Reconnect
	}), middleware.Notify(events))

	t, err := tether.Dial(ctx, d, srv.addr, h, hello)
	if err != nil {
		return err
	}
	defer t.Close()

	// report prints the events up to the next connection, and which kind
	// of reconnect it was.
	report := func() error {
		for {
			select {
			case ev := <-events:
				if ev.Kind != tether.Connected && ev.Kind != tether.Reconnected {
					fmt.Fprintf(w, "%s: %v\n", ev.Kind, ev.Err)
					continue
				}
				fmt.Fprintf(w, "%s (%s) in %.1f ms: %s\n", ev.Kind, ev.Conn.(*tetherquic.Conn).Origin(),
					float64(ev.DialTime.Microseconds())/1000, <-welcomes)
				return nil
			case <-t.Done():
				return t.Err()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := report(); err != nil {
		return err
	}

	// A reader that is always waiting, as in a real client: it is what
	// notices that a stream or a connection is gone.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(t)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	disruptions := []struct {
		what string
		do   func() error
	}{
		{"resets the stream", srv.resetStream},
		{"closes the connection", srv.closeConn},
		{"crashes and restarts, keeping its session ticket keys", func() error { return srv.restart(false) }},
		{"crashes and restarts with new session ticket keys (0-RTT will be rejected)", func() error { return srv.restart(true) }},
	}
	for i := 0; ; i++ {
		msg := fmt.Sprintf("message %d", i+1)
		if _, err := fmt.Fprintln(t, msg); err != nil {
			return err
		}
		select {
		case line, ok := <-lines:
			if !ok {
				return fmt.Errorf("the Tether ended: %w", t.Err())
			}
			fmt.Fprintf(w, "sent %q, got %q\n", msg, line)
		case <-ctx.Done():
			return ctx.Err()
		}
		if i == len(disruptions) {
			return nil
		}
		fmt.Fprintf(w, "server: %s\n", disruptions[i].what)
		if err := disruptions[i].do(); err != nil {
			return err
		}
		if err := report(); err != nil {
			return err
		}
	}
}

// readLine reads one line byte by byte, so that nothing after it is taken
// from the connection.
func readLine(c net.Conn) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return b.String(), err
		}
		if buf[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(buf[0])
	}
}
