package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Colours of the charts.
var (
	colRaw    = color.RGBA{0x8a, 0x96, 0xa3, 0xff}
	colTether = color.RGBA{0x2b, 0x6c, 0xb0, 0xff}
	colPeer   = color.RGBA{0xc0, 0x56, 0x21, 0xff}
	colTarget = color.RGBA{0xc5, 0x30, 0x30, 0xff}
	colGrid   = color.RGBA{0xe2, 0xe8, 0xf0, 0xff}
)

// chartWidth is the width of every chart.
const chartWidth = 9 * vg.Inch

func init() {
	// Sans-serif text, as the rest of the docs.
	plot.DefaultFont.Variant = "Sans"
	plotter.DefaultFont.Variant = "Sans"
}

// svgFiles returns the charts this run has data for, by name.
func (b *bench) svgFiles() map[string]func(io.Writer) error {
	files := map[string]func(io.Writer) error{}
	if len(b.reconnects) > 0 {
		files["reconnect.svg"] = func(w io.Writer) error { return reconnectChart(w, b.reconnects) }
	}
	if b.storm != nil {
		files["storm.svg"] = func(w io.Writer) error { return stormChart(w, b.storm) }
	}
	var tp []row
	for _, r := range b.rows {
		if r.Part == "throughput" || r.Part == "peer" {
			tp = append(tp, r)
		}
	}
	if len(tp) > 0 {
		files["throughput.svg"] = func(w io.Writer) error { return throughputChart(w, tp) }
	}
	return files
}

// A chart is a plot and the notes written beside some of its points.
type chart struct {
	*plot.Plot
	notes plotter.XYLabels
}

// newChart returns a chart with a title and grid lines across the x axis.
func newChart(title string) *chart {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(8)
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	g := plotter.NewGrid()
	g.Vertical.Color = colGrid
	g.Horizontal.Width = 0
	p.Add(g)
	return &chart{Plot: p}
}

// note writes s right of (x, y).
func (c *chart) note(x, y float64, s string) {
	c.notes.XYs = append(c.notes.XYs, plotter.XY{X: x, Y: y})
	c.notes.Labels = append(c.notes.Labels, s)
}

// writeSVG draws charts one above the other, each height high, their axes
// aligned, and writes them to w as one SVG document.
func writeSVG(w io.Writer, height vg.Length, charts ...*chart) error {
	c := vgsvg.New(chartWidth, height*vg.Length(len(charts)))
	grid := make([][]*plot.Plot, len(charts))
	for i, ch := range charts {
		grid[i] = []*plot.Plot{ch.Plot}
		if len(ch.notes.XYs) == 0 {
			continue
		}
		l, err := plotter.NewLabels(ch.notes)
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].YAlign = draw.YCenter
			l.TextStyle[i].Font.Size = vg.Points(8)
		}
		l.Offset.X = vg.Points(5)
		ch.Add(l)
	}
	tiles := draw.Tiles{Rows: len(charts), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4),
		PadLeft: vg.Points(4), PadRight: vg.Points(12), PadY: vg.Points(8)}
	for i, tile := range plot.Align(grid, tiles, draw.New(c)) {
		charts[i].Draw(tile[0])
	}
	_, err := c.WriteTo(w)
	return err
}

// rows labels the y axis with names, the first at the top, one per unit; it
// returns the y of each name.
func (c *chart) rows(names []string) []float64 {
	ys := make([]float64, len(names))
	ticks := make(plot.ConstantTicks, len(names))
	for i, n := range names {
		ys[i] = float64(len(names) - 1 - i)
		ticks[i] = plot.Tick{Value: ys[i], Label: n}
	}
	c.Y.Tick.Marker = ticks
	c.Y.Min, c.Y.Max = -0.7, float64(len(names))-0.3
	c.Y.Tick.Length, c.Y.Tick.LineStyle.Width, c.Y.LineStyle.Width = 0, 0, 0
	return ys
}

// dashed is the dashes of a dashed line.
var dashed = []vg.Length{vg.Points(4), vg.Points(3)}

// line returns a line through xys.
func line(col color.Color, width vg.Length, dashes []vg.Length, xys ...plotter.XY) *plotter.Line {
	return &plotter.Line{XYs: xys, LineStyle: draw.LineStyle{Color: col, Width: width, Dashes: dashes}}
}

// dot returns a glyph of shape at (x, y), or, as a legend's thumbnail, alone.
func dot(col color.Color, shape draw.GlyphDrawer, x, y float64) *plotter.Scatter {
	return &plotter.Scatter{XYs: plotter.XYs{{X: x, Y: y}},
		GlyphStyle: draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: shape}}
}

