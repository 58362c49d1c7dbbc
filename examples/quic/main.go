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
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/testcert"
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
	w = &lockedWriter{w: w} // the handler prints from the Tether's goroutine
	certs := testcert.Get()
	srv := &server{w: w, resetKey: newKey(), ticketKey: newKey(), certs: certs}
	if err := srv.start("127.0.0.1:0"); err != nil {
		return err
	}
	defer srv.crash()

	// The client: 0-RTT on, since its first bytes (the hello) are safe to
	// receive twice; a short idle timeout so that a crash is noticed soon.
	d := &tetherquic.Dialer{
		TLSConfig:  certs.ClientConfig(proto),
		Config:     &quic.Config{MaxIdleTimeout: idle},
		Enable0RTT: true,
	}
	defer d.Close()

	var (
		mu      sync.Mutex
		welcome string // the server's greeting on the current stream
	)
	hello := tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			return err
		}
		line, err := readLine(c)
		mu.Lock()
		welcome = line
		mu.Unlock()
		return err
	})
	reconnected := make(chan struct{}, 1)
	h := tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
		switch ev.Kind {
		case tether.Connected, tether.Reconnected:
			mu.Lock()
			fmt.Fprintf(w, "%s (%s) in %.1f ms: %s\n", ev.Kind, ev.Conn.(*tetherquic.Conn).Origin(),
				float64(ev.DialTime.Microseconds())/1000, welcome)
			mu.Unlock()
			if ev.Kind == tether.Reconnected {
				reconnected <- struct{}{}
			}
		case tether.Disconnected, tether.Unreachable:
			fmt.Fprintf(w, "%s: %v\n", ev.Kind, ev.Err)
			if tether.IsPermanent(ev.Err) {
				return tether.GiveUp
			}
			if ev.Kind == tether.Unreachable {
				ev.Delay = 100 * time.Millisecond
			}
		}
		return tether.Reconnect
	})

	t, err := tether.Dial(ctx, d, srv.addr, h, hello)
	if err != nil {
		return err
	}
	defer t.Close()

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
		select {
		case <-reconnected:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lockedWriter serialises the Writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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

// server is the embedded QUIC server: on each stream it waits for the
// client's hello, writes a welcome line, then echoes each line.
type server struct {
	w         io.Writer
	certs     testcert.Pair
	resetKey  quic.StatelessResetKey
	ticketKey [32]byte
	addr      string

	mu      sync.Mutex
	run     int // how many times the server started
	conns   int // connections of this run
	udp     *net.UDPConn
	tr      *quic.Transport
	conn    *quic.Conn   // the latest connection
	stream  *quic.Stream // the latest stream
	running sync.WaitGroup
}

func (s *server) start(addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return err
	}
	tc := s.certs.ServerConfig(proto)
	// Session tickets that a restarted server can still decrypt: the
	// client resumes, with 0-RTT.
	tc.SetSessionTicketKeys([][32]byte{s.ticketKey})
	// The same stateless reset key after a restart lets the server tell a
	// client at once that its connection is gone, when the client sends
	// more than a keep-alive.
	tr := &quic.Transport{Conn: udp, StatelessResetKey: &s.resetKey}
	ln, err := tr.ListenEarly(tc, &quic.Config{Allow0RTT: true})
	if err != nil {
		udp.Close()
		return err
	}
	s.mu.Lock()
	s.run++
	s.conns = 0
	s.udp, s.tr, s.addr = udp, tr, udp.LocalAddr().String()
	run := s.run
	s.mu.Unlock()
	s.running.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.conn = c
			n := s.conns
			s.mu.Unlock()
			s.running.Go(func() { s.serveConn(c, run, n) })
		}
	})
	return nil
}

func (s *server) serveConn(c *quic.Conn, run, conn int) {
	for n := 1; ; n++ {
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		s.mu.Lock()
		s.stream = st
		s.mu.Unlock()
		s.running.Go(func() {
			sc := bufio.NewScanner(st)
			if !sc.Scan() || sc.Text() != "hello" {
				st.CancelWrite(2)
				return
			}
			fmt.Fprintf(st, "welcome (server run %d, connection %d, stream %d)\n", run, conn, n)
			for sc.Scan() {
				fmt.Fprintf(st, "echo: %s\n", sc.Text())
			}
			st.Close()
		})
	}
}

func (s *server) resetStream() error {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	st.CancelRead(1)
	st.CancelWrite(1)
	return nil
}

func (s *server) closeConn() error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	return c.CloseWithError(0, "closing")
}

// crash stops the server without a word to its clients.
func (s *server) crash() {
	s.mu.Lock()
	tr, udp := s.tr, s.udp
	s.tr, s.udp = nil, nil
	s.mu.Unlock()
	if tr == nil {
		return
	}
	tr.Close()
	udp.Close()
	s.running.Wait()
}

// restart crashes the server and starts it again on the same address, with
// new session ticket keys if newKeys.
func (s *server) restart(newKeys bool) error {
	s.crash()
	if newKeys {
		s.ticketKey = newKey()
	}
	return s.start(s.addr)
}

func newKey() [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic(err)
	}
	return k
}
