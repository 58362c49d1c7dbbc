package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest/faultproxy"
	"github.com/io-tether/tether/tethertest/records"
)

// A client runs the Tether's writer and reader, injects the faults and
// reports.
type client struct {
	t       conn
	readGen func([]byte) (n int, gen uint64, err error)
	cfg     config
	send    *records.Sender
	check   *records.Checker
	marks   marks
	dropped atomic.Int64 // records whose Write returned tether.ErrDropped
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

// newClient returns a client of t, whose reads readGen makes.
func newClient(t conn, readGen func([]byte) (int, uint64, error), cfg config, proxy *faultproxy.Proxy, disp *display, start time.Time) *client {
	c := &client{t: t, readGen: readGen, cfg: cfg, send: records.NewSender(seed), proxy: proxy, disp: disp, start: start}
	c.check = records.NewChecker(seed, func(seq uint64) error {
		if seq >= c.send.Next() {
			return errors.New("a record that was never written came back")
		}
		c.marks.back(seq, time.Now())
		return nil
	})
	c.recovery = c.marks.add(0, start)
	return c
}

// drained reports whether every record sent has come back.
func (c *client) drained() bool { return c.check.Last() >= c.send.LastSent() }

// conn is what the client writes to: a Tether, or a session.
type conn interface {
	io.WriteCloser
	SetWriteDeadline(time.Time) error
	State() tether.State
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
	c.waitFor(events, 3*time.Second, func() bool { return !c.marks.backAt(c.recovery).IsZero() })
	stopWriter()
	select {
	case <-writerDone:
	case <-time.After(200 * time.Millisecond):
		c.t.SetWriteDeadline(time.Now()) // a Write waiting for a reconnect
		<-writerDone
	}
	c.waitFor(events, 2*time.Second, c.drained)
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := c.send.Send(c.t, 1)
		switch {
		case err == nil:
		case errors.Is(err, tether.ErrDropped):
			// The connection died with part of the record: the rest
			// was dropped, and the next record starts the next
			// connection.
			c.dropped.Add(1)
		default:
			return // the run is over: not sent
		}
	}
}

// read feeds what the Tether reads to the checker, with the generation
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
		c.check.Feed(buf[:n], gen)
	}
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

// A mark notes the next record to be written at some moment, and when the
// first record written since then came back verified.
type mark struct {
	seq  uint64
	at   time.Time
	back time.Time // zero until then
}

// marks are the client's marks. Their methods are safe for concurrent use.
type marks struct {
	mu   sync.Mutex
	list []*mark
}

// add returns a new mark of record seq at now.
func (ms *marks) add(seq uint64, now time.Time) *mark {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := &mark{seq: seq, at: now}
	ms.list = append(ms.list, m)
	return m
}

// back notes that record seq came back at now.
func (ms *marks) back(seq uint64, now time.Time) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range ms.list {
		if m.back.IsZero() && seq >= m.seq {
			m.back = now
		}
	}
}

// backAt returns when m's first record came back, or the zero Time.
func (ms *marks) backAt(m *mark) time.Time {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return m.back
}
