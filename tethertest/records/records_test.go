package records

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const seed = 0x7e7e

// records returns records from..to-1, each as its bytes.
func records(from, to uint64) [][]byte {
	var rs [][]byte
	for seq := from; seq < to; seq++ {
		rs = append(rs, Append(nil, seed, seq))
	}
	return rs
}

// TestParse: a record parses back, and a changed byte or another
// seed does not.
func TestParse(t *testing.T) {
	rec := Append(nil, seed, 42)
	require.Equal(t, byte('\n'), rec[len(rec)-1])
	require.LessOrEqual(t, len(rec), MaxSize)
	require.Equal(t, 1, bytes.Count(rec, []byte("#")))
	seq, _, err := parse(rec[:len(rec)-1], seed, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(42), seq)

	flipped := bytes.Clone(rec)
	flipped[10] ^= 1
	_, _, err = parse(flipped[:len(flipped)-1], seed, nil)
	require.ErrorContains(t, err, "record 42: bad checksum")

	_, _, err = parse(rec[:len(rec)-1], seed+1, nil)
	require.ErrorContains(t, err, "payload differs")
}

// TestCheckerAnyChunking: an intact stream checks out however the reads
// split it.
func TestCheckerAnyChunking(t *testing.T) {
	stream := bytes.Join(records(0, 5), nil)
	for size := 1; size <= len(stream); size++ {
		c := NewChecker(seed, nil)
		for b := stream; len(b) > 0; b = b[min(size, len(b)):] {
			c.Feed(b[:min(size, len(b))], 1)
		}
		r := c.Result()
		require.Zero(t, r.Failures(), "chunks of %d: %v", size, r.Violations)
		require.Equal(t, int64(5), r.Received, "chunks of %d", size)
		require.Equal(t, int64(len(stream)), r.Bytes, "chunks of %d", size)
	}
}

// read is one Read of a test: its bytes and the Generations around it.
type read struct {
	b      string
	g0, g1 uint64
}

// TestChecker: what the Checker counts, and which streams violate the
// invariant.
func TestChecker(t *testing.T) {
	r := records(0, 6)
	str := func(i int) string { return string(r[i]) }
	half := func(i int) (string, string) { return str(i)[:20], str(i)[20:] }
	h2a, h2b := half(2)

	tests := []struct {
		name  string
		reads []read
		// want
		verified, cut, corrupted, missing, reordered, duplicated int64
	}{
		{"clean", []read{{str(0) + str(1), 1, 1}, {str(2), 1, 1}}, 3, 0, 0, 0, 0, 0},
		{"records lost with a reconnect", []read{{str(0), 1, 1}, {str(3), 1, 2}}, 2, 0, 0, 0, 0, 0},
		{"records lost with no reconnect", []read{{str(0), 1, 1}, {str(3), 1, 1}}, 2, 0, 0, 2, 0, 0},
		{"records lost within one read", []read{{str(0) + str(3), 1, 2}}, 2, 0, 0, 2, 0, 0},
		{"records lost at the start, with a reconnect", []read{{str(2), 1, 2}}, 1, 0, 0, 0, 0, 0},
		{"records lost at the start, no reconnect", []read{{str(2), 1, 1}}, 1, 0, 0, 2, 0, 0},
		{"a record cut by a reconnect", []read{{str(0) + str(1), 1, 1}, {h2a, 1, 1}, {str(4), 2, 2}}, 3, 1, 0, 0, 0, 0},
		{"a record cut with no reconnect", []read{{str(0) + str(1), 1, 1}, {h2a, 1, 1}, {str(3), 1, 1}}, 3, 0, 1, 1, 0, 0},
		// A Read that raced a reconnect (g0 < g1) may still continue the
		// record of the connection before.
		{"a record continued across a racing reconnect", []read{{str(0) + str(1) + h2a, 1, 1}, {h2b + str(3), 1, 2}}, 4, 0, 0, 0, 0, 0},
		// With WriteResume, the rest of a record half taken by a
		// dead connection would begin the next one: spliced, it fails.
		{"the rest of a record at the start of a connection", []read{{str(0) + str(1), 1, 1}, {h2b + str(3), 2, 2}}, 3, 0, 1, 1, 0, 0},
		{"a duplicate", []read{{str(0) + str(1), 1, 1}, {str(1), 1, 2}}, 2, 0, 0, 0, 0, 1},
		{"reordered", []read{{str(0) + str(2), 1, 2}, {str(1), 2, 2}}, 2, 0, 0, 1, 1, 0},
		{"a flipped bit", []read{{str(0), 1, 1}, {strings.Replace(str(1), " ", "  ", 1), 1, 1}}, 1, 0, 1, 0, 0, 0},
		{"garbage", []read{{strings.Repeat("x", MaxSize+1), 1, 1}}, 0, 0, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(seed, nil)
			for _, rd := range tt.reads {
				c.FeedBetween([]byte(rd.b), rd.g0, rd.g1)
			}
			r := c.Result()
			got := [6]int64{r.Received, r.Cut, r.Corrupted, r.Missing, r.Reordered, r.Duplicated}
			want := [6]int64{tt.verified, tt.cut, tt.corrupted, tt.missing, tt.reordered, tt.duplicated}
			require.Equal(t, want, got, "received, cut, corrupted, missing, reordered, duplicated; violations %q", r.Violations)
			require.Equal(t, r.Failures() > 0, len(r.Violations) > 0, "violations %q", r.Violations)
		})
	}
}