// ticks marks about n round values from lo to hi, or, on a log scale, 1, 2
// and 5 times each power of ten (plot.LogTicks labels only the powers).
func ticks(lo, hi float64, n int, log bool) plot.ConstantTicks {
	var vs []float64
	if log {
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			for _, m := range []float64{1, 2, 5} {
				vs = append(vs, m*math.Pow(10, e))
			}
		}
	} else if finite(lo, hi) && hi > lo {
		raw := (hi - lo) / float64(n)
		p := math.Pow(10, math.Floor(math.Log10(raw)))
		step := 10 * p
		for _, m := range []float64{5, 2.5, 2, 1} {
			if m*p >= raw {
				step = m * p
			}
		}
		for t := math.Ceil(lo / step); t*step <= hi+step*1e-9; t++ {
			vs = append(vs, t*step)
		}
	}
	var out plot.ConstantTicks
	for _, v := range vs {
		if eps := (hi - lo) * 1e-9; v >= lo-eps && v <= hi+eps {
			out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%g", math.Round(v*1000)/1000)})
		}
	}
	return out
}

// finite reports whether every x is a finite number.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// reconnectChart draws, for each transport and case, the distribution of
// the reconnect cost of the raw re-dial and of the Tether as box plots on a
// log scale: the box from the 25th to the 75th percentile, the whiskers
// from the 5th to the 95th, a bar at the median (the table's median). A log
// scale places only positive samples; a reconnect takes time, so that drops
// none.
func reconnectChart(w io.Writer, samples []reconnectSample) error {
	type key struct{ tr, cas string }
	var keys []key
	var names []string
	data := map[key]map[string][]float64{}
	for _, s := range samples {
		k := key{s.Transport, s.Case}
		if data[k] == nil {
			data[k] = map[string][]float64{}
			keys, names = append(keys, k), append(names, k.tr+" "+k.cas)
		}
		if s.Micros > 0 {
			data[k][s.Via] = append(data[k][s.Via], s.Micros)
		}
	}
	c := newChart("Reconnect cost: from the loss to the first byte of the new connection\n" +
		"box 25-75th percentile, whiskers 5-95th, bar median")
	c.X.Label.Text = "microseconds (log scale)"
	ys := c.rows(names)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, k := range keys {
		for j, via := range []string{"raw", "tether"} {
			xs := data[k][via]
			if len(xs) == 0 {
				continue
			}
			s := summarize(xs)
			lo, hi = min(lo, s.P05), max(hi, s.P95)
			col, y := []color.Color{colRaw, colTether}[j], ys[i]+[]float64{0.18, -0.18}[j]
			bp, err := plotter.NewBoxPlot(vg.Points(9), y, plotter.Values(xs))
			if err != nil {
				return err
			}
			bp.Horizontal = true
			bp.Median, bp.Quartile1, bp.Quartile3 = s.Median, s.P25, s.P75
			bp.AdjLow, bp.AdjHigh, bp.Min, bp.Max, bp.Outside = s.P05, s.P95, s.P05, s.P95, nil
			bp.FillColor, bp.BoxStyle.Color = col, col
			bp.WhiskerStyle = draw.LineStyle{Color: col, Width: vg.Points(1)}
			bp.MedianStyle = draw.LineStyle{Color: color.White, Width: vg.Points(2)}
			c.Add(bp)
			if i == 0 {
				c.Legend.Add([]string{"raw re-dial", "Tether"}[j], dot(col, draw.BoxGlyph{}, 0, 0))
			}
			c.note(s.P95, y, fmt.Sprintf("%.0f us", s.Median))
		}
	}
	if !(lo > 0) || !finite(lo, hi) {
		lo, hi = 1, 10
	}
	c.X.Scale = plot.LogScale{}
	c.X.Min, c.X.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	c.X.Tick.Marker = ticks(c.X.Min, c.X.Max, 0, true)
	c.Legend.Top = true
	return writeSVG(w, 1.1*vg.Inch+vg.Length(len(keys))*0.55*vg.Inch, c)
}

