package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkSVG parses doc with encoding/xml, checks that it is one well-formed
// svg element, and returns its text.
func checkSVG(t *testing.T, doc []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	depth, roots := 0, 0
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if tok.Name.Local != "svg" {
					t.Errorf("root element %v, want svg", tok.Name)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if roots != 1 || depth != 0 {
		t.Errorf("%d root elements, depth %d at the end; want 1 and 0", roots, depth)
	}
	return text.String()
}

// drawn draws a chart and checks it, and that it shows each of labels.
func drawn(t *testing.T, draw func(io.Writer) error, labels ...string) {
	t.Helper()
	var buf bytes.Buffer
	if err := draw(&buf); err != nil {
		t.Fatal(err)
	}
	text := checkSVG(t, buf.Bytes())
	for _, l := range labels {
		if !strings.Contains(text, l) {
			t.Errorf("no label %q in\n%s", l, text)
		}
	}
}

func TestReconnectChart(t *testing.T) {
	var samples []reconnectSample
	for i := range 101 {
		for _, tc := range []struct{ tr, cas string }{{"tcp", "close"}, {"tls", "resumed"}, {"quic", "redial"}} {
			base := map[string]float64{"tcp": 80, "tls": 600, "quic": 900}[tc.tr]
			samples = append(samples,
				reconnectSample{Transport: tc.tr, Case: tc.cas, Via: "raw", Index: i, Micros: base + float64(i)},
				reconnectSample{Transport: tc.tr, Case: tc.cas, Via: "tether", Index: i, Micros: base + 5 + float64(i)})
		}
	}
	// The medians: 80+50 and 85+50 over tcp.
	drawn(t, func(w io.Writer) error { return reconnectChart(w, samples) },
		"tcp close", "tls resumed", "quic redial", "130 us", "135 us", "raw re-dial", "Tether", "100", "1000")
	for name, samples := range map[string][]reconnectSample{
		"none":       nil,
		"one sample": {{Transport: "tcp", Case: "close", Via: "raw", Micros: 100}},
		"zero":       {{Transport: "tcp", Case: "close", Via: "tether", Micros: 0}},
		"odd name":   {{Transport: "<tcp&>", Case: `"x"`, Via: "raw", Micros: 3}},
	} {
		t.Run(name, func(t *testing.T) {
			drawn(t, func(w io.Writer) error { return reconnectChart(w, samples) })
		})
	}
}

func TestStormChart(t *testing.T) {
	tl := timeline([]float64{0.01, 0.05, 0.12, 1.1, 1.2}, []float64{0.01, 0.05}, []float64{0.001, 0.002},
		[]float64{1.1, 1.2}, 2, -0.5, 1.7, stormBucket.Seconds())
	s := &stormResult{N: 2, Down: time.Second, Restart: 1.0, AllBack: 1.2, Back: 2, Dials: 5, Fails: 2, Timeline: tl}
	drawn(t, func(w io.Writer) error { return stormChart(w, s) },
		"Storm: 2 Tethers", "all back at 1.20 s (0.20 s after the restart); 5 dials, 2 refused",
		"killed", "restarted", "Tethers connected", "dials per second")
	for name, s := range map[string]*stormResult{
		"empty":        {},
		"not all back": {N: 3, AllBack: math.NaN(), Timeline: tl},
		"no dials":     {N: 1, AllBack: 0.5, Timeline: []stormBucketRow{{Start: 0, Connected: 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			drawn(t, func(w io.Writer) error { return stormChart(w, s) })
		})
	}
}

func TestThroughputChart(t *testing.T) {
	drawn(t, func(w io.Writer) error { return throughputChart(w, tableRows[:2]) },
		"throughput tcp write/1KiB", "throughput quic read/32KiB", "0.985", "0.900")
	rows := []row{{Part: "peer", Case: "gokit/write/1KiB", Ratio: 0.3, SpreadLo: nan, SpreadHi: nan}, {Ratio: nan, SpreadLo: nan, SpreadHi: nan}}
	drawn(t, func(w io.Writer) error { return throughputChart(w, rows) }, "gokit/write/1KiB", "0.300")
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		log    bool
		want   []float64
	}{
		{10, 1000, 0, true, []float64{10, 20, 50, 100, 200, 500, 1000}},
		{0, 1000, 5, false, []float64{0, 200, 400, 600, 800, 1000}},
		{-0.5, 1.7, 8, false, []float64{-0.5, 0, 0.5, 1, 1.5}},
		{0.7, 1.1, 8, false, []float64{0.7, 0.8, 0.9, 1, 1.1}},
		{0.9, 1.05, 8, false, []float64{0.9, 0.92, 0.94, 0.96, 0.98, 1, 1.02, 1.04}},
		{1, 1, 8, false, nil},
	} {
		var got []float64
		for _, tk := range ticks(tc.lo, tc.hi, tc.n, tc.log) {
			got = append(got, tk.Value)
		}
		if !slices.EqualFunc(got, tc.want, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
			t.Errorf("ticks(%v, %v, %d, %v) = %v, want %v", tc.lo, tc.hi, tc.n, tc.log, got, tc.want)
		}
	}
}
