package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tcp"
)

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
	if err := c.request(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-tick.C:
			if err := c.request(ctx); err != nil {
				return err
			}
		case ev := <-c.events:
			c.print(ev) // and wait on for the tick: an outage's events come fast
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
	for _, cause := range []error{io.EOF, syscall.ECONNREFUSED, syscall.ECONNRESET} {
		if errors.Is(err, cause) {
			return cause.Error()
		}
	}
	return err.Error()
}
