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
// discarded, never spliced with the next connection's bytes.
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
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
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

	c := &client{t: t, readGen: readGen, cfg: cfg, led: newLedger(), proxy: proxy, disp: disp, start: start}
	c.ver = newVerifier(seed, func(seq uint64) error { return c.led.verify(seq, time.Now()) })
	return c.run(ctx, events)
}

// A client runs the Tether's writer and reader, injects the faults and
// reports.
type client struct {
	t       conn
	readGen func([]byte) (n int, gen uint64, err error)
	cfg     config
	led     *ledger
	ver     *verifier
	proxy   *faultproxy.Proxy
	disp    *display
	start   time.Time

	// Kept by the main loop, from the Tether's events.
	gen        uint64
	cause      error     // of the current outage
	since      time.Time // when the current outage began
	reconnects int
	failed     int // failed dials
	downTotal  time.Duration
	downMax    time.Duration
	faults     []*faultRun
	active     *faultRun // the fault in force, if it lasts
	recovery   *mark     // the first record written after the last fault ended
}

// conn is what the client writes to: a Tether, or a session.
type conn interface {
	io.WriteCloser
	SetWriteDeadline(time.Time) error
	State() tether.State
}

// A faultSpec is one fault of the schedule, at a fraction of the run.
type faultSpec struct {
	name  string
	what  string
	fault faultproxy.Fault
	at    float64 // when it begins
	until float64 // when it ends; 0 for a one-shot fault
}

var schedule = []faultSpec{
	{"drop", "the server closes every connection (FIN)", faultproxy.FaultClose, 0.10, 0},
	{"reset", "every connection is reset (RST)", faultproxy.FaultReset, 0.20, 0},
	{"refuse", "the server is down: connections reset, dials refused", faultproxy.FaultRefuse, 0.30, 0.43},
	{"blackhole", "nothing gets through, on old or new connections", faultproxy.FaultBlackhole, 0.53, 0.67},
}

// A faultRun is a fault of the schedule as it happened.
type faultRun struct {
	spec    faultSpec
	at      time.Duration // since the start
	lasted  time.Duration
	mark    *mark // the first record written after it began
	noticed error // the first disconnect after it began
}

// An action is a step of the schedule: a fault begins or ends.
type action struct {
	at   time.Duration
	spec *faultSpec
	heal bool
}

// actions returns the steps of the schedule for a run of d, in order.
func actions(d time.Duration) []action {
	var as []action
	at := func(f float64) time.Duration {
		return time.Duration(f * float64(d)).Round(10 * time.Millisecond)
	}
	for i := range schedule {
		s := &schedule[i]
		as = append(as, action{at: at(s.at), spec: s})
		if s.until > 0 {
			as = append(as, action{at: at(s.until), spec: s, heal: true})
		}
	}
	return as
}

// run is the main loop: it plays the schedule, follows the Tether's
// events, refreshes the status, and ends the run after cfg.d.
func (c *client) run(ctx context.Context, events <-chan tether.Event) error {
	wctx, stopWriter := context.WithCancel(context.Background())
	defer stopWriter()
	writerDone := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write(wctx)
	}()
	go func() {
		defer close(readerDone)
		c.read()
	}()
	c.recovery = c.led.mark(c.start)

	acts := actions(c.cfg.d)
	next := 0
	actTimer := time.NewTimer(acts[0].at)
	defer actTimer.Stop()
	end := time.NewTimer(c.cfg.d)
	defer end.Stop()
	tick := time.NewTicker(c.disp.every())
	defer tick.Stop()

	interrupted := false
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case <-end.C:
			break loop
		case <-actTimer.C:
			if err := c.act(acts[next]); err != nil {
				return err
			}
			if next++; next < len(acts) {
				actTimer.Reset(time.Until(c.start.Add(acts[next].at)))
			}
		case ev := <-events:
			c.event(ev)
		case <-tick.C:
			c.disp.setStatus(c.status())
		}
	}

	// The end: heal a fault in force, keep writing until the stream has
	// recovered, stop the writer, wait for the records in flight, close.
	if interrupted {
		c.disp.printf("%s  interrupted\n", c.disp.stamp(time.Now()))
	}
	if c.active != nil {
		if err := c.heal(); err != nil {
			return err
		}
	}
	c.waitFor(events, 3*time.Second, func() bool { return !c.led.backAt(c.recovery).IsZero() })
	stopWriter()
	select {
	case <-writerDone:
	case <-time.After(200 * time.Millisecond):
		c.t.SetWriteDeadline(time.Now()) // a Write waiting for a reconnect
		<-writerDone
	}
	c.waitFor(events, 2*time.Second, c.led.drained)
	c.t.Close()
	<-readerDone
	c.disp.clearStatus()
	return c.report()
}

