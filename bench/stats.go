package main

import (
	"math"
	"slices"
)

// summary describes a sample: its size, quantiles and extremes.
type summary struct {
	N             int
	Min, Max      float64
	P05, P10, P25 float64
	Median        float64
	P75, P90, P95 float64
	Mean          float64
}

// summarize returns the summary of xs (which it does not change). An empty
// sample gives NaN everywhere but N.
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		nan := math.NaN()
		return summary{Min: nan, Max: nan, P05: nan, P10: nan, P25: nan, Median: nan,
			P75: nan, P90: nan, P95: nan, Mean: nan}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return summary{
		N:      len(s),
		Min:    s[0],
		Max:    s[len(s)-1],
		P05:    quantileSorted(s, 0.05),
		P10:    quantileSorted(s, 0.10),
		P25:    quantileSorted(s, 0.25),
		Median: quantileSorted(s, 0.50),
		P75:    quantileSorted(s, 0.75),
		P90:    quantileSorted(s, 0.90),
		P95:    quantileSorted(s, 0.95),
		Mean:   sum / float64(len(s)),
	}
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