// TestCompare: records sent and lost at a reconnect, failed, received,
// and still in flight at the end.
func TestCompare(t *testing.T) {
	s := NewSender(seed)
	var conn1, conn2 bytes.Buffer
	require.NoError(t, s.Send(&conn1, 3)) // 0-2
	require.NoError(t, s.Send(&conn1, 1)) // 3: lost with connection 1
	require.Error(t, s.Send(failingWriter{}, 2))
	require.NoError(t, s.Send(&conn2, 2)) // 6, 7
	require.NoError(t, s.Send(io.Discard, 1))
	require.Equal(t, uint64(9), s.Next())
	require.Equal(t, int64(8), s.LastSent())

	c := NewChecker(seed, nil)
	c.Feed(conn1.Bytes()[:bytes.LastIndex(conn1.Bytes(), []byte("#"))], 1)
	c.Feed(conn2.Bytes(), 2)
	r := c.Result()
	require.Zero(t, r.Failures(), r.Violations)
	require.Equal(t, []Gap{{3, 5}}, r.Gaps)
	require.Equal(t, int64(7), r.Last)

	got := Compare(s, c)
	lost := int64(len(Append(nil, seed, 3)) + len(Append(nil, seed, 8)))
	require.Equal(t, Tally{Sent: 7, SentBytes: int64(conn1.Len() + conn2.Len() + len(Append(nil, seed, 8))),
		Failed: 2, Received: 5, Lost: 2, LostBytes: lost,
		MaxLostBytes: max(int64(len(Append(nil, seed, 3))), int64(len(Append(nil, seed, 8)))), LostAt: 2}, got)
}

// failingWriter fails every Write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

// TestOnRecord: the callback sees each record in order, and its error
// counts the record as corrupted.
func TestOnRecord(t *testing.T) {
	var seen []uint64
	c := NewChecker(seed, func(seq uint64) error {
		seen = append(seen, seq)
		if seq == 1 {
			return errors.New("never written")
		}
		return nil
	})
	c.Feed(bytes.Join(records(0, 3), nil), 1)
	r := c.Result()
	require.Equal(t, []uint64{0, 1, 2}, seen)
	require.Equal(t, int64(1), r.Corrupted)
	require.Equal(t, []string{"record 1: never written"}, r.Violations)
}

// recs returns the records of seed with the given sequence numbers, as one
// stream.
func recs(seed uint64, seqs ...uint64) []byte {
	var b []byte
	for _, s := range seqs {
		b = Append(b, seed, s)
	}
	return b
}

// Records received again (a resend of what was delivered, the classic
// resume bug) count as duplicated, each once; a record that comes late
// into a gap counts as reordered.
func TestReplayCountsAsDuplicated(t *testing.T) {
	c := NewChecker(1, nil)
	c.Feed(recs(1, 0, 1, 2, 3, 4, 5), 1)
	c.Feed(recs(1, 3, 4, 5, 6), 1)
	r := c.Result()
	require.Equal(t, int64(3), r.Duplicated, "%+v", r)
	require.Zero(t, r.Reordered)
	require.Equal(t, int64(6), r.Last)

	c = NewChecker(1, nil)
	c.Feed(recs(1, 0, 1), 1)
	c.Feed(recs(1, 4, 2), 2) // 2 and 3 in a gap; 2 comes late
	r = c.Result()
	require.Equal(t, int64(1), r.Reordered, "%+v", r)
	require.Zero(t, r.Duplicated)
}

// A damaged record in its place counts once, as corrupted: the record
// after it follows it, and is not missing too.
func TestCorruptedCountsOnce(t *testing.T) {
	c := NewChecker(1, nil)
	b := recs(1, 0, 1, 2)
	b[len(Append(nil, 1, 0))+5] ^= 1 // a payload byte of record 1
	c.Feed(b, 1)
	r := c.Result()
	require.Equal(t, int64(1), r.Failures(), "%+v", r)
	require.Equal(t, int64(1), r.Corrupted)
	require.Equal(t, int64(2), r.Received)
	require.Equal(t, int64(2), r.Last)
	c.Feed(recs(1, 1), 1) // the damaged one, sent again: not received before
	require.Equal(t, int64(1), c.Result().Reordered)
}

// The same holds for record 0, and for a damaged checksum.
func TestCorruptedFirstCountsOnce(t *testing.T) {
	for _, bad := range []uint64{0, 3} {
		rs := records(0, 5)
		rs[bad] = bytes.Clone(rs[bad])
		rs[bad][len(rs[bad])-3] ^= 1 // a bit of the checksum
		c := NewChecker(seed, nil)
		c.Feed(bytes.Join(rs, nil), 1)
		r := c.Result()
		require.Equal(t, int64(1), r.Failures(), "record %d damaged: %+v", bad, r)
		require.Equal(t, int64(1), r.Corrupted, "record %d damaged", bad)
	}
}