// throughputChart draws the throughput ratio (wrapped / raw) of each row,
// with the interquartile range of its rounds' ratios, against the 0.95
// target.
func throughputChart(w io.Writer, rows []row) error {
	c := newChart("Throughput through the wrapper / raw connection, same run (calls interleaved in batches)\n" +
		"dot: the median round's ratio; bar: the interquartile range of the rounds' ratios; dashed: the 0.95 target")
	c.X.Label.Text = "wrapped / raw"
	var names []string
	for _, r := range rows {
		names = append(names, r.Part+" "+r.Transport+" "+r.Case)
	}
	ys := c.rows(names)
	lo, hi := 0.9, 1.05
	for i, r := range rows {
		col := colTether
		if strings.HasPrefix(r.Case, "gokit/") {
			col = colPeer
		}
		at := r.Ratio
		if finite(r.SpreadLo, r.SpreadHi) {
			lo, hi, at = min(lo, r.SpreadLo), max(hi, r.SpreadHi), max(at, r.SpreadHi)
			c.Add(line(col, vg.Points(2.5), nil, plotter.XY{X: r.SpreadLo, Y: ys[i]}, plotter.XY{X: r.SpreadHi, Y: ys[i]}))
		}
		if finite(r.Ratio) {
			lo, hi = min(lo, r.Ratio), max(hi, r.Ratio)
			c.Add(dot(col, draw.CircleGlyph{}, r.Ratio, ys[i]))
			c.note(at, ys[i], fmtFloat(r.Ratio, 3))
		}
	}
	c.X.Min, c.X.Max = math.Floor(lo*20)/20, math.Ceil(hi*20)/20
	c.X.Tick.Marker = ticks(c.X.Min, c.X.Max, 8, false)
	c.Add(line(color.Black, vg.Points(1), nil, plotter.XY{X: 1, Y: c.Y.Min}, plotter.XY{X: 1, Y: c.Y.Max}),
		line(colTarget, vg.Points(1), dashed, plotter.XY{X: 0.95, Y: c.Y.Min}, plotter.XY{X: 0.95, Y: c.Y.Max}))
	return writeSVG(w, 1.2*vg.Inch+vg.Length(len(rows))*0.26*vg.Inch, c)
}

// stormChart draws the storm in two panels over the same time axis: the
// Tethers connected, and the dials per second in each bucket, with the
// server's kill and restart marked in both. (gonum/plot draws no second y
// axis, which would let one panel show both; two aligned panels read as
// well.)
func stormChart(w io.Writer, s *stormResult) error {
	sub := "not all back"
	if finite(s.AllBack) {
		sub = fmt.Sprintf("all back at %.2f s (%.2f s after the restart); %d dials, %d refused",
			s.AllBack, s.AllBack-s.Restart, s.Dials, s.Fails)
	}
	conn := newChart(fmt.Sprintf("Storm: %d Tethers (default policy), TCP server killed at 0 s, restarted at %.2f s\n%s",
		s.N, s.Restart, sub))
	conn.Y.Label.Text = "Tethers connected"
	conn.Y.Min, conn.Y.Max = 0, float64(max(s.N, 1))
	dials := newChart("")
	dials.Y.Label.Text = "dials per second"
	dials.X.Label.Text = "seconds since the server was killed"
	dials.Y.Min = 0
	if len(s.Timeline) == 0 {
		return writeSVG(w, 2.4*vg.Inch, conn, dials)
	}
	bw := stormBucket.Seconds()
	up := line(colPeer, vg.Points(1.5), nil)
	bars := &plotter.Histogram{Width: bw, FillColor: colTether, LineStyle: draw.LineStyle{Color: color.White, Width: vg.Points(0.5)}}
	for _, bk := range s.Timeline {
		up.XYs = append(up.XYs, plotter.XY{X: bk.Start + bw, Y: float64(bk.Connected)})
		bars.Bins = append(bars.Bins, plotter.HistogramBin{Min: bk.Start, Max: bk.Start + bw, Weight: float64(bk.Dials) / bw})
	}
	conn.Add(up)
	dials.Add(bars)
	for _, c := range []*chart{conn, dials} {
		c.X.Min, c.X.Max = s.Timeline[0].Start, s.Timeline[len(s.Timeline)-1].Start+bw
		c.X.Tick.Marker = ticks(c.X.Min, c.X.Max, 8, false)
		for _, x := range []float64{0, s.Restart} {
			c.Add(line(colTarget, vg.Points(1), dashed, plotter.XY{X: x, Y: 0}, plotter.XY{X: x, Y: c.Y.Max}))
		}
	}
	conn.note(0, conn.Y.Max*0.9, "killed")
	conn.note(s.Restart, conn.Y.Max*0.9, "restarted")
	return writeSVG(w, 2.4*vg.Inch, conn, dials)
}
