package faultmatrix

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
)

// A record stream: sequence-numbered, checksummed records whose payload is
// a function of the stream and the sequence number, so that the receiver
// checks every byte.
//
//	magic   uint32  "REC1"
//	seq     uint64
//	length  uint16  of the payload, 0–maxPayload
//	payload [length]byte
//	crc     uint32  IEEE, over everything before it
const (
	recMagic   = 0x52454331 // "REC1"
	recHeader  = 4 + 8 + 2
	maxPayload = 1024
	maxRecord  = recHeader + maxPayload + 4
)

// payload returns the length and the bytes of record seq of stream.
func payload(stream, seq uint64, buf []byte) []byte {
	r := rand.New(rand.NewPCG(stream, seq))
	n := r.IntN(maxPayload + 1)
	buf = buf[:0]
	for len(buf) < n {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		buf = append(buf, w[:min(8, n-len(buf))]...)
	}
	return buf
}

// appendRecord appends record seq of stream to b.
func appendRecord(b []byte, stream, seq uint64) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, recMagic)
	b = binary.BigEndian.AppendUint64(b, seq)
	p := payload(stream, seq, make([]byte, 0, maxPayload))
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	b = append(b, p...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

type parseStatus int

const (
	needMore parseStatus = iota // b holds a prefix of a valid record, or nothing
	complete                    // b starts with a valid record
	bad                         // b starts with bytes that no valid record starts with
)

// parseRecord looks at the record at the start of b: it returns complete
// with the record's sequence number and size, needMore, or bad with why.
func parseRecord(b []byte, stream uint64, scratch []byte) (parseStatus, uint64, int, string) {
	var magic [4]byte
	binary.BigEndian.PutUint32(magic[:], recMagic)
	for i := 0; i < len(b) && i < 4; i++ {
		if b[i] != magic[i] {
			return bad, 0, 0, fmt.Sprintf("bad magic %x", b[:min(len(b), 4)])
		}
	}
	if len(b) < recHeader {
		return needMore, 0, 0, ""
	}
	seq := binary.BigEndian.Uint64(b[4:])
	n := int(binary.BigEndian.Uint16(b[12:]))
	if n > maxPayload {
		return bad, seq, 0, fmt.Sprintf("record %d: length %d", seq, n)
	}
	size := recHeader + n + 4
	if len(b) < size {
		return needMore, seq, size, ""
	}
	if got, want := binary.BigEndian.Uint32(b[size-4:]), crc32.ChecksumIEEE(b[:size-4]); got != want {
		return bad, seq, size, fmt.Sprintf("record %d: crc %08x, want %08x", seq, got, want)
	}
	want := payload(stream, seq, scratch)
	if string(b[recHeader:recHeader+n]) != string(want) {
		return bad, seq, size, fmt.Sprintf("record %d: payload differs from the one sent", seq)
	}
	return complete, seq, size, ""
}

// A checker receives one direction's records in order and checks the
// integrity invariant: no record corrupted, reordered or duplicated, and a
// gap in the sequence (records lost) only where a connection may have died.
type checker struct {
	name   string
	stream uint64

	mu         sync.Mutex
	last       int64 // the last sequence number received; -1: none
	received   int64
	bytes      int64
	gaps       []gap
	partials   int // incomplete records dropped at a connection's end
	violations []string
}

// A gap is a run of sequence numbers that never arrived, between two
// records received on different connections.
type gap struct{ from, to int64 } // inclusive

func newChecker(name string, stream uint64) *checker {
	return &checker{name: name, stream: stream, last: -1}
}

// record takes record seq of size bytes; boundary says whether a connection
// may have ended between it and the record before.
func (c *checker) record(seq uint64, size int, boundary bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := int64(seq)
	switch {
	case s <= c.last:
		c.violate("record %d after record %d: reordered or duplicated", s, c.last)
	case s > c.last+1 && !boundary:
		c.violate("records %d–%d missing within one connection", c.last+1, s-1)
	case s > c.last+1:
		c.gaps = append(c.gaps, gap{c.last + 1, s - 1})
	}
	c.last = max(c.last, s)
	c.received++
	c.bytes += int64(size)
}

func (c *checker) partial() {
	c.mu.Lock()
	c.partials++
	c.mu.Unlock()
}

func (c *checker) corrupt(why string) {
	c.mu.Lock()
	c.violate("corrupted: %s", why)
	c.mu.Unlock()
}

func (c *checker) violate(format string, args ...any) {
	if len(c.violations) < 20 {
		c.violations = append(c.violations, c.name+": "+fmt.Sprintf(format, args...))
	}
}

func (c *checker) lastSeq() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// sender counts what one direction's writer reported.
type sender struct {
	mu      sync.Mutex
	next    uint64          // the next sequence number
	written int64           // records reported written
	bytes   int64           // their bytes
	dropped map[uint64]bool // records whose Write failed: never reported written
	last    int64           // the last record reported written; -1: none
}

func newSender() *sender { return &sender{dropped: map[uint64]bool{}, last: -1} }

func (s *sender) wrote(seq uint64, size int) {
	s.mu.Lock()
	s.written++
	s.bytes += int64(size)
	s.last = int64(seq)
	s.mu.Unlock()
}

func (s *sender) drop(seq uint64) {
	s.mu.Lock()
	s.dropped[seq] = true
	s.mu.Unlock()
}

func (s *sender) lastWritten() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// strictReader parses the records of one connection, whose bytes it knows
// come from that connection alone (the server's side).
type strictReader struct {
	c        *checker
	buf      []byte
	first    bool // the next record is the connection's first
	scratch  []byte
	failed   bool
	accepted func() bool // whether records of this connection still count
}

func newStrictReader(c *checker, accepted func() bool) *strictReader {
	return &strictReader{c: c, first: true, scratch: make([]byte, 0, maxPayload), accepted: accepted}
}

// feed takes the bytes the connection delivered; it returns false once
// the connection no longer counts or its stream is corrupt.
func (r *strictReader) feed(b []byte) bool {
	if r.failed {
		return false
	}
	r.buf = append(r.buf, b...)
	for {
		st, seq, size, why := parseRecord(r.buf, r.c.stream, r.scratch)
		switch st {
		case needMore:
			return true
		case bad:
			r.c.corrupt(why)
			r.failed = true
			return false
		}
		if !r.accepted() {
			return false
		}
		r.c.record(seq, size, r.first)
		r.first = false
		r.buf = r.buf[size:]
	}
}

// end is the end of the connection: an incomplete record is dropped.
func (r *strictReader) end() {
	if len(r.buf) > 0 && !r.failed {
		r.c.partial()
	}
}

// tetherReader parses the records read from a Tether, where a reconnect
// may lie between two Reads. The Generation before and after each Read
// bounds the connection that the Read's bytes came from; when a reconnect
// may lie between the pending partial record and the bytes of a Read, both
// readings are kept (the bytes continue the partial record, or they begin
// the new connection's stream) until the records tell them apart: a new
// connection begins at a record boundary, and a wrong reading fails the
// magic or the checksum within a record.
type tetherReader struct {
	c       *checker
	cands   []*candidate
	lastG0  uint64 // the Generation before the Read that completed the last record
	scratch []byte
}

// A candidate is one reading of the bytes since the last record.
type candidate struct {
	buf     []byte
	lo      uint64 // the Generation before the Read of buf's first byte
	startG1 uint64 // the Generation after that Read
	dropped bool   // this reading dropped a partial record at a reconnect
}

func newTetherReader(c *checker) *tetherReader {
	return &tetherReader{c: c, cands: []*candidate{{}}, scratch: make([]byte, 0, maxPayload)}
}

// feed takes the bytes of one Read, with the Generation before (g0) and
// after (g1) it.
func (r *tetherReader) feed(b []byte, g0, g1 uint64) {
	var next []*candidate
	fresh := false
	for _, c := range r.cands {
		switch {
		case len(c.buf) == 0:
			next = append(next, &candidate{buf: append([]byte(nil), b...), lo: g0, startG1: g1, dropped: c.dropped})
		case c.lo == g1:
			// Generations never go back: buf and b came from one
			// connection.
			next = append(next, &candidate{buf: append(c.buf[:len(c.buf):len(c.buf)], b...), lo: c.lo, startG1: c.startG1, dropped: c.dropped})
		default:
			next = append(next, &candidate{buf: append(c.buf[:len(c.buf):len(c.buf)], b...), lo: c.lo, startG1: c.startG1, dropped: c.dropped})
			fresh = true
		}
	}
	if fresh {
		next = append(next, &candidate{buf: append([]byte(nil), b...), lo: g0, startG1: g1, dropped: true})
	}

	// Parse each reading; the first to complete a record wins.
	var alive []*candidate
	for _, c := range next {
		recs, rest, ok := r.parse(c, len(b))
		if !ok {
			continue
		}
		if len(recs) == 0 {
			alive = append(alive, c)
			continue
		}
		r.commit(c, recs, rest, len(b), g0, g1)
		return
	}
	if len(alive) == 0 {
		// No reading of the bytes is a valid record stream.
		st, _, _, why := parseRecord(next[len(next)-1].buf, r.c.stream, r.scratch)
		if st != bad {
			why = "no reading of the bytes holds records"
		}
		r.c.corrupt(why)
		r.cands = []*candidate{{}}
		return
	}
	r.cands = alive
}

type parsed struct {
	seq       uint64
	size      int
	thisChunk bool // the record began in the bytes of the last Read
}

// parse parses the complete records at the start of c.buf; ok is false
// when the bytes cannot be a record stream.
func (r *tetherReader) parse(c *candidate, chunk int) (recs []parsed, rest []byte, ok bool) {
	b := c.buf
	off := 0
	for {
		st, seq, size, _ := parseRecord(b[off:], r.c.stream, r.scratch)
		switch st {
		case bad:
			return nil, nil, false
		case needMore:
			return recs, b[off:], true
		}
		recs = append(recs, parsed{seq: seq, size: size, thisChunk: off >= len(b)-chunk})
		off += size
	}
}

// commit makes c the reading: its records go to the checker, and its rest
// becomes the only candidate.
func (r *tetherReader) commit(c *candidate, recs []parsed, rest []byte, chunk int, g0, g1 uint64) {
	if c.dropped {
		r.c.partial()
	}
	prevThisChunk := false
	for i, p := range recs {
		firstG1 := c.startG1
		if i > 0 || p.thisChunk {
			firstG1 = g1
		}
		// A connection may have ended between the last record and this
		// one only if they are not both from this Read's bytes and the
		// Generation moved in between.
		boundary := !(prevThisChunk && p.thisChunk) && firstG1 > r.lastG0
		if i == 0 && c.dropped {
			boundary = true // this reading says the last connection ended
		}
		r.c.record(p.seq, p.size, boundary)
		r.lastG0 = g0
		prevThisChunk = true
	}
	nc := &candidate{buf: append([]byte(nil), rest...), lo: g0, startG1: g1}
	if len(rest) > chunk { // the rest began before this Read
		nc.lo, nc.startG1 = c.lo, c.startG1
	}
	r.cands = []*candidate{nc}
}
