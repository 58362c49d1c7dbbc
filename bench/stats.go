package main

import (
	"cmp"
	"math"
	"slices"
)

// summary holds the quantiles of a sample that a box plot shows.
type summary struct {
	P05, P25, Median, P75, P95 float64
}

// summarize returns the summary of xs (which it does not change); NaN
// everywhere for an empty sample.
func summarize(xs []float64) summary {
	s := slices.Clone(xs)
	slices.Sort(s)
	return summary{P05: quantileSorted(s, 0.05), P25: quantileSorted(s, 0.25), Median: quantileSorted(s, 0.5),
		P75: quantileSorted(s, 0.75), P95: quantileSorted(s, 0.95)}
}

// quantile returns the q-quantile of xs (0 <= q <= 1), interpolating
// linearly between order statistics (type 7, the default of R and NumPy).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantileSorted(s, q)
}

func quantileSorted(s []float64, q float64) float64 {
	switch {
	case len(s) == 0:
		return math.NaN()
	case q <= 0:
		return s[0]
	case q >= 1:
		return s[len(s)-1]
	}
	h := q * float64(len(s)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (h-lo)*(s[i+1]-s[i])
}

// median returns the median of xs.
func median(xs []float64) float64 { return quantile(xs, 0.5) }

// pairedRatios returns num[i]/den[i] for each i of the shorter of the two.
// Zero denominators are skipped.
func pairedRatios(num, den []float64) []float64 {
	n := min(len(num), len(den))
	out := make([]float64, 0, n)
	for i := range n {
		if den[i] != 0 {
			out = append(out, num[i]/den[i])
		}
	}
	return out
}

// medianPair returns the index of the pair (raw[i], wrapped[i]) whose
// ratio wrapped/raw is the median: of an even number, the lower of the
// middle two, so that it is a pair that was measured. Pairs whose raw is 0
// are left out; with none left, it returns 0.
func medianPair(raw, wrapped []float64) int {
	var idx []int
	for i := range min(len(raw), len(wrapped)) {
		if raw[i] != 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return 0
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(wrapped[a]/raw[a], wrapped[b]/raw[b]) })
	return idx[(len(idx)-1)/2]
}

// histogram counts the times ts (seconds from an origin) into buckets of
// width w seconds from lo to hi; times outside are dropped.
func histogram(ts []float64, lo, hi, w float64) []int {
	if w <= 0 || hi <= lo {
		return nil
	}
	n := int(math.Ceil((hi - lo) / w))
	out := make([]int, n)
	for _, t := range ts {
		if t < lo || t >= hi {
			continue
		}
		i := int((t - lo) / w)
		if i >= n {
			i = n - 1
		}
		out[i]++
	}
	return out
}
