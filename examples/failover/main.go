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
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tcp"
)

// errUsage is returned by run for a bad command line.
var errUsage = errors.New("usage")

// The pace of the script.
const (
	pace      = 150 * time.Millisecond // between two requests
	stability = 200 * time.Millisecond // the Tether's stability period
	answerBy  = time.Second            // how long a request waits for its answer
)

// main runs the command line; it exits 130 when interrupted.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	case errors.Is(err, context.Canceled):
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	verbose bool
	serve   string
	name    string
	servers []string
	d       time.Duration
	every   time.Duration
}

// parseFlags parses args; errors are reported on stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var servers string
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.verbose, "v", false, "log the Tether's events and decisions to stderr")
	fs.StringVar(&c.serve, "serve", "", "run one server on `ADDR`, until interrupted")
	fs.StringVar(&c.name, "name", "", "the server's name in its answers (-serve; default its address)")
	fs.StringVar(&servers, "servers", "", "run a client against the servers at `ADDR,ADDR,...`, the first preferred")
	fs.DurationVar(&c.d, "d", time.Minute, "how long the client runs (-servers)")
	fs.DurationVar(&c.every, "every", 500*time.Millisecond, "how often the client sends a request (-servers)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: failover [-v]\n"+
			"       failover -serve ADDR [-name NAME]\n"+
			"       failover -servers ADDR,ADDR,... [-d D] [-every D] [-v]\n\n"+
			"Moves a Tether between servers as they go down and come back.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	if servers != "" {
		c.servers = strings.Split(servers, ",")
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = "unexpected arguments: " + strings.Join(fs.Args(), " ")
	case c.serve != "" && servers != "":
		bad = "-serve and -servers exclude each other"
	case c.name != "" && c.serve == "":
		bad = "-name needs -serve"
	case c.d <= 0 || c.every <= 0:
		bad = "-d and -every must be positive"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "failover:", bad)
		fs.Usage()
		return c, errUsage
	}
	return c, nil
}

