// Command tcat is a reconnecting netcat: it copies stdin to a connection and
// the connection to stdout, over TCP, TLS or a QUIC stream, through a Tether
// that reconnects whenever the connection fails, so that it survives server
// restarts.
//
//	go install github.com/io-tether/tether/cmd/tcat@latest
//
//	tcat [-tls | -quic] [-alpn P] [-ca FILE | -insecure] [-w 1m] [-v] [-session [-L host:port]] host:port
//	tcat -l [-tls | -quic] [-alpn P] [-ca FILE] [-v] [-session [-to host:port]] [host]:port
//
// Flags may also follow the address.
//
// When stdin ends, tcat shuts down its side of the connection (CloseWrite)
// and copies to stdout until the peer has finished too, then exits; if the
// connection is replaced after that, the new one is shut down for writing
// as well. A peer that finishes (closes) while stdin is still open is taken
// for a lost connection: tcat reconnects. -v logs every event of the Tether and its decision to stderr
// (middleware.Logging); -w bounds how long the connection may stay down,
// the first dial included (0: for ever), and with -session each handshake
// too. The policy is
//
//	tether.Chain(nil,
//		middleware.Logging(logger), // with -v
//		middleware.Notify(events),  // to shut down new connections after stdin ended
//		middleware.MaxDowntime(w),
//		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}),
//	)
//
// and the default policy inside gives up at once on permanent errors, such
// as a certificate that does not verify. -tls and -quic verify the server's
// certificate against the system's roots, or the PEM certificates in -ca
// FILE; -insecure skips the verification. QUIC needs an ALPN protocol:
// -alpn, "tcat" by default. A QUIC stream exists for the server only once
// the client writes on it, so over QUIC a server that speaks first hears
// of the client when it sends its first bytes.
//
// With -l, tcat listens instead, on 127.0.0.1 when the address has no host
// (say 0.0.0.0:PORT or [::]:PORT for every interface). It serves one peer at
// a time, and a new connection replaces the current one: that is how a
// reconnecting peer comes back. A peer's end may be a lost connection:
// what the listener wrote after it (up to 1 MiB) goes again, first, to the
// next connection when the old one turns out dead (a later write fails,
// or, over TCP and TLS on Unix, the peer reset it); a connection replaced
// otherwise counts as having delivered it. With -tls or -quic it
// uses a self-signed certificate for localhost, the loopback addresses and
// the listening host: with -ca FILE, the one in FILE, made and written
// there (with its key, mode 0600) if FILE does not exist, so that a
// restarted listener keeps it (a week: one of its own that expires within
// a day is made anew, at the start or in a handshake, and clients started
// before need the new FILE); without, a new one, which clients accept only
// with -insecure.
//
// Two terminals:
//
//	go run ./cmd/tcat -l -tls -ca /tmp/tcat.pem :9000
//	go run ./cmd/tcat -tls -ca /tmp/tcat.pem -v 127.0.0.1:9000
//
// What is typed in one appears in the other. Stop the listener (Ctrl-C) and
// start it again: the client reconnects and the conversation goes on. The
// client learns of a stopped listener at once (its reader sees the
// connection end), so nothing typed meanwhile is lost; bytes written into a
// connection that died unnoticed (a crashed host, a lost network) would be.
//
// # Sessions
//
// With -session on both ends, the bytes travel in a session (package
// session): each end keeps what it sent until the other acknowledges it,
// and after a reconnect the two replay what the other missed, so nothing
// is lost, duplicated or reordered, across cable pulls and connections
// killed on the server's side:
//
//	tar c dir | tcat -session host:9000
//	tcat -l -session :9000 </dev/null | tar x
//
// The listener serves one session and exits when both directions have
// ended. A later client is refused at the handshake: it retries until its
// -w passes, then fails ("server has too many sessions"). Either end fails
// when the session ends before its stdin does (the other end was
// interrupted, say), without waiting for stdin: the rest of stdin would
// reach nobody.
//
// The relay pair carries any TCP service over sessions, as Eternal
// Terminal's tunnel does; each connection accepted on -L is a session of
// its own, relayed by the listener to -to:
//
//	tcat -l -session :9000 -to 127.0.0.1:6379      # beside the server
//	tcat -session -L 127.0.0.1:6380 host:9000      # beside the client
//
// redis-cli -p 6380 then keeps its connection through network faults
// between the two.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tcp"
	tethertls "github.com/io-tether/tether/tls"
)

