package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

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