// run runs the mode that args choose, writing to stdout, and logs to
// stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
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
	steps := []func() error{
		func() error { return c.requests(ctx, 3) },
		func() error { return down("A", "") },
		func() error { return c.requests(ctx, 3) },
		func() error { return down("B", "") },
		func() error { return c.requests(ctx, 3) },
		func() error { return up("A", ": the client stays on C while C works") },
		func() error { return c.requests(ctx, 3) },
		func() error { return down("C", "") },
		func() error { return c.requests(ctx, 3) },
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
		func() error { return c.requests(ctx, 3) },
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

// clientOnly runs a client against cfg.servers for cfg.d.
func clientOnly(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "servers: %s\n", strings.Join(cfg.servers, ", "))
	c, err := dial(ctx, cfg, cfg.servers, stdout, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	end := time.NewTimer(cfg.d)
	defer end.Stop()
	tick := time.NewTicker(cfg.every)
	defer tick.Stop()
	for {
		if err := c.request(ctx); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case ev := <-c.events:
			c.print(ev)
		case <-end.C:
			fmt.Fprintf(stdout, "%d requests, %d answered\n", c.sent, c.sent-c.unanswered)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// A client sends requests through a Tether and prints its events.
type client struct {
	t       *tether.Tether
	w       io.Writer
	events  chan tether.Event
	replies chan string
	names   map[string]string // the servers' names, by address

	sent       int
	unanswered int
	answered   map[string]int // by server name
}

// dial connects a client to addrs[0], with addrs as the failover list.
func dial(ctx context.Context, cfg config, addrs []string, stdout, stderr io.Writer) (*client, error) {
	level := slog.LevelWarn // a give-up
	if cfg.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c := &client{w: stdout, events: make(chan tether.Event, 64), replies: make(chan string, 16),
		names: map[string]string{}, answered: map[string]int{}}
	h := tether.Chain(nil,
		middleware.Logging(logger),
		middleware.Notify(c.events),
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}),
		middleware.StickyFailover(addrs...),
	)
	t, err := tether.Dial(ctx, &tcp.Dialer{Timeout: time.Second}, addrs[0], h,
		tether.WithStabilityPeriod(stability))
	if err != nil {
		return nil, err
	}
	c.t = t
	go func() {
		// A reader that is always waiting, as in a real client: it is
		// what notices that a server went down.
		defer close(c.replies)
		sc := bufio.NewScanner(t)
		for sc.Scan() {
			c.replies <- sc.Text()
		}
	}()
	return c, nil
}

// close closes the Tether and waits for its reader.
func (c *client) close() {
	c.t.Close()
	for range c.replies {
	}
}

// name returns the name of the server at addr.
func (c *client) name(addr string) string {
	if n, ok := c.names[addr]; ok {
		return n
	}
	return addr
}

// print prints an event.
func (c *client) print(ev tether.Event) {
	switch ev.Kind {
	case tether.Connected:
		fmt.Fprintf(c.w, "connected to %s\n", c.name(ev.Dialed))
	case tether.Disconnected:
		fmt.Fprintf(c.w, "  lost %s: %s\n", c.name(ev.Dialed), describe(ev.Err))
	case tether.Unreachable:
		fmt.Fprintf(c.w, "  dial %s: %s\n", c.name(ev.Dialed), describe(ev.Err))
	case tether.Reconnected:
		fmt.Fprintf(c.w, "  reconnected to %s\n", c.name(ev.Dialed))
	}
}

// until prints events until one of kind; each goes to f, if not nil,
// after it is printed.
func (c *client) until(ctx context.Context, kind tether.EventKind, f func(tether.Event) error) error {
	for {
		select {
		case ev := <-c.events:
			c.print(ev)
			if f != nil {
				if err := f(ev); err != nil {
					return err
				}
			}
			if ev.Kind == kind {
				return nil
			}
		case <-c.t.Done():
			return c.t.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// requests sends n requests, pace apart.
func (c *client) requests(ctx context.Context, n int) error {
	for range n {
		select {
		case <-time.After(pace):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := c.request(ctx); err != nil {
			return err
		}
	}
	return nil
}

// request sends the next request and prints who answered it, printing
// the events that come meanwhile.
func (c *client) request(ctx context.Context) error {
	c.sent++
	n := c.sent
	c.t.SetWriteDeadline(time.Now().Add(answerBy))
	if _, err := fmt.Fprintf(c.t, "%d\n", n); err != nil {
		if c.t.Err() != nil {
			return c.t.Err()
		}
		c.unanswered++
		fmt.Fprintf(c.w, "request %d: not sent: %v\n", n, err)
		return nil
	}
	timeout := time.NewTimer(answerBy)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-c.replies:
			if !ok {
				return c.t.Err()
			}
			num, who, _ := strings.Cut(line, " ")
			if num != strconv.Itoa(n) {
				continue // the late answer to an earlier request
			}
			if who == "" {
				who = c.t.RemoteAddr().String() // an echo server
			}
			c.answered[who]++
			fmt.Fprintf(c.w, "request %d: answered by %s\n", n, who)
			return nil
		case ev := <-c.events:
			c.print(ev)
		case <-timeout.C:
			c.unanswered++
			fmt.Fprintf(c.w, "request %d: no answer within %v\n", n, answerBy)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// describe names the cause of a disconnect or a failed dial briefly.
func describe(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return err.Error()
}

// serveUntil runs one server on cfg.serve until ctx is done.
func serveUntil(ctx context.Context, cfg config, stdout io.Writer) error {
	name := cfg.name
	if name == "" {
		name = cfg.serve
	}
	s := &server{name: name, addr: cfg.serve}
	if err := s.start(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving as %s on %s\n", s.name, s.addr)
	<-ctx.Done()
	s.stop()
	return ctx.Err()
}

// A server answers each line "N" with "N NAME". It can stop and start
// again on the same address.
type server struct {
	name string
	addr string // once started, the address it listens on

	mu    sync.Mutex
	ln    net.Listener // nil while stopped
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// start listens on s.addr, and learns the port when it was 0.
func (s *server) start() error {
	var (
		ln  net.Listener
		err error
	)
	// After a stop, a client's connection may hold the port for a moment
	// (as its local address): retry briefly.
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.mu.Unlock()
	s.wg.Go(func() { s.accept(ln) })
	return nil
}

// running reports whether s is listening.
func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln != nil
}

// accept accepts the connections of ln until it is closed.
func (s *server) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.answer(c) })
	}
}

// answer answers the lines of c.
func (s *server) answer(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := fmt.Fprintf(c, "%s %s\n", sc.Text(), s.name); err != nil {
			return
		}
	}
}

// stop closes the listener and every connection (FIN), and waits for the
// server's goroutines.
func (s *server) stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	s.wg.Wait()
}
