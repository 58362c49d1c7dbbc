package records

import (
	"bytes"
	"fmt"
	"sync"
)

// A Checker checks the records of one stream as they come out of a
// connection, in the order they are read. It takes the bytes of each Read
// with the generation of the connection they came from, and counts the
// records that check out and those that violate the invariant (see the
// package doc). Its methods are safe for concurrent use; feed it from one
// goroutine, in the order of the reads.
type Checker struct {
	seed     uint64
	onRecord func(seq uint64) error

	mu      sync.Mutex
	buf     []byte // an incomplete record: the bytes after the last '\n'
	bufHi   uint64 // g1 of the Read that delivered buf[0]
	bufLo   uint64 // g0 of the last Read that added to buf
	lastLo  uint64 // g0 of the Read that delivered the end of the last record
	scratch []byte
	res     Result
	// The records up to res.Last that were not received: in res.Gaps,
	// missing within a connection, or corrupted. A record at or before
	// Last that is none of these is a duplicate.
	missing []Gap
	bad     map[int64]bool
}

// A Gap is a run of records, From to To inclusive, that never arrived,
// between two records that may have come over different connections.
type Gap struct{ From, To int64 }

// Result is what a Checker saw.
type Result struct {
	// Received counts the records that checked out; Bytes, their bytes.
	Received, Bytes int64
	// Last is the sequence number of the last record received; -1: none.
	Last int64
	// Gaps are the runs of records that never arrived where a connection
	// may have ended: lost with it, or never sent (see Compare).
	Gaps []Gap
	// Cut counts the incomplete records dropped because their connection
	// ended.
	Cut int64
	// The violations of the invariant: records corrupted (or cut short
	// within one connection), reordered, duplicated, or missing with no
	// reconnect in between.
	Corrupted, Reordered, Duplicated, Missing int64
	// Violations describes the first few violations.
	Violations []string
}

// Failures returns the number of records that violate the invariant.
func (r Result) Failures() int64 {
	return r.Corrupted + r.Reordered + r.Duplicated + r.Missing
}

// NewChecker returns a Checker of the stream made from seed. onRecord, if
// not nil, is called (without the Checker's lock) for each record that
// checks out, in order; an error from it counts the record as corrupted,
// with the error as the violation.
func NewChecker(seed uint64, onRecord func(seq uint64) error) *Checker {
	// The virtual record -1 ends on the first connection: records lost
	// before the first one that arrives must have a reconnect too.
	return &Checker{seed: seed, onRecord: onRecord, lastLo: 1,
		scratch: make([]byte, 0, maxPayload), res: Result{Last: -1}}
}

// Feed takes the bytes of one Read from the connection of generation gen,
// as tether.Tether.ReadGeneration returns them: a Tether's first connection
// is generation 1. Over a connection that never changes (a session, one
// socket), gen is 1, so that records missing before the first that arrives
// count as Missing, not as lost with a connection.
func (c *Checker) Feed(b []byte, gen uint64) { c.FeedBetween(b, gen, gen) }

// FeedBetween takes the bytes of one Read whose connection's generation is
// between g0 and g1, as tether.Tether.Generation before and after the Read
// bounds it.
func (c *Checker) FeedBetween(b []byte, g0, g1 uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(b) == 0 {
		return
	}
	if len(c.buf) > 0 && b[0] == '#' {
		// A record begins while the last one is incomplete: its
		// connection ended in the middle of it, and b comes from a later
		// one. That needs a reconnect between the two Reads.
		if g1 > c.bufLo {
			c.res.Cut++
		} else {
			c.res.Corrupted++
			c.violate("record %q cut short within one connection", clip(c.buf))
		}
		c.buf = c.buf[:0]
	}
	continued := len(c.buf) > 0 // the first record of b began in an earlier Read
	for first := true; len(b) > 0; first = false {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(c.buf) == 0 {
				c.bufHi = g1
			}
			c.buf = append(c.buf, b...)
			c.bufLo = g0
			if len(c.buf) > MaxSize {
				c.res.Corrupted++
				c.violate("%d bytes without the end of a record", len(c.buf))
				c.buf = c.buf[:0]
			}
			return
		}
		line, hi := b[:i], g1
		if first && continued {
			line, hi = append(c.buf, line...), c.bufHi
		}
		// A connection may have ended between the last record and this
		// one, unless this one follows it within the bytes of one Read.
		c.check(line, first && hi > c.lastLo)
		c.lastLo = g0
		c.buf = c.buf[:0]
		b = b[i+1:]
	}
}

// check verifies one record; reconnect says whether a connection may have
// ended since the record before.
func (c *Checker) check(line []byte, reconnect bool) {
	seq, numbered, err := parse(line, c.seed, c.scratch)
	if err != nil {
		c.res.Corrupted++
		c.violate("%v", err)
		if numbered && int64(seq) == c.res.Last+1 {
			// A damaged record where the next one belongs: it counts
			// once, and the record after it follows it.
			c.res.Last = int64(seq)
			c.markBad(int64(seq))
		}
		return
	}
	s, last := int64(seq), c.res.Last
	switch {
	case s <= last && c.received(s):
		c.res.Duplicated++
		c.violate("record %d again, after record %d", s, last)
		return
	case s <= last:
		c.res.Reordered++
		c.violate("record %d after record %d", s, last)
		return
	case s > last+1 && !reconnect:
		c.res.Missing += s - last - 1
		c.missing = append(c.missing, Gap{last + 1, s - 1})
		c.violate("records %d to %d missing with no reconnect in between", last+1, s-1)
	case s > last+1:
		c.res.Gaps = append(c.res.Gaps, Gap{last + 1, s - 1})
	}
	if c.onRecord != nil {
		c.mu.Unlock()
		err := c.onRecord(seq)
		c.mu.Lock()
		if err != nil {
			c.res.Last = s // in order all the same: the next one follows it
			c.markBad(s)
			c.res.Corrupted++
			c.violate("record %d: %v", seq, err)
			return
		}
	}
	c.res.Last = s
	c.res.Received++
	c.res.Bytes += int64(len(line) + 1)
}

// received reports whether record s, at or before Last, was received.
func (c *Checker) received(s int64) bool {
	if c.bad[s] {
		return false
	}
	for _, gs := range [][]Gap{c.res.Gaps, c.missing} {
		for _, g := range gs {
			if g.From <= s && s <= g.To {
				return false
			}
		}
	}
	return true
}

// markBad notes that record s, now at or before Last, was not received.
func (c *Checker) markBad(s int64) {
	if c.bad == nil {
		c.bad = make(map[int64]bool)
	}
	c.bad[s] = true
}

// violate notes a violation of the invariant (the first few).
func (c *Checker) violate(format string, args ...any) {
	if len(c.res.Violations) < 10 {
		c.res.Violations = append(c.res.Violations, fmt.Sprintf(format, args...))
	}
}

// Last returns the sequence number of the last record received, or -1.
func (c *Checker) Last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res.Last
}

// Result returns what the Checker saw so far.
func (c *Checker) Result() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.res
	r.Gaps = append([]Gap(nil), r.Gaps...)
	r.Violations = append([]string(nil), r.Violations...)
	return r
}
