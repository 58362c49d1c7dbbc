package records

import (
	"io"
	"sync"
)

// A Sender writes the records of one stream, numbered from 0, and keeps
// what became of each: sent (its Write returned nil) or failed (its Write
// returned an error: the record may have gone out in part). Its methods are
// safe for concurrent use; call Send from one goroutine.
type Sender struct {
	seed uint64

	mu     sync.Mutex
	buf    []byte
	next   uint64
	sent   int64
	bytes  int64
	last   int64 // the last record sent; -1: none
	failed map[uint64]bool
}

// NewSender returns a Sender of the stream made from seed.
func NewSender(seed uint64) *Sender {
	return &Sender{seed: seed, last: -1, failed: map[uint64]bool{}}
}

// Send writes the next n records (at least one) to w in one Write, and
// returns its error. A Write that fails counts all n records as failed.
func (s *Sender) Send(w io.Writer, n int) error {
	s.mu.Lock()
	first := s.next
	s.next += uint64(max(n, 1))
	buf := s.buf[:0]
	s.buf = nil // Write runs without the lock
	s.mu.Unlock()
	for seq := first; seq < first+uint64(max(n, 1)); seq++ {
		buf = Append(buf, s.seed, seq)
	}
	_, err := w.Write(buf)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = buf
	last := first + uint64(max(n, 1)) - 1
	if err != nil {
		for seq := first; seq <= last; seq++ {
			s.failed[seq] = true
		}
		return err
	}
	s.sent += int64(last - first + 1)
	s.bytes += int64(len(buf))
	s.last = int64(last)
	return nil
}

// Next returns the sequence number of the next record Send writes.
func (s *Sender) Next() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Sent returns the number of records sent so far.
func (s *Sender) Sent() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// LastSent returns the sequence number of the last record sent, or -1.
func (s *Sender) LastSent() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// A Tally compares what a Sender sent with what a Checker received.
type Tally struct {
	// Sent counts the records whose Write returned nil; SentBytes, their
	// bytes.
	Sent, SentBytes int64
	// Failed counts the records whose Write failed.
	Failed int64
	// Received counts the records that checked out.
	Received int64
	// Lost counts the records sent that never arrived where a connection
	// may have ended: in flight on a connection that died, or still in
	// flight. (Those missing within one connection, or corrupted, are
	// violations: Result.Missing and Result.Corrupted count them.)
	// LostBytes are their bytes;
	// MaxLostBytes, the most lost at one place (one gap, or the tail after
	// the last record received), and LostAt, the number of such places.
	Lost, LostBytes, MaxLostBytes int64
	LostAt                        int
}

// Compare tallies what s sent against what c received. Call it once both
// have stopped.
func Compare(s *Sender, c *Checker) Tally {
	r := c.Result()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Tally{Sent: s.sent, SentBytes: s.bytes, Failed: int64(len(s.failed)), Received: r.Received}
	var scratch []byte
	lose := func(from, to int64) {
		var n, bytes int64
		for seq := from; seq <= to; seq++ {
			if !s.failed[uint64(seq)] {
				scratch = Append(scratch[:0], s.seed, uint64(seq))
				n++
				bytes += int64(len(scratch))
			}
		}
		if n > 0 {
			t.Lost += n
			t.LostBytes += bytes
			t.MaxLostBytes = max(t.MaxLostBytes, bytes)
			t.LostAt++
		}
	}
	for _, g := range r.Gaps {
		lose(g.From, min(g.To, s.last))
	}
	lose(r.Last+1, s.last)
	return t
}
