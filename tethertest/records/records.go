// Package records makes and checks a stream of numbered, checksummed
// records, to test that a connection which reconnects (a Tether, a session,
// one's own) delivers what was written intact: a [Sender] writes the
// records of a stream and keeps what became of each, a [Checker] checks the
// bytes that come out, however the reads split them, and [Compare] says
// what was lost.
//
// # The invariant
//
// A connection that dies takes with it what it had accepted and not yet
// delivered: no reconnect can save that. So records may be lost, but only
// where a connection may have ended, and only whole: a record that comes
// out corrupted, reordered, duplicated, cut short within one connection,
// or missing between two records of one connection violates the invariant.
// A Checker tells where a connection may have ended from the generations of
// the reads (tether.Tether.ReadGeneration gives them). Over a stream that
// loses nothing (a session), everything sent must arrive whole: both
// [Tally.Lost] and [Result.Failures] are 0 (a record missing within one
// connection counts in Result.Missing, a violation, not in Tally.Lost).
//
// # The format
//
// A record is one line of text:
//
//	#<seq> <payload> <crc>\n
//
// seq counts from 0 in decimal; payload is 32 to 256 characters of
// [a-z0-9], a function of the stream's seed and seq, so that the receiver
// checks every byte; crc is the CRC-32 (IEEE) of "#<seq> <payload>", in 8
// hex digits. '#' appears only at the start of a record and '\n' only at its
// end, so a record that begins while the one before is incomplete shows that
// the connection under the incomplete one ended. A record is at most
// [MaxSize] bytes.
package records

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
)

const (
	minPayload = 32
	maxPayload = 256
	// MaxSize is the length of the longest record.
	MaxSize  = 1 + 20 + 1 + maxPayload + 1 + 8 + 1
	alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
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

// Append appends record seq of the stream made from seed to b.
func Append(b []byte, seed, seq uint64) []byte {
	start := len(b)
	b = append(b, '#')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = payload(b, seed, seq)
	sum := crc32.ChecksumIEEE(b[start:])
	return fmt.Appendf(b, " %08x\n", sum)
}

// parse checks one record, given without its '\n', and returns its
// sequence number, and whether that could be read (a damaged record may
// still say where it belongs). scratch is reused for the expected payload.
func parse(line []byte, seed uint64, scratch []byte) (seq uint64, numbered bool, err error) {
	if len(line) == 0 || line[0] != '#' {
		return 0, false, fmt.Errorf("bytes %q where a record should start", clip(line))
	}
	sp1, sp2 := bytes.IndexByte(line, ' '), bytes.LastIndexByte(line, ' ')
	if sp1 < 0 || sp2 <= sp1 || len(line)-sp2-1 != 8 {
		return 0, false, fmt.Errorf("malformed record %q", clip(line))
	}
	seq, err = strconv.ParseUint(string(line[1:sp1]), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed record %q", clip(line))
	}
	sum, err := strconv.ParseUint(string(line[sp2+1:]), 16, 32)
	if err != nil || crc32.ChecksumIEEE(line[:sp2]) != uint32(sum) {
		return seq, true, fmt.Errorf("record %d: bad checksum", seq)
	}
	// The checksum is what a real protocol checks; a test also knows what
	// was sent.
	if !bytes.Equal(line[sp1+1:sp2], payload(scratch[:0], seed, seq)) {
		return seq, true, fmt.Errorf("record %d: payload differs from the one sent", seq)
	}
	return seq, true, nil
}

// clip returns the start of b, for an error message.
func clip(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}
