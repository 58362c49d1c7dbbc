package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest/records"
)

// status returns the status line, at most statusWidth wide on a terminal.
func (c *client) status() string {
	now := time.Now()
	sent, verified := c.send.Sent(), c.check.Result().Received
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
	v, tl, dropped := c.check.Result(), records.Compare(c.send, c.check), c.dropped.Load()
	w := c.disp.w
	elapsed := time.Since(c.start)
	if c.cfg.session {
		fmt.Fprintf(w, "\nsummary: %.1fs at %d records/s through a session, keep-alive %v\n", elapsed.Seconds(), c.cfg.rate, c.cfg.idle)
	} else {
		fmt.Fprintf(w, "\nsummary: %.1fs at %d records/s, read idle timeout %v\n", elapsed.Seconds(), c.cfg.rate, c.cfg.idle)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  records sent\t%d\tWrite returned nil\n", tl.Sent)
	fmt.Fprintf(tw, "  verified\t%d\tcame back intact and in order\n", v.Received)
	fmt.Fprintf(tw, "  lost in flight\t%d\twith connections that died (%d dropped by Write)\n",
		tl.Lost+dropped, dropped)
	fmt.Fprintf(tw, "  cut by a reconnect\t%d\tincomplete, discarded (seen by ReadGeneration)\n", v.Cut)
	fmt.Fprintf(tw, "  reconnects\t%d\t%s; down %v in all, %v at most\n",
		c.reconnects, plural(c.failed, "failed dial"), round(c.downTotal), round(c.downMax))
	fmt.Fprintf(tw, "  corrupted\t%d\n", v.Corrupted)
	fmt.Fprintf(tw, "  reordered\t%d\n", v.Reordered)
	fmt.Fprintf(tw, "  duplicated\t%d\n", v.Duplicated)
	fmt.Fprintf(tw, "  missing, no reconnect\t%d\n", v.Missing)
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
		if b := c.marks.backAt(f.mark); !b.IsZero() {
			back = round(b.Sub(c.start) - f.at).String()
		}
		fmt.Fprintf(tw, "  %s\t%v\t%s\t%s\t%s\n", f.spec.name, round(f.at), lasted, noticed, back)
	}
	tw.Flush()
	fmt.Fprintln(w)

	recovered := !c.marks.backAt(c.recovery).IsZero()
	lost := tl.Lost + dropped
	if c.cfg.session && v.Failures() == 0 && recovered && lost == 0 && v.Cut == 0 {
		fmt.Fprintf(w, "verdict: PASS\n"+
			"  no record corrupted, reordered, duplicated or missing;\n"+
			"  0 lost in flight: the session replayed what each dead connection had taken;\n"+
			"  the stream recovered after every fault\n")
		return nil
	}
	if !c.cfg.session && v.Failures() == 0 && recovered {
		fmt.Fprintf(w, "verdict: PASS\n"+
			"  no record corrupted, reordered or duplicated, none missing without a reconnect;\n"+
			"  %d lost in flight with connections that died, which no reconnect can save;\n"+
			"  the stream recovered after every fault\n", lost)
		return nil
	}
	var why []string
	if n := v.Failures(); n > 0 {
		why = append(why, fmt.Sprintf("%d records corrupted, reordered, duplicated or missing with no reconnect", n))
	}
	if !recovered {
		why = append(why, "the stream did not recover after the last fault")
	}
	if c.cfg.session && lost > 0 {
		why = append(why, fmt.Sprintf("%d records lost in flight through a session, which must lose none", lost))
	}
	if c.cfg.session && v.Cut > 0 {
		why = append(why, fmt.Sprintf("%d records cut by a reconnect through a session, which must cut none", v.Cut))
	}
	fmt.Fprintf(w, "verdict: FAIL\n  %s\n", strings.Join(why, ";\n  "))
	for _, s := range v.Violations {
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