// waitFor handles events until done reports true or the timeout passes.
func (c *client) waitFor(events <-chan tether.Event, timeout time.Duration, done func() bool) {
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	tick := time.NewTicker(c.disp.every())
	defer tick.Stop()
	for !done() {
		select {
		case ev := <-events:
			c.event(ev)
		case <-poll.C:
		case <-tick.C:
			c.disp.setStatus(c.status())
		case <-limit.C:
			return
		}
	}
}

// write writes one record per tick until ctx is done or the Tether fails.
func (c *client) write(ctx context.Context) {
	tick := time.NewTicker(time.Second / time.Duration(c.cfg.rate))
	defer tick.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		seq := c.led.next()
		buf = appendRecord(buf[:0], seed, seq)
		_, err := c.t.Write(buf)
		switch {
		case err == nil:
			c.led.wrote(seq, recSent)
		case errors.Is(err, tether.ErrDropped):
			// The connection died with part of the record: the rest
			// was dropped, and the next record starts the next
			// connection.
			c.led.wrote(seq, recDropped)
		default:
			c.led.wrote(seq, recUnsent)
			return
		}
	}
}

// read feeds what the Tether reads to the verifier, with the generation
// of the connection that each Read's bytes came from, until the Tether is
// closed. (Generation() before and after a Read would only bound it: the
// writer may reconnect the Tether meanwhile.)
func (c *client) read() {
	buf := make([]byte, 32<<10)
	for {
		n, gen, err := c.readGen(buf)
		if err != nil {
			return
		}
		c.ver.feed(buf[:n], gen, gen)
	}
}

// act plays one step of the schedule.
func (c *client) act(a action) error {
	now := time.Now()
	if a.heal {
		return c.heal()
	}
	if err := c.proxy.Apply(faultproxy.Step{Fault: a.spec.fault}); err != nil {
		return err
	}
	f := &faultRun{spec: *a.spec, at: now.Sub(c.start), mark: c.led.mark(now)}
	c.faults = append(c.faults, f)
	if a.spec.until > 0 {
		c.active = f
	} else {
		c.recovery = f.mark
	}
	c.disp.printf("%s  fault    %s: %s\n", c.disp.stamp(now), a.spec.name, a.spec.what)
	return nil
}

// heal ends the fault in force.
func (c *client) heal() error {
	if err := c.proxy.Heal(); err != nil {
		return err
	}
	now := time.Now()
	f := c.active
	c.active = nil
	f.lasted = now.Sub(c.start) - f.at
	c.recovery = c.led.mark(now)
	c.disp.printf("%s  fault    %s ends after %v\n", c.disp.stamp(now), f.spec.name, f.lasted.Round(10*time.Millisecond))
	return nil
}

// event takes one event of the Tether.
func (c *client) event(ev tether.Event) {
	now := time.Now()
	var what string
	switch ev.Kind {
	case tether.Connected:
		c.gen = ev.Generation
		what = fmt.Sprintf("connected to %s (generation %d)", ev.Dialed, ev.Generation)
	case tether.Disconnected:
		c.cause, c.since = ev.Err, ev.Since
		if n := len(c.faults); n > 0 && c.faults[n-1].noticed == nil {
			c.faults[n-1].noticed = ev.Err
		}
		what = fmt.Sprintf("lost generation %d after %v: %s", ev.Generation, round(ev.Uptime), describe(ev.Err))
	case tether.Unreachable:
		c.failed++
		c.cause = ev.Err
		what = fmt.Sprintf("dial failed: %s (attempt %d)", describe(ev.Err), ev.Attempt)
	case tether.Reconnected:
		down := ev.Outage(now)
		c.gen = ev.Generation
		c.reconnects++
		c.downTotal += down
		c.downMax = max(c.downMax, down)
		what = fmt.Sprintf("reconnected: generation %d, after %v down", ev.Generation, round(down))
	}
	c.disp.printf("%s  tether   %s\n", c.disp.stamp(now), what)
}