// errUsage is returned by run for a bad command line.
var errUsage = errors.New("usage")

// defaultALPN is the ALPN protocol of -quic when -alpn is not given.
const defaultALPN = "tcat"

// main runs tcat with the command line; it exits 130 when interrupted.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills at once
	}()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, context.Canceled):
		os.Exit(130) // interrupted, as a shell reports it
	default:
		fmt.Fprintln(os.Stderr, "tcat:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	listen   bool
	tls      bool
	quic     bool
	alpn     string
	ca       string
	insecure bool
	wait     time.Duration
	waitSet  bool // -w was given
	verbose  bool
	session  bool   // a session (package session) over the connection
	local    string // -L: relay the connections accepted here
	to       string // -to: relay each session to this address
	addr     string
}

// parseFlags parses args; errors are reported on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("tcat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.listen, "l", false, "listen on [host]:port instead of dialing it")
	fs.BoolVar(&c.tls, "tls", false, "TLS over TCP")
	fs.BoolVar(&c.quic, "quic", false, "a QUIC stream")
	fs.StringVar(&c.alpn, "alpn", "", "ALPN `protocol` for -tls or -quic (-quic: \""+defaultALPN+"\" by default)")
	fs.StringVar(&c.ca, "ca", "", "dialing: trust the PEM certificates in `FILE`; listening: the certificate and key to use, made if FILE does not exist")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the server's certificate")
	fs.DurationVar(&c.wait, "w", time.Minute, "give up when the connection has been down this long (0: never); with -session it bounds each handshake too")
	fs.BoolVar(&c.verbose, "v", false, "log connections and the Tether's events to stderr")
	fs.BoolVar(&c.session, "session", false, "a lossless session (both ends must say -session)")
	fs.StringVar(&c.local, "L", "", "with -session: relay each TCP connection accepted on `host:port` over a session of its own")
	fs.StringVar(&c.to, "to", "", "with -l -session: relay each session to the TCP server at `host:port`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: tcat [-tls | -quic] [-session [-L host:port]] [flags] host:port\n"+
			"       tcat -l [-tls | -quic] [-session [-to host:port]] [flags] [host]:port\n\n"+
			"Copies stdin to the connection and the connection to stdout, reconnecting as needed.\n")
		fs.PrintDefaults()
	}
	// Flags may follow the address (tcat -l :9000 -v): fs.Parse stops at
	// the first argument that is not a flag, so parse again after each;
	// "--" ends the flags.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return c, err
			}
			return c, errUsage // fs has reported it, with the usage
		}
		rest := fs.Args()
		ended := len(rest) < len(args) && args[len(args)-len(rest)-1] == "--"
		if len(rest) == 0 || ended {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	fs.Visit(func(f *flag.Flag) { c.waitSet = c.waitSet || f.Name == "w" })
	if err := c.check(pos); err != nil {
		fmt.Fprintln(stderr, "tcat:", err)
		fs.Usage()
		return c, errUsage
	}
	c.addr = pos[0]
	if c.quic && c.alpn == "" {
		c.alpn = defaultALPN
	}
	return c, nil
}

