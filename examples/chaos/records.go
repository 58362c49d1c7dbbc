package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// A record is one line of text:
//
//	#<seq> <payload> <crc>\n
//
// seq counts from 0 in decimal; payload is 32 to 256 characters of [a-z0-9],
// a function of the run's seed and seq, so that the receiver can check every
// byte; crc is the CRC-32 (IEEE) of "#<seq> <payload>", in 8 hex digits.
// '#' appears only at the start of a record and '\n' only at its end, so a
// record that begins while the one before is incomplete shows that the
// connection under the incomplete one was cut.
const (
	minPayload = 32
	maxPayload = 256
	maxRecord  = 1 + 20 + 1 + maxPayload + 1 + 8 + 1
	alphabet   = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// payload appends the payload of record seq to b.
func payload(b []byte, seed, seq uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seq))
	n := minPayload + r.IntN(maxPayload-minPayload+1)
	for range n {
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return b
}

// appendRecord appends record seq to b.
func appendRecord(b []byte, seed, seq uint64) []byte {
	start := len(b)
	b = append(b, '#')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = payload(b, seed, seq)
	sum := crc32.ChecksumIEEE(b[start:])
	return fmt.Appendf(b, " %08x\n", sum)
}

// parseRecord checks one record, given without its '\n', and returns its
// sequence number. scratch is reused for the expected payload.
func parseRecord(line []byte, seed uint64, scratch []byte) (uint64, error) {
	if len(line) == 0 || line[0] != '#' {
		return 0, fmt.Errorf("bytes %q where a record should start", clip(line))
	}
	sp1, sp2 := bytes.IndexByte(line, ' '), bytes.LastIndexByte(line, ' ')
	if sp1 < 0 || sp2 <= sp1 || len(line)-sp2-1 != 8 {
		return 0, fmt.Errorf("malformed record %q", clip(line))
	}
	seq, err := strconv.ParseUint(string(line[1:sp1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed record %q", clip(line))
	}
	sum, err := strconv.ParseUint(string(line[sp2+1:]), 16, 32)
	if err != nil || crc32.ChecksumIEEE(line[:sp2]) != uint32(sum) {
		return seq, fmt.Errorf("record %d: bad checksum", seq)
	}
	// The checksum is what a real protocol checks; the demo also knows
	// what was sent.
	if !bytes.Equal(line[sp1+1:sp2], payload(scratch[:0], seed, seq)) {
		return seq, fmt.Errorf("record %d: payload differs from the one sent", seq)
	}
	return seq, nil
}

// clip returns the start of b, for an error message.
func clip(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

// A verifier checks the records that come back, in the order the reader
// gets them. It takes the bytes of each Read with bounds of the generation
// of the connection they came from, g0 <= generation <= g1: both are the
// generation itself with Tether.ReadGeneration, and Generation() before and
// after a Read bound it. A record may be lost only where a
// connection may have ended (the Generations say so): records missing
// between two records of one connection, a record cut short within one
// connection, or a record that is corrupted, reordered or duplicated
// violate the invariant.
//
// A verifier is used by one goroutine.
type verifier struct {
	seed     uint64
	onRecord func(seq uint64) error // called for each record that checks out

	buf     []byte // an incomplete record: the bytes after the last '\n'
	bufHi   uint64 // g1 of the Read that delivered buf[0]
	bufLo   uint64 // g0 of the last Read that added to buf
	last    int64  // the last sequence number verified; -1: none
	lastLo  uint64 // g0 of the Read that delivered the end of that record
	scratch []byte

	verified   int64
	cut        int64 // incomplete records dropped because their connection ended
	corrupted  int64
	reordered  int64
	duplicated int64
	missing    int64 // records missing with no reconnect in between
	violations []string
}

// newVerifier returns a verifier of the records made from seed; onRecord,
// if not nil, is called for each record that checks out, and an error
// from it makes the record count as corrupted.
func newVerifier(seed uint64, onRecord func(uint64) error) *verifier {
	// The virtual record -1 ends on the first connection: records lost
	// before the first one that arrives must have a reconnect too.
	return &verifier{seed: seed, onRecord: onRecord, last: -1, lastLo: 1,
		scratch: make([]byte, 0, maxPayload)}
}

// feed takes the bytes of one Read, made between Generations g0 and g1.
func (v *verifier) feed(b []byte, g0, g1 uint64) {
	if len(b) == 0 {
		return
	}
	if len(v.buf) > 0 && b[0] == '#' {
		// A record begins while the last one is incomplete: its
		// connection ended in the middle of it, and b comes from a later
		// one. That needs a reconnect between the two Reads.
		if g1 > v.bufLo {
			v.cut++
		} else {
			v.corrupted++
			v.violate("record %q cut short within one connection", clip(v.buf))
		}
		v.buf = v.buf[:0]
	}
	continued := len(v.buf) > 0 // the first record of b began in an earlier Read
	for first := true; len(b) > 0; first = false {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(v.buf) == 0 {
				v.bufHi = g1
			}
			v.buf = append(v.buf, b...)
			v.bufLo = g0
			if len(v.buf) > maxRecord {
				v.corrupted++
				v.violate("%d bytes without the end of a record", len(v.buf))
				v.buf = v.buf[:0]
			}
			return
		}
		line, hi := b[:i], g1
		if first && continued {
			line, hi = append(v.buf, line...), v.bufHi
		}
		// A connection may have ended between the last record and this
		// one, unless this one follows it within the bytes of one Read.
		v.check(line, first && hi > v.lastLo)
		v.lastLo = g0
		v.buf = v.buf[:0]
		b = b[i+1:]
	}
}

// check verifies one record; reconnect says whether a connection may have
// ended since the record before.
func (v *verifier) check(line []byte, reconnect bool) {
	seq, err := parseRecord(line, v.seed, v.scratch)
	if err != nil {
		v.corrupted++
		v.violate("%v", err)
		return
	}
	s := int64(seq)
	switch {
	case s == v.last:
		v.duplicated++
		v.violate("record %d twice", s)
		return
	case s < v.last:
		v.reordered++
		v.violate("record %d after record %d", s, v.last)
		return
	case s > v.last+1 && !reconnect:
		v.missing += s - v.last - 1
		v.violate("records %d to %d missing with no reconnect in between", v.last+1, s-1)
	}
	if v.onRecord != nil {
		if err := v.onRecord(seq); err != nil {
			v.corrupted++
			v.violate("record %d: %v", seq, err)
			return
		}
	}
	v.last = s
	v.verified++
}

// violate notes a violation of the invariant (the first few, for the
// report).
func (v *verifier) violate(format string, args ...any) {
	if len(v.violations) < 5 {
		v.violations = append(v.violations, fmt.Sprintf(format, args...))
	}
}

// failures is the number of records that violate the invariant.
func (v *verifier) failures() int64 {
	return v.corrupted + v.reordered + v.duplicated + v.missing
}

// The fate of one record, as its writer and its reader saw it.
const (
	recWriting  uint8 = iota // Write has not returned yet
	recSent                  // Write returned nil
	recDropped               // Write returned ErrDropped: the record never went out whole
	recUnsent                // Write failed otherwise (the run ended): not sent
	recVerified uint8 = 1 << 7
)

// A ledger records the fate of each record, for the status line and the
// summary. Its methods are safe for concurrent use.
type ledger struct {
	mu       sync.Mutex
	fate     []uint8 // by sequence number
	sent     int64
	verified int64
	lastSent int64 // the last record reported sent; -1: none
	lastVer  int64 // the last record verified; -1: none
	marks    []*mark
}

// A mark notes the next record to be written at some moment, and when the
// first record written since then came back verified.
type mark struct {
	seq  uint64
	at   time.Time
	back time.Time // zero until then
}

// newLedger returns an empty ledger.
func newLedger() *ledger { return &ledger{lastSent: -1, lastVer: -1} }

// next returns the sequence number of the next record, as written.
func (l *ledger) next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fate = append(l.fate, recWriting)
	return uint64(len(l.fate) - 1)
}

// wrote records what Write said about record seq.
func (l *ledger) wrote(seq uint64, fate uint8) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fate[seq] = l.fate[seq]&recVerified | fate
	if fate == recSent {
		l.sent++
		l.lastSent = max(l.lastSent, int64(seq))
	}
}

