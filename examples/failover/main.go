// Command failover shows a Tether moving between three servers as they go
// down and come back, and prints which server answers each request.
//
//	go run ./examples/failover [-v]
//
// Three servers, A, B and C, run on 127.0.0.1; each answers a line "N" with
// "N NAME". The client sends a request every 150 ms through a Tether over
// TCP with the policy
//
//	tether.Chain(nil,
//		middleware.Logging(logger), // -v: every event and decision, to stderr
//		middleware.Notify(events),  // the events printed between the requests
//		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}),
//		middleware.StickyFailover(A, B, C),
//	)
//
// while the servers go down and come back on a script. StickyFailover
// prefers A: each outage begins with a dial to A, and failed dials move on
// down the list (Failover would just take the next). A Tether on a backup
// stays there while it works, even once A is back: a handler acts only when
// a connection is lost. A connection counts as stable after 200 ms
// (tether.WithStabilityPeriod; 1 s by default), so that the script's short
// phases do not look like a flapping server, which the Tether counts as a
// failed dial and which StickyFailover moves on from. The script takes
// about four seconds; nothing is lost, since each request goes out once the
// Tether is connected again.
//
// To try it by hand, start servers in some terminals and a client against
// them in another, then stop and restart the servers:
//
//	go run ./examples/failover -serve 127.0.0.1:7001
//	go run ./examples/failover -serve 127.0.0.1:7002
//	go run ./examples/failover -servers 127.0.0.1:7001,127.0.0.1:7002 [-d 1m] [-every 500ms]
//
// The client then sends a request every -every, for -d, to any server that
// answers lines (an echo server will do). A request sent into a connection
// that died unnoticed is lost with it: the client reports it after a
// second without an answer, and goes on.
//
// This file runs the script; client.go is the client, which is what to
// copy, and server.go the servers.
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
)

// The pace of the script.
const (
	pace      = 150 * time.Millisecond // between two requests
	stability = 200 * time.Millisecond // the Tether's stability period
	answerBy  = time.Second            // how long a request waits for its answer
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	verbose bool
	serve   string        // -serve: run one server on this address
	name    string        // its name in its answers
	servers []string      // -servers: run a client against these
	d       time.Duration // for this long
	every   time.Duration // sending a request this often
}

// parseFlags parses args. It reports a bad command line on stderr, with
// the usage.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := config{d: time.Minute, every: 500 * time.Millisecond}
	var servers string
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.verbose, "v", false, "log the Tether's events and decisions to stderr")
	fs.StringVar(&c.serve, "serve", "", "run one server on `ADDR`, until interrupted")
	fs.StringVar(&c.name, "name", "", "the server's name in its answers (-serve; default its address)")
	fs.StringVar(&servers, "servers", "", "run a client against the servers at `ADDR,ADDR,...`, the first preferred")
	fs.DurationVar(&c.d, "d", c.d, "how long the client runs (-servers)")
	fs.DurationVar(&c.every, "every", c.every, "how often the client sends a request (-servers)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: failover [-v]\n"+
			"       failover -serve ADDR [-name NAME]\n"+
			"       failover -servers ADDR,ADDR,... [-d D] [-every D] [-v]\n\n"+
			"Moves a Tether between servers as they go down and come back.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err // fs has reported it, with the usage
	}
	if servers != "" {
		c.servers = strings.Split(servers, ",")
	}
	if err := c.check(fs.Args()); err != nil {
		fmt.Fprintln(stderr, "failover:", err)
		fs.Usage()
		return c, err
	}
	return c, nil
}

// check reports a bad combination of flags, or arguments left over.
func (c config) check(args []string) error {
	switch {
	case len(args) > 0:
		return fmt.Errorf("unexpected arguments: %s", strings.Join(args, " "))
	case c.serve != "" && c.servers != nil:
		return errors.New("-serve and -servers exclude each other")
	case c.name != "" && c.serve == "":
		return errors.New("-name needs -serve")
	case c.d <= 0 || c.every <= 0:
		return errors.New("-d and -every must be positive")
	}
	return nil
}

// run runs the mode that cfg chooses, writing to stdout, and logs to
// stderr.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	switch {
	case cfg.serve != "":
		return serveUntil(ctx, cfg, stdout)
	case cfg.servers != nil:
		return clientOnly(ctx, cfg, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // a bound, should the script hang
	defer cancel()
	return script(ctx, cfg, stdout, stderr)
}

// script plays the demo with three embedded servers.
func script(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	servers := map[string]*server{}
	var addrs []string
	for _, name := range []string{"A", "B", "C"} {
		s := &server{name: name, addr: "127.0.0.1:0"}
		if err := s.start(); err != nil {
			return err
		}
		defer s.stop()
		servers[name] = s
		addrs = append(addrs, s.addr)
	}
	fmt.Fprintf(stdout, "servers: A %s, B %s, C %s\n", addrs[0], addrs[1], addrs[2])
	fmt.Fprintln(stdout, "policy: Logging, Notify, Backoff, StickyFailover(A, B, C)")

	c, err := dial(ctx, cfg, addrs, stdout, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	for name, s := range servers {
		c.names[s.addr] = name
	}
	if err := c.until(ctx, tether.Connected, nil); err != nil {
		return err
	}

	down := func(name, why string) error {
		fmt.Fprintf(stdout, "server %s goes down%s\n", name, why)
		servers[name].stop()
		return c.until(ctx, tether.Reconnected, nil)
	}
	up := func(name, why string) error {
		fmt.Fprintf(stdout, "server %s comes back%s\n", name, why)
		return servers[name].start()
	}
	requests := func() error { return c.requests(ctx, 3) }
	steps := []func() error{
		requests,
		func() error { return down("A", "") },
		requests,
		func() error { return down("B", "") },
		requests,
		func() error { return up("A", ": the client stays on C while C works") },
		requests,
		func() error { return down("C", "") },
		requests,
		func() error {
			fmt.Fprintln(stdout, "server A goes down: all three are down")
			servers["A"].stop()
			// B comes back once the Tether has tried all three.
			cDown := servers["C"].addr
			return c.until(ctx, tether.Reconnected, func(ev tether.Event) error {
				if ev.Kind == tether.Unreachable && ev.Dialed == cDown && !servers["B"].running() {
					return up("B", "")
				}
				return nil
			})
		},
		requests,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%d requests: A answered %d, B %d, C %d\n",
		c.sent, c.answered["A"], c.answered["B"], c.answered["C"])
	return nil
}
