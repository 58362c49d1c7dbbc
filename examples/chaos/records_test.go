package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// records returns records from..to-1, each as its bytes.
func records(from, to uint64) [][]byte {
	var rs [][]byte
	for seq := from; seq < to; seq++ {
		rs = append(rs, appendRecord(nil, seed, seq))
	}
	return rs
}

// TestParseRecord: a record parses back, and a changed byte or another
// seed does not.
func TestParseRecord(t *testing.T) {
	rec := appendRecord(nil, seed, 42)
	require.Equal(t, byte('\n'), rec[len(rec)-1])
	require.LessOrEqual(t, len(rec), maxRecord)
	require.Equal(t, 1, bytes.Count(rec, []byte("#")))
	seq, err := parseRecord(rec[:len(rec)-1], seed, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(42), seq)

	flipped := bytes.Clone(rec)
	flipped[10] ^= 1
	_, err = parseRecord(flipped[:len(flipped)-1], seed, nil)
	require.ErrorContains(t, err, "record 42: bad checksum")

	_, err = parseRecord(rec[:len(rec)-1], seed+1, nil)
	require.ErrorContains(t, err, "payload differs")
}

// TestVerifierAnyChunking: an intact stream checks out however the reads
// split it.
func TestVerifierAnyChunking(t *testing.T) {
	stream := bytes.Join(records(0, 5), nil)
	for size := 1; size <= len(stream); size++ {
		v := newVerifier(seed, nil)
		for b := stream; len(b) > 0; b = b[min(size, len(b)):] {
			v.feed(b[:min(size, len(b))], 1, 1)
		}
		require.Zero(t, v.failures(), "chunks of %d: %v", size, v.violations)
		require.Equal(t, int64(5), v.verified, "chunks of %d", size)
	}
}

// read is one Read of a test: its bytes and the Generations around it.
type read struct {
	b      string
	g0, g1 uint64
}

// TestVerifier: what the verifier counts, and which streams violate the
// invariant.
func TestVerifier(t *testing.T) {
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
		{"garbage", []read{{strings.Repeat("x", maxRecord+1), 1, 1}}, 0, 0, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(seed, nil)
			for _, rd := range tt.reads {
				v.feed([]byte(rd.b), rd.g0, rd.g1)
			}
			got := [6]int64{v.verified, v.cut, v.corrupted, v.missing, v.reordered, v.duplicated}
			want := [6]int64{tt.verified, tt.cut, tt.corrupted, tt.missing, tt.reordered, tt.duplicated}
			require.Equal(t, want, got, "verified, cut, corrupted, missing, reordered, duplicated; violations %q", v.violations)
		})
	}
}

// TestLedger: the fates of records, marks, and the tally.
func TestLedger(t *testing.T) {
	l := newLedger()
	start := time.Now()
	for i := range 4 {
		seq := l.next()
		require.Equal(t, uint64(i), seq)
	}
	m := l.mark(start)
	for seq, fate := range []uint8{recSent, recSent, recDropped, recSent} {
		l.wrote(uint64(seq), fate)
	}
	require.NoError(t, l.verify(0, start))
	require.False(t, l.drained())
	require.True(t, l.backAt(m).IsZero(), "no record written after the mark came back")
	require.Error(t, l.verify(4, start), "record 4 was never written")

	seq := l.next()
	l.wrote(seq, recSent)
	require.NoError(t, l.verify(seq, start.Add(time.Second)))
	require.Equal(t, start.Add(time.Second), l.backAt(m))
	require.True(t, l.drained())
	require.Equal(t, tally{sent: 4, verified: 2, lostSent: 2, lostDropped: 1}, l.tally())
}

// TestDisplay: on a terminal the status line redraws in place below the
// lines; otherwise it is a line of its own.
func TestDisplay(t *testing.T) {
	var b strings.Builder
	d := newDisplay(&b, true, time.Now())
	d.setStatus("status 1")
	d.printf("event\n")
	d.setStatus("status 2")
	d.through(&b).Write([]byte("log\n"))
	d.clearStatus()
	require.Equal(t, "\r\x1b[Kstatus 1"+"\r\x1b[Kevent\nstatus 1"+"\r\x1b[Kstatus 2"+"\r\x1b[Klog\nstatus 2"+"\r\x1b[K", b.String())

	b.Reset()
	d = newDisplay(&b, false, time.Now())
	d.setStatus("status 1")
	d.printf("event\n")
	d.clearStatus()
	require.Equal(t, "status 1\nevent\n", b.String())
}