// verify records that record seq came back intact.
func (l *ledger) verify(seq uint64, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq >= uint64(len(l.fate)) {
		return errors.New("a record that was never written came back")
	}
	l.fate[seq] |= recVerified
	l.verified++
	l.lastVer = int64(seq)
	for _, m := range l.marks {
		if m.back.IsZero() && seq >= m.seq {
			m.back = now
		}
	}
	return nil
}

// mark returns a mark for the next record to be written.
func (l *ledger) mark(now time.Time) *mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := &mark{seq: uint64(len(l.fate)), at: now}
	l.marks = append(l.marks, m)
	return m
}

// backAt returns when m's first record came back, or the zero Time.
func (l *ledger) backAt(m *mark) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return m.back
}

// counts returns the records sent and verified so far.
func (l *ledger) counts() (sent, verified int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.verified
}

// drained reports whether every record sent has come back.
func (l *ledger) drained() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastVer >= l.lastSent
}

// tally is the fate of the records once the run is over.
type tally struct {
	sent, verified int64
	lostSent       int64 // sent on a connection that died, never back
	lostDropped    int64 // dropped by Write (ErrDropped)
}

// tally counts the records' fates.
func (l *ledger) tally() tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t tally
	for _, f := range l.fate {
		switch {
		case f&recVerified != 0:
			t.verified++
		case f == recSent:
			t.lostSent++
		case f == recDropped:
			t.lostDropped++
		}
	}
	t.sent = l.sent
	return t
}