// status returns the status line, at most statusWidth wide on a terminal.
func (c *client) status() string {
	now := time.Now()
	sent, verified := c.led.counts()
	label := "  status   "
	if c.disp.tty {
		label = "  " // the last line of the screen: no room to spare
	}
	s := fmt.Sprintf("%s%ssent %d  verified %d  reconnects %d  ", c.disp.stamp(now), label, sent, verified, c.reconnects)
	// The state as the Tether (or the session) has it: ready, or down and
	// connecting, waiting out a delay (transient-failure), ...
	if st := c.t.State(); st == tether.Ready {
		s += "up"
	} else {
		s += fmt.Sprintf("DOWN %v %s (%s)", round(now.Sub(c.since)), st, brief(c.cause))
	}
	if c.active != nil && (!c.disp.tty || len(s)+len(c.active.spec.name)+4 <= statusWidth) {
		s += "  [" + c.active.spec.name + "]"
	}
	if c.disp.tty && len(s) > statusWidth {
		s = s[:statusWidth]
	}
	return s
}

// statusWidth keeps the status line within a terminal's 80 columns: a line
// that wraps cannot be redrawn in place.
const statusWidth = 79

// report prints the summary and the verdict.
func (c *client) report() error {
	v, tl := c.ver, c.led.tally()
	w := c.disp.w
	elapsed := time.Since(c.start)
	if c.cfg.session {
		fmt.Fprintf(w, "\nsummary: %.1fs at %d records/s through a session, keep-alive %v\n", elapsed.Seconds(), c.cfg.rate, c.cfg.idle)
	} else {
		fmt.Fprintf(w, "\nsummary: %.1fs at %d records/s, read idle timeout %v\n", elapsed.Seconds(), c.cfg.rate, c.cfg.idle)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  records sent\t%d\tWrite returned nil\n", tl.sent)
	fmt.Fprintf(tw, "  verified\t%d\tcame back intact and in order\n", v.verified)
	fmt.Fprintf(tw, "  lost in flight\t%d\twith connections that died (%d dropped by Write)\n",
		tl.lostSent+tl.lostDropped, tl.lostDropped)
	fmt.Fprintf(tw, "  cut by a reconnect\t%d\tincomplete, discarded (seen by ReadGeneration)\n", v.cut)
	fmt.Fprintf(tw, "  reconnects\t%d\t%s; down %v in all, %v at most\n",
		c.reconnects, plural(c.failed, "failed dial"), round(c.downTotal), round(c.downMax))
	fmt.Fprintf(tw, "  corrupted\t%d\n", v.corrupted)
	fmt.Fprintf(tw, "  reordered\t%d\n", v.reordered)
	fmt.Fprintf(tw, "  duplicated\t%d\n", v.duplicated)
	fmt.Fprintf(tw, "  missing, no reconnect\t%d\n", v.missing)
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  fault\tat\tlasted\tnoticed as\tstream back after")
	for _, f := range c.faults {
		lasted := "-"
		if f.spec.until > 0 {
			lasted = round(f.lasted).String()
		}
		noticed := "-"
		if f.noticed != nil {
			noticed = describe(f.noticed)
		}
		back := "never"
		if b := c.led.backAt(f.mark); !b.IsZero() {
			back = round(b.Sub(c.start) - f.at).String()
		}
		fmt.Fprintf(tw, "  %s\t%v\t%s\t%s\t%s\n", f.spec.name, round(f.at), lasted, noticed, back)
	}
	tw.Flush()
	fmt.Fprintln(w)

	recovered := !c.led.backAt(c.recovery).IsZero()
	lost := tl.lostSent + tl.lostDropped
	if c.cfg.session && v.failures() == 0 && recovered && lost == 0 && v.cut == 0 {
		fmt.Fprintf(w, "verdict: PASS\n"+
			"  no record corrupted, reordered, duplicated or missing;\n"+
			"  0 lost in flight: the session replayed what each dead connection had taken;\n"+
			"  the stream recovered after every fault\n")
		return nil
	}
	if !c.cfg.session && v.failures() == 0 && recovered {
		fmt.Fprintf(w, "verdict: PASS\n"+
			"  no record corrupted, reordered or duplicated, none missing without a reconnect;\n"+
			"  %d lost in flight with connections that died, which no reconnect can save;\n"+
			"  the stream recovered after every fault\n", tl.lostSent+tl.lostDropped)
		return nil
	}
	var why []string
	if n := v.failures(); n > 0 {
		why = append(why, fmt.Sprintf("%d records corrupted, reordered, duplicated or missing with no reconnect", n))
	}
	if !recovered {
		why = append(why, "the stream did not recover after the last fault")
	}
	if c.cfg.session && lost > 0 {
		why = append(why, fmt.Sprintf("%d records lost in flight through a session, which must lose none", lost))
	}
	if c.cfg.session && v.cut > 0 {
		why = append(why, fmt.Sprintf("%d records cut by a reconnect through a session, which must cut none", v.cut))
	}
	fmt.Fprintf(w, "verdict: FAIL\n  %s\n", strings.Join(why, ";\n  "))
	for _, s := range v.violations {
		fmt.Fprintf(w, "  %s\n", s)
	}
	return errVerdict
}

// describe names the cause of a disconnect or a failed dial briefly.
func describe(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, tether.ErrIdleTimeout):
		return "read idle timeout"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, net.ErrClosed):
		// A session closes a transport that stayed silent through its
		// keep-alive.
		return "keep-alive timeout"
	}
	return err.Error()
}

