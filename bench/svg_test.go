package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkSVG parses doc with encoding/xml and checks that it is one well-formed
// svg element whose coordinates are all finite numbers; it returns the
// number of elements of each name.
func checkSVG(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	depth, roots := 0, 0
	numeric := map[string]bool{"x": true, "y": true, "width": true, "height": true, "x1": true, "y1": true,
		"x2": true, "y2": true, "cx": true, "cy": true, "r": true, "stroke-width": true, "font-size": true}
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
				if tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root element %v, want svg in the SVG namespace", tok.Name)
				}
			}
			depth++
			counts[tok.Name.Local]++
			for _, a := range tok.Attr {
				if numeric[a.Name.Local] {
					v, err := strconv.ParseFloat(a.Value, 64)
					if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
						t.Errorf("<%s %s=%q>: not a finite number", tok.Name.Local, a.Name.Local, a.Value)
					}
				}
				if a.Name.Local == "points" {
					for _, p := range strings.Fields(a.Value) {
						for _, c := range strings.Split(p, ",") {
							if _, err := strconv.ParseFloat(c, 64); err != nil {
								t.Errorf("polyline point %q: %v", p, err)
							}
						}
					}
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		t.Errorf("%d root elements, depth %d at the end; want 1 and 0", roots, depth)
	}
	return counts
}

func render(t *testing.T, f func(io.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReconnectChart(t *testing.T) {
	var samples []reconnectSample
	for i := range 50 {
		for _, tc := range []struct{ tr, cas string }{{"tcp", "close"}, {"tls", "resumed"}, {"quic", "redial"}} {
			base := map[string]float64{"tcp": 80, "tls": 600, "quic": 900}[tc.tr]
			samples = append(samples,
				reconnectSample{Transport: tc.tr, Case: tc.cas, Via: "raw", Index: i, Micros: base + float64(i)},
				reconnectSample{Transport: tc.tr, Case: tc.cas, Via: "tether", Index: i, Micros: base + 5 + float64(i)})
		}
	}
	doc := render(t, func(w io.Writer) error { return reconnectChart(w, samples) })
	counts := checkSVG(t, doc)
	if counts["rect"] < 1+6 {
		t.Errorf("%d rects, want a box for each of 6 distributions", counts["rect"])
	}
	for _, label := range []string{"tcp close", "tls resumed", "quic redial"} {
		if !bytes.Contains(doc, []byte(label)) {
			t.Errorf("no label %q", label)
		}
	}
}

func TestReconnectChartDegenerate(t *testing.T) {
	for name, samples := range map[string][]reconnectSample{
		"none":       nil,
		"one sample": {{Transport: "tcp", Case: "close", Via: "raw", Micros: 100}},
		"zero":       {{Transport: "tcp", Case: "close", Via: "tether", Micros: 0}},
		"odd name":   {{Transport: "<tcp&>", Case: `"x"`, Via: "raw", Micros: 3}},
	} {
		t.Run(name, func(t *testing.T) {
			checkSVG(t, render(t, func(w io.Writer) error { return reconnectChart(w, samples) }))
		})
	}
}

func TestStormChart(t *testing.T) {
	tl := timeline([]float64{0.01, 0.05, 0.12, 1.1, 1.2}, []float64{0.01, 0.05}, []float64{0.001, 0.002},
		[]float64{1.1, 1.2}, 2, -0.5, 1.7, stormBucket.Seconds())
	s := &stormResult{N: 2, Down: time.Second, Restart: 1.0, AllBack: 1.2, Back: 2, Dials: 5, Fails: 2, Timeline: tl}
	counts := checkSVG(t, render(t, func(w io.Writer) error { return stormChart(w, s) }))
	if counts["polyline"] != 1 {
		t.Errorf("%d polylines, want 1 (the connected Tethers)", counts["polyline"])
	}
	for name, s := range map[string]*stormResult{
		"empty":        {},
		"not all back": {N: 3, AllBack: math.NaN(), Timeline: tl},
		"no dials":     {N: 1, AllBack: 0.5, Timeline: []stormBucketRow{{Start: 0, Connected: 1}}},
	} {
		t.Run(name, func(t *testing.T) {
			checkSVG(t, render(t, func(w io.Writer) error { return stormChart(w, s) }))
		})
	}
}

func TestThroughputChart(t *testing.T) {
	counts := checkSVG(t, render(t, func(w io.Writer) error { return throughputChart(w, tableRows[:2]) }))
	if counts["circle"] != 2 {
		t.Errorf("%d circles, want one per row", counts["circle"])
	}
	rows := []row{{Part: "peer", Case: "gokit/write/1KiB", Ratio: 0.3, SpreadLo: nan, SpreadHi: nan}, {Ratio: nan, SpreadLo: nan, SpreadHi: nan}}
	checkSVG(t, render(t, func(w io.Writer) error { return throughputChart(w, rows) }))
}

func TestTicks(t *testing.T) {
	if got, want := logTicks(10, 1000), []float64{10, 20, 50, 100, 200, 500, 1000}; !floatsEqual(got, want) {
		t.Errorf("logTicks(10, 1000) = %v, want %v", got, want)
	}
	if got := logTicks(0, 10); got != nil {
		t.Errorf("logTicks(0, 10) = %v, want nil", got)
	}
	if got, want := linTicks(0, 1000, 5), []float64{0, 200, 400, 600, 800, 1000}; !floatsEqual(got, want) {
		t.Errorf("linTicks(0, 1000, 5) = %v, want %v", got, want)
	}
	if got, want := linTicks(-0.5, 1.7, 8), []float64{-0.5, 0, 0.5, 1, 1.5}; !floatsEqual(got, want) {
		t.Errorf("linTicks(-0.5, 1.7, 8) = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		x    float64
		want string
	}{{1000, "1k"}, {2e6, "2M"}, {0.25, "0.25"}, {1500, "1500"}} {
		if got := tickLabel(tc.x); got != tc.want {
			t.Errorf("tickLabel(%v) = %q, want %q", tc.x, got, tc.want)
		}
	}
}

func floatsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}
