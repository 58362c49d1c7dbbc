package main

import (
	"math"
	"slices"
	"testing"
)

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3} // sorted: 1 2 3 4 5
	for _, tc := range []struct {
		q, want float64
	}{
		{0, 1}, {0.25, 2}, {0.5, 3}, {0.75, 4}, {1, 5},
		{0.1, 1.4}, {0.9, 4.6}, {-1, 1}, {2, 5},
	} {
		if got := quantile(xs, tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("quantile(%v, %v) = %v, want %v", xs, tc.q, got, tc.want)
		}
	}
	if !slices.Equal(xs, []float64{5, 1, 4, 2, 3}) {
		t.Errorf("quantile changed its input: %v", xs)
	}
	if got := quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("quantile(nil, 0.5) = %v, want NaN", got)
	}
	if got := quantile([]float64{7}, 0.3); got != 7 {
		t.Errorf("quantile([7], 0.3) = %v, want 7", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1}, 1},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	xs := make([]float64, 101)
	for i := range xs {
		xs[i] = float64(100 - i) // 100 .. 0
	}
	if got, want := summarize(xs), (summary{P05: 5, P25: 25, Median: 50, P75: 75, P95: 95}); got != want {
		t.Errorf("summarize(0..100) = %+v, want %+v", got, want)
	}
	if e := summarize(nil); !math.IsNaN(e.Median) || !math.IsNaN(e.P95) {
		t.Errorf("summarize(nil) = %+v, want NaN quantiles", e)
	}
}

func TestMedianPair(t *testing.T) {
	for _, tc := range []struct {
		name         string
		raw, wrapped []float64
		want         int
	}{
		// Ratios 2, 0.5, 1: the median is pair 2, although the medians of
		// each side (raw 2, wrapped 2) are of other pairs.
		{"odd", []float64{1, 4, 2}, []float64{2, 2, 2}, 2},
		// Ratios 1, 3, 2, 4: the lower of the middle two, 2.
		{"even", []float64{1, 1, 1, 1}, []float64{1, 3, 2, 4}, 2},
		{"zero raw left out", []float64{0, 1, 1}, []float64{9, 1, 3}, 1},
		{"none", nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := medianPair(tc.raw, tc.wrapped); got != tc.want {
				t.Errorf("medianPair(%v, %v) = %d, want %d", tc.raw, tc.wrapped, got, tc.want)
			}
		})
	}
}

// TestThroughputRow checks that the row's ratio is wrapped/raw, even where
// the rounds' medians of each side would say otherwise (raw 1043, wrapped
// 966 beside a ratio of 1.256 was once printed).
func TestThroughputRow(t *testing.T) {
	mbps := [][]float64{{1043, 500, 2000, 900, 1500}, {966, 700, 2600, 1200, 1400}}
	r := throughputRow("throughput", "tls", "read/1KiB", mbps, 1)
	if math.Abs(r.Ratio-r.Wrapped/r.Raw) > 1e-12 {
		t.Errorf("ratio %v, want wrapped/raw = %v/%v", r.Ratio, r.Wrapped, r.Raw)
	}
	if want := median(pairedRatios(mbps[1], mbps[0])); r.Ratio != want {
		t.Errorf("ratio %v, want the median of the rounds' ratios %v", r.Ratio, want)
	}
	if !(r.SpreadLo <= r.Ratio && r.Ratio <= r.SpreadHi) {
		t.Errorf("ratio %v outside the spread %v..%v", r.Ratio, r.SpreadLo, r.SpreadHi)
	}
}

func TestPairedRatios(t *testing.T) {
	got := pairedRatios([]float64{2, 3, 8, 9}, []float64{1, 0, 4})
	if want := []float64{2, 2}; !slices.Equal(got, want) {
		t.Errorf("pairedRatios = %v, want %v (zero denominators skipped, extra numerators ignored)", got, want)
	}
}

func TestHistogram(t *testing.T) {
	ts := []float64{-1, -0.5, 0, 0.05, 0.1, 0.25, 0.999, 1, 2}
	got := histogram(ts, -0.5, 1, 0.5)
	if want := []int{1, 4, 1}; !slices.Equal(got, want) {
		t.Errorf("histogram = %v, want %v", got, want)
	}
	if got := histogram(ts, 1, 0, 0.1); got != nil {
		t.Errorf("histogram with hi < lo = %v, want nil", got)
	}
}

func TestTimeline(t *testing.T) {
	dials := []float64{0.01, 0.02, 0.15, 0.31}
	fails := []float64{0.01, 0.02}
	downs := []float64{0.001, 0.002}
	ups := []float64{0.16, 0.32}
	tl := timeline(dials, fails, downs, ups, 2, -0.1, 0.4, 0.1)
	if len(tl) != 5 {
		t.Fatalf("timeline has %d buckets, want 5", len(tl))
	}
	var gotConn, gotDials []int
	for _, b := range tl {
		gotConn = append(gotConn, b.Connected)
		gotDials = append(gotDials, b.Dials)
	}
	if want := []int{2, 0, 1, 1, 2}; !slices.Equal(gotConn, want) {
		t.Errorf("connected = %v, want %v", gotConn, want)
	}
	if want := []int{0, 2, 1, 0, 1}; !slices.Equal(gotDials, want) {
		t.Errorf("dials = %v, want %v", gotDials, want)
	}
	if math.Abs(tl[1].Start-0) > 1e-9 {
		t.Errorf("bucket 1 starts at %v, want 0", tl[1].Start)
	}
}