// brief is describe, shorter, for the status line.
func brief(err error) string {
	s := describe(err)
	switch s {
	case "read idle timeout":
		return "idle timeout"
	case "connection reset", "connection refused":
		return strings.TrimPrefix(s, "connection ")
	}
	return s
}

// plural returns "n thing", or "n things" when n is not 1.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// round rounds d for display: to the millisecond below a second, to 10 ms
// above.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

// newLogger returns the logger of the Logging middleware, and a function
// that closes its file: at Info to -log FILE or, with -v, to stderr; else
// to stderr at Warn, which only a give-up or an Ignore reaches.
func newLogger(cfg config, stderr io.Writer, disp *display) (*slog.Logger, func() error, error) {
	w, level, closeLog := stderr, slog.LevelWarn, func() error { return nil }
	switch {
	case cfg.logFile != "":
		f, err := os.Create(cfg.logFile)
		if err != nil {
			return nil, nil, err
		}
		w, level, closeLog = f, slog.LevelInfo, f.Close
	case cfg.verbose:
		level = slog.LevelInfo
	}
	if w == stderr && disp.tty && isTerminal(stderr) {
		w = disp.through(stderr) // keep the status line at the bottom
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closeLog, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// A display writes lines to w with, on a terminal, a status line that
// redraws in place below them. Its methods are safe for concurrent use.
type display struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu     sync.Mutex
	status string // the status line shown (terminal only)
}

// newDisplay returns a display on w; tty says whether w is a terminal.
func newDisplay(w io.Writer, tty bool, start time.Time) *display {
	return &display{w: w, tty: tty, start: start}
}

// every is how often the status refreshes: 10 times a second on a
// terminal, once a second as plain lines.
func (d *display) every() time.Duration {
	if d.tty {
		return 100 * time.Millisecond
	}
	return time.Second
}

// stamp formats now as the time since the start.
func (d *display) stamp(now time.Time) string {
	return fmt.Sprintf("%6.2fs", now.Sub(d.start).Seconds())
}

// printf prints a line above the status line.
func (d *display) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clearLocked()
	fmt.Fprintf(d.w, format, args...)
	d.redrawLocked()
}

// setStatus replaces the status line, or prints it as a line when not on a
// terminal.
func (d *display) setStatus(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.tty {
		fmt.Fprintln(d.w, s)
		return
	}
	d.status = s
	fmt.Fprint(d.w, "\r\x1b[K"+s)
}

// clearStatus removes the status line for good.
func (d *display) clearStatus() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clearLocked()
	d.status = ""
}

// clearLocked erases the status line, if shown.
func (d *display) clearLocked() {
	if d.tty && d.status != "" {
		fmt.Fprint(d.w, "\r\x1b[K")
	}
}

// redrawLocked draws the status line again, if any.
func (d *display) redrawLocked() {
	if d.tty && d.status != "" {
		fmt.Fprint(d.w, d.status)
	}
}

// through returns a Writer to w, another stream on the same terminal, that
// keeps the status line below what it writes.
func (d *display) through(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.clearLocked()
		n, err := w.Write(p)
		d.redrawLocked()
		return n, err
	})
}

// writerFunc is a func as an io.Writer.
type writerFunc func(p []byte) (int, error)

// Write calls f(p).
func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// An echoServer writes back what it reads, on each connection (or, over
// a session.Listener, on each session).
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startEcho starts an echoServer on addr, of sessions with sessions.
func startEcho(addr string, sessions bool) (*echoServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if sessions {
		ln = session.NewListener(ln)
	}
	s := &echoServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr returns the server's address.
func (s *echoServer) Addr() string { return s.ln.Addr().String() }

// serve accepts connections until the listener is closed.
func (s *echoServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			io.Copy(c, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		})
	}
}

// Close stops the server and waits for its goroutines.
func (s *echoServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
