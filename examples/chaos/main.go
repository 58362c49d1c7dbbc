// Command chaos is tether's demo: a client streams numbered, checksummed
// records through a Tether to an echo server, while a fault proxy between
// the two drops, resets, refuses and blackholes the connections on a
// schedule; the client checks that every record that comes back is intact,
// in order and not duplicated.
//
//	go run ./examples/chaos [-d 15s] [-rate 500] [-idle 250ms] [-log FILE | -v] [-upstream ADDR | -session]
//
// Everything runs on 127.0.0.1: an echo server, the fault proxy in front of
// it (tethertest/faultproxy), and the client, a Tether over TCP with the
// policy
//
//	tether.Chain(nil,
//		middleware.Logging(logger), // each event and decision: -log FILE, or stderr with -v
//		middleware.Notify(events),  // feeds the status line and the summary
//		middleware.Backoff(middleware.BackoffConfig{
//			BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second,
//		}),
//	)
//
// and the options a framed protocol needs: tether.WithReadIdleTimeout, so
// that a blackholed connection, which never fails by itself, counts as lost
// once nothing has come back for the idle timeout (the echo makes a
// heartbeat). The default write policy (tether.WriteWhole) drops the rest
// of a record that a dying connection took only in part, and says so, so
// that it is never sent at the start of the next connection. The reader reads with
// Tether.ReadGeneration, which tells the connection each Read's bytes came
// from, so that an incomplete record from a connection that died is
// discarded, never spliced with the next connection's bytes. The records,
// and the checker that counts them, are package tethertest/records'.
//
// A status line (records sent and verified, reconnects, the connection's
// state and how long it has been down) redraws in place on a terminal, and
// is printed as a plain line every second otherwise, between the lines
// that report each fault and each event of the Tether. After -d the client
// stops writing, waits for the records in flight, and prints a summary and
// a verdict. The verdict is PASS when no record came back corrupted,
// reordered or duplicated, none went missing without a reconnect, and the
// stream recovered after the last fault; the exit status is 0 then, and 1
// otherwise. Records written to a connection that then died are lost in
// flight: no reconnect can save them (see "What a reconnect cannot save" in
// package tether), and the summary counts them.
//
// The schedule scales with -d: a clean close at 10 % of it, a reset at
// 20 %, the server down (connections refused) from 30 % to 43 %, a
// blackhole from 53 % to 67 %, then calm until the end. -upstream puts the
// fault proxy in front of another echo server (anything that writes back
// what it reads) instead of the embedded one.
//
// -session runs the same faults through a session (package session): the
// echo server is a session.Listener, and the client a session.Dial over the
// same dialer and policy, whose keep-alive (a ping after half the idle
// timeout, and the other half to answer) replaces the read watchdog. Each
// end keeps what it sent until the other acknowledges it and replays the
// rest after a reconnect, so the summary shows 0 lost in flight, and the
// verdict requires it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/session"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest/faultproxy"
)

// seed makes the records' payloads.
const seed = 0x7e7e

var (
	// errVerdict is returned by run when the verdict fails.
	errVerdict = errors.New("verdict: FAIL")
	// errUsage is returned by run for bad flags.
	errUsage = errors.New("usage")
)

// main runs the demo with the command line, and exits 1 when the verdict
// fails.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills at once
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errVerdict):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	d        time.Duration
	rate     int
	idle     time.Duration
	logFile  string
	verbose  bool
	upstream string
	session  bool
}

// parseFlags parses args; errors are reported on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.d, "d", 15*time.Second, "how long to run")
	fs.IntVar(&c.rate, "rate", 500, "records written per second (1 to 10000)")
	fs.DurationVar(&c.idle, "idle", 250*time.Millisecond, "read idle timeout: how long a silent connection lives")
	fs.StringVar(&c.logFile, "log", "", "write the Logging middleware's records to `FILE`")
	fs.BoolVar(&c.verbose, "v", false, "write the Logging middleware's records to stderr")
	fs.StringVar(&c.upstream, "upstream", "", "put the fault proxy in front of the echo server at `ADDR` instead of an embedded one")
	fs.BoolVar(&c.session, "session", false, "stream through a session (package session), which loses nothing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: chaos [flags]\n\nStreams checksummed records through a Tether while a proxy breaks its connections.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = "unexpected arguments: " + strings.Join(fs.Args(), " ")
	case c.d <= 0:
		bad = "-d must be positive"
	case c.rate < 1 || c.rate > 10000:
		bad = "-rate must be within 1 to 10000"
	case c.idle <= 0:
		bad = "-idle must be positive"
	case c.logFile != "" && c.verbose:
		bad = "-log and -v exclude each other"
	case c.session && c.upstream != "":
		bad = "-session and -upstream exclude each other (-session runs its own session echo server)"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "chaos:", bad)
		fs.Usage()
		return c, errUsage
	}
	return c, nil
}

// run plays the demo as the command line args say, writing the status and
// the summary to stdout and the logs to stderr. It returns errVerdict when
// the verdict fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	disp := newDisplay(stdout, isTerminal(stdout), start)

	upstream := cfg.upstream
	if upstream == "" {
		srv, err := startEcho("127.0.0.1:0", cfg.session)
		if err != nil {
			return err
		}
		defer srv.Close()
		upstream = srv.Addr()
	}
	proxy, err := faultproxy.New(upstream, seed)
	if err != nil {
		return err
	}
	defer proxy.Close()

	logger, closeLog, err := newLogger(cfg, stderr, disp)
	if err != nil {
		return err
	}
	defer closeLog()

	events := make(chan tether.Event, 256)
	h := tether.Chain(nil,
		middleware.Logging(logger),
		middleware.Notify(events),
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}),
	)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var (
		t       conn
		readGen func([]byte) (int, uint64, error)
		via     = "Tether"
	)
	if cfg.session {
		s, err := session.Dial(dctx, &tcp.Dialer{Timeout: time.Second}, proxy.Addr(), h,
			session.WithKeepAlive(cfg.idle/2, cfg.idle/2))
		cancel()
		if err != nil {
			return err
		}
		// One stream across connections: its bytes have one generation.
		t, readGen, via = s, func(p []byte) (int, uint64, error) {
			n, err := s.Read(p)
			return n, 1, err
		}, "session"
	} else {
		tt, err := tether.Dial(dctx, &tcp.Dialer{Timeout: time.Second}, proxy.Addr(), h,
			tether.WithReadIdleTimeout(cfg.idle))
		cancel()
		if err != nil {
			return err
		}
		t, readGen = tt, tt.ReadGeneration
	}
	defer t.Close()

	where := "embedded echo server " + upstream
	switch {
	case cfg.upstream != "":
		where = "echo server " + upstream
	case cfg.session:
		where = "embedded session echo server " + upstream
	}
	disp.printf("chaos: records -> %s -> fault proxy %s -> %s\n", via, proxy.Addr(), where)
	disp.printf("       %d records/s for %v; Ctrl-C ends it early\n", cfg.rate, cfg.d)

	c := newClient(t, readGen, cfg, proxy, disp, start)
	return c.run(ctx, events)
}
