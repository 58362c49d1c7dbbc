package faultmatrix

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether/tethertest/faultproxy"
)

// The checkers must see every violation and accept every legal loss: these
// tests feed them hand-made streams.

func records(stream uint64, seqs ...uint64) []byte {
	var b []byte
	for _, s := range seqs {
		b = appendRecord(b, stream, s)
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	b := records(7, 0, 1, 2)
	scratch := make([]byte, 0, maxPayload)
	for want := uint64(0); want < 3; want++ {
		st, seq, size, why := parseRecord(b, 7, scratch)
		require.Equal(t, complete, st, why)
		require.Equal(t, want, seq)
		b = b[size:]
	}
	require.Empty(t, b)
	st, _, _, _ := parseRecord(records(7, 5)[:3], 7, scratch)
	require.Equal(t, needMore, st, "a prefix of the magic")
	st, _, _, _ = parseRecord([]byte("RECX"), 7, scratch)
	require.Equal(t, bad, st)
	st, _, _, _ = parseRecord(records(8, 5), 7, scratch)
	require.Equal(t, bad, st, "a record of another stream")
}

func TestStrictReader(t *testing.T) {
	c := newChecker("strict", 1)
	accepted := func() bool { return true }
	r := newStrictReader(c, accepted)
	b := records(1, 0, 1, 2)
	for i := range b { // one byte at a time
		require.True(t, r.feed(b[i:i+1]))
	}
	r.feed(records(1, 3)[:10])
	r.end()
	r = newStrictReader(c, accepted) // the next connection: a gap is legal
	r.feed(records(1, 7, 8))
	require.Empty(t, c.violations)
	require.Equal(t, []gap{{3, 6}}, c.gaps)
	require.Equal(t, 1, c.partials)
	require.Equal(t, int64(5), c.received)

	r.feed(records(1, 10)) // a gap within a connection
	r.feed(records(1, 10)) // a duplicate
	require.Len(t, c.violations, 2)

	c = newChecker("strict", 1)
	b = records(1, 0)
	b[20] ^= 1
	r = newStrictReader(c, accepted)
	require.False(t, r.feed(b))
	require.Len(t, c.violations, 1, "a flipped bit")
}

func TestTetherReader(t *testing.T) {
	t.Run("chunks of one connection", func(t *testing.T) {
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		b := records(2, 0, 1, 2, 3)
		for len(b) > 0 {
			n := min(len(b), 37)
			r.feed(b[:n], 1, 1)
			b = b[n:]
		}
		require.Empty(t, c.violations)
		require.Empty(t, c.gaps)
		require.Equal(t, int64(3), c.last)
	})
	t.Run("a reconnect around a Read that continues the record", func(t *testing.T) {
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		b := records(2, 0, 1, 2)
		r.feed(b[:len(b)-5], 1, 1)
		r.feed(b[len(b)-5:], 1, 2) // from connection 1 after all
		require.Empty(t, c.violations)
		require.Equal(t, int64(2), c.last)
		require.Zero(t, c.partials)
	})
	t.Run("a reconnect after a partial record", func(t *testing.T) {
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		b := records(2, 0, 1, 2)
		r.feed(b[:len(b)-5], 1, 1)
		next := records(2, 6, 7)
		r.feed(next[:1], 1, 2) // one byte: both readings still hold
		r.feed(next[1:], 2, 2)
		require.Empty(t, c.violations)
		require.Equal(t, []gap{{2, 5}}, c.gaps, "record 2 lost with connection 1")
		require.Equal(t, 1, c.partials)
		require.Equal(t, int64(7), c.last)
	})
	t.Run("a gap without a reconnect", func(t *testing.T) {
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		r.feed(records(2, 0), 1, 1)
		r.feed(records(2, 2), 1, 1)
		require.Len(t, c.violations, 1)
	})
	t.Run("a gap after a reconnect", func(t *testing.T) {
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		r.feed(records(2, 0), 1, 1)
		r.feed(records(2, 2), 1, 2)
		require.Empty(t, c.violations)
	})
	t.Run("reordered", func(t *testing.T) {
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		r.feed(records(2, 0, 1), 1, 1)
		r.feed(records(2, 1), 2, 2)
		require.Len(t, c.violations, 1)
	})
	t.Run("spliced", func(t *testing.T) {
		// Half of record 1 from one connection, then the other half of
		// a different record from the next: no reading holds.
		c := newChecker("tether", 2)
		r := newTetherReader(c)
		b1, b2 := records(2, 0, 1), records(2, 5)
		r.feed(b1[:len(b1)-10], 1, 1)
		r.feed(b2[20:], 1, 2)
		require.Len(t, c.violations, 1)
	})
}

// The fuzz seeds of FuzzFaultSchedule cover every fault.
func TestFuzzSeedsCoverFaults(t *testing.T) {
	all := faultproxy.AllFaults()
	for i, want := range all {
		b := byte((2*i + 1) * 256 / (2 * len(all)))
		steps := faultproxy.DecodeSchedule([]byte{b, 0, 0, 0}, fuzzSchedule)
		require.Equal(t, want, steps[0].Fault)
	}
}