// check reports a bad combination of flags, or bad arguments.
func (c config) check(args []string) error {
	switch {
	case len(args) != 1:
		return errors.New("want one address")
	case c.tls && c.quic:
		return errors.New("-tls and -quic exclude each other")
	case (c.alpn != "" || c.ca != "" || c.insecure) && !c.tls && !c.quic:
		return errors.New("-alpn, -ca and -insecure need -tls or -quic")
	case c.listen && c.insecure:
		return errors.New("-insecure is for dialing")
	case c.listen && c.waitSet:
		return errors.New("-w is for dialing") // a listener waits for its peers for ever
	case c.ca != "" && c.insecure:
		return errors.New("-ca and -insecure exclude each other") // -insecure would ignore -ca
	case c.wait < 0:
		return errors.New("-w must not be negative")
	case c.local != "" && (!c.session || c.listen):
		return errors.New("-L needs -session, and is for dialing")
	case c.to != "" && (!c.session || !c.listen):
		return errors.New("-to needs -l and -session")
	}
	for _, a := range []string{c.local, c.to} {
		if _, _, err := net.SplitHostPort(a); a != "" && err != nil {
			return err
		}
	}
	_, _, err := net.SplitHostPort(args[0])
	return err
}

// run runs tcat with the command line args: it copies stdin to the
// connection and the connection to stdout, and logs to stderr. It returns
// ctx's error when ctx ends first.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	switch {
	case cfg.listen:
		return listen(ctx, cfg, stdin, stdout, stderr)
	case cfg.session:
		return connectSession(ctx, cfg, stdin, stdout, stderr)
	}
	return connect(ctx, cfg, stdin, stdout, stderr)
}

// policy returns the handler of tcat's Tethers, with events sent to
// events when it is not nil.
func policy(cfg config, stderr io.Writer, events chan<- tether.Event) tether.DisconnectHandler {
	var mw []tether.Middleware
	if cfg.verbose {
		mw = append(mw, middleware.Logging(slog.New(slog.NewTextHandler(stderr, nil))))
	}
	if events != nil {
		mw = append(mw, middleware.Notify(events))
	}
	if cfg.wait > 0 {
		mw = append(mw, middleware.MaxDowntime(cfg.wait))
	}
	mw = append(mw, middleware.Backoff(middleware.BackoffConfig{
		BaseDelay: 100 * time.Millisecond,
		MaxDelay:  5 * time.Second,
	}))
	return tether.Chain(nil, mw...)
}

// connect dials cfg.addr with a Tether and copies until the exchange is
// over: stdin has ended and the peer has finished.
func connect(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) error {
	tc, err := clientTLS(cfg)
	if err != nil {
		return err
	}
	events := make(chan tether.Event, 16)
	h := policy(cfg, stderr, events)

	// A netcat carries an unframed byte stream: the rest of a Write cut by
	// a loss goes to the next connection rather than being dropped.
	resume := tether.WithWritePolicy(tether.WriteResume)
	var t *tether.Tether
	switch {
	case cfg.quic:
		t, err = tetherquic.Dial(ctx, cfg.addr, tc, h, resume)
	case cfg.tls:
		t, err = tethertls.Dial(ctx, cfg.addr, tc, h, resume)
	default:
		t, err = tcp.Dial(ctx, cfg.addr, h, resume)
	}
	if err != nil {
		return err
	}
	defer t.Close()

	var stdinDone atomic.Bool
	go func() {
		if _, err := io.Copy(t, stdin); err != nil && t.Err() != nil {
			return // the Tether ended: the copy to stdout says why
		}
		stdinDone.Store(true)
		t.CloseWrite()
	}()
	go func() {
		// A connection that replaces a half-closed one is half-closed
		// too, so that the peer finishes; CloseWrite waits for it to be
		// in place. Interruption closes the Tether.
		for {
			select {
			case ev := <-events:
				if ev.Kind == tether.Reconnected && stdinDone.Load() {
					t.CloseWrite()
				}
			case <-ctx.Done():
				t.Close()
				return
			case <-t.Done():
				return
			}
		}
	}()
	_, err = io.Copy(stdout, t)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// listenAddr returns addr with 127.0.0.1 for an empty host.
func listenAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// proto names the transport of cfg.
func proto(cfg config) string {
	switch {
	case cfg.quic:
		return "quic"
	case cfg.tls:
		return "tls"
	}
	return "tcp"
}

// logf writes a line to w when verbose.
func logf(w io.Writer, verbose bool, format string, args ...any) {
	if verbose {
		fmt.Fprintf(w, "tcat: "+strings.TrimSuffix(format, "\n")+"\n", args...)
	}
}
