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
	s := summarize(xs)
	want := summary{N: 101, Min: 0, Max: 100, P05: 5, P10: 10, P25: 25, Median: 50, P75: 75, P90: 90, P95: 95, Mean: 50}
	if s != want {
		t.Errorf("summarize(0..100) = %+v, want %+v", s, want)
	}
	e := summarize(nil)
	if e.N != 0 || !math.IsNaN(e.Median) || !math.IsNaN(e.P95) {
		t.Errorf("summarize(nil) = %+v, want N 0 and NaN quantiles", e)
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
