package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Colours of the charts.
const (
	colRaw    = "#8a96a3"
	colTether = "#2b6cb0"
	colPeer   = "#c05621"
	colGrid   = "#e2e8f0"
	colText   = "#1a202c"
	colTarget = "#c53030"
)

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

// canvas builds an SVG document. Elements with a coordinate that is not a
// finite number are left out, so the document is always well formed.
type canvas struct {
	b    strings.Builder
	w, h float64
}

func newCanvas(w, h float64) *canvas {
	c := &canvas{w: w, h: h}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="12">`+"\n",
		num(w), num(h), num(w), num(h))
	fmt.Fprintf(&c.b, `<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", num(w), num(h))
	return c
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// num formats a coordinate.
func num(x float64) string { return ftoa(math.Round(x*10)/10, 1) }

func (c *canvas) rect(x, y, w, h float64, fill string) {
	if !finite(x, y, w, h) || w < 0 || h < 0 {
		return
	}
	fmt.Fprintf(&c.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`+"\n", num(x), num(y), num(w), num(h), fill)
}

func (c *canvas) line(x1, y1, x2, y2 float64, stroke string, width float64, dash bool) {
	if !finite(x1, y1, x2, y2) {
		return
	}
	d := ""
	if dash {
		d = ` stroke-dasharray="4 3"`
	}
	fmt.Fprintf(&c.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>`+"\n",
		num(x1), num(y1), num(x2), num(y2), stroke, num(width), d)
}

func (c *canvas) polyline(xs, ys []float64, stroke string, width float64) {
	var pts []string
	for i := range min(len(xs), len(ys)) {
		if finite(xs[i], ys[i]) {
			pts = append(pts, num(xs[i])+","+num(ys[i]))
		}
	}
	if len(pts) < 2 {
		return
	}
	fmt.Fprintf(&c.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%s"/>`+"\n",
		strings.Join(pts, " "), stroke, num(width))
}

// text writes s at (x, y); anchor is start, middle or end.
func (c *canvas) text(x, y float64, anchor string, size float64, fill, s string) {
	if !finite(x, y) {
		return
	}
	fmt.Fprintf(&c.b, `<text x="%s" y="%s" text-anchor="%s" font-size="%s" fill="%s">`, num(x), num(y), anchor, num(size), fill)
	xml.EscapeText(&c.b, []byte(s))
	c.b.WriteString("</text>\n")
}

// vtext writes s centred on (x, y), rotated to read upwards.
func (c *canvas) vtext(x, y, size float64, fill, s string) {
	if !finite(x, y) {
		return
	}
	fmt.Fprintf(&c.b, `<text x="%s" y="%s" text-anchor="middle" font-size="%s" fill="%s" transform="rotate(-90 %s %s)">`,
		num(x), num(y), num(size), fill, num(x), num(y))
	xml.EscapeText(&c.b, []byte(s))
	c.b.WriteString("</text>\n")
}

func (c *canvas) writeTo(w io.Writer) error {
	c.b.WriteString("</svg>\n")
	_, err := io.WriteString(w, c.b.String())
	return err
}

// logTicks returns the 1-2-5 ticks from lo to hi (both > 0).
func logTicks(lo, hi float64) []float64 {
	if !(lo > 0) || !(hi > lo) || !finite(lo, hi) {
		return nil
	}
	var out []float64
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			t := m * math.Pow(10, e)
			if t >= lo*0.999 && t <= hi*1.001 {
				out = append(out, t)
			}
		}
	}
	return out
}

// linTicks returns about n round ticks from lo to hi.
func linTicks(lo, hi float64, n int) []float64 {
	if !finite(lo, hi) || hi <= lo || n < 1 {
		return nil
	}
	raw := (hi - lo) / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		out = append(out, math.Round(t/step)*step)
	}
	return out
}

// tickLabel formats a tick value compactly.
func tickLabel(x float64) string {
	switch {
	case x >= 1e6 && math.Mod(x, 1e6) == 0:
		return fmt.Sprintf("%gM", x/1e6)
	case x >= 1e3 && math.Mod(x, 1e3) == 0:
		return fmt.Sprintf("%gk", x/1e3)
	}
	return fmt.Sprintf("%g", math.Round(x*1000)/1000)
}

// reconnectChart draws, for each transport and case, the distribution of
// the reconnect cost of the raw re-dial and of the Tether as box plots on a
// log scale: the box from the 25th to the 75th percentile, the whiskers
// from the 5th to the 95th, a bar at the median.
func reconnectChart(w io.Writer, samples []reconnectSample) error {
	type key struct{ tr, cas string }
	var keys []key
	data := map[key]map[string][]float64{}
	for _, s := range samples {
		k := key{s.Transport, s.Case}
		if data[k] == nil {
			data[k] = map[string][]float64{}
			keys = append(keys, k)
		}
		data[k][s.Via] = append(data[k][s.Via], s.Micros)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	sums := map[key]map[string]summary{}
	for _, k := range keys {
		sums[k] = map[string]summary{}
		for via, xs := range data[k] {
			s := summarize(xs)
			sums[k][via] = s
			lo, hi = min(lo, s.P05), max(hi, s.P95)
		}
	}
	if !(lo > 0) || !finite(lo, hi) {
		lo, hi = 1, 10
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))

	const (
		left, right, top, rowH, gap = 180.0, 90.0, 56.0, 16.0, 14.0
		width                       = 860.0
	)
	vias := []string{"raw", "tether"}
	height := top + float64(len(keys))*(2*rowH+gap) + 50
	c := newCanvas(width, height)
	plotW := width - left - right
	x := func(v float64) float64 {
		return left + (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*plotW
	}
	c.text(width/2, 22, "middle", 15, colText, "Reconnect cost: from the loss to the first byte of the new connection")
	c.text(width/2, 40, "middle", 12, colText, "microseconds, log scale; box 25-75th percentile, whiskers 5-95th, bar median")
	bottom := height - 40
	for _, t := range logTicks(lo, hi) {
		c.line(x(t), top-6, x(t), bottom, colGrid, 1, false)
		c.text(x(t), bottom+16, "middle", 11, colText, tickLabel(t))
	}
	c.text(left+plotW/2, bottom+32, "middle", 11, colText, "us")
	y := top
	for _, k := range keys {
		c.text(12, y+rowH+4, "start", 12, colText, k.tr+" "+k.cas)
		for _, via := range vias {
			s, ok := sums[k][via]
			if !ok {
				y += rowH
				continue
			}
			col := colRaw
			if via == "tether" {
				col = colTether
			}
			mid := y + rowH/2
			c.text(left-8, mid+4, "end", 10, col, via)
			c.line(x(s.P05), mid, x(s.P95), mid, col, 1.2, false)
			c.line(x(s.P05), mid-4, x(s.P05), mid+4, col, 1.2, false)
			c.line(x(s.P95), mid-4, x(s.P95), mid+4, col, 1.2, false)
			c.rect(x(s.P25), y+2, x(s.P75)-x(s.P25), rowH-4, col)
			c.line(x(s.Median), y+1, x(s.Median), y+rowH-1, "#ffffff", 2, false)
			c.text(x(s.P95)+6, mid+4, "start", 10, colText, fmt.Sprintf("%.0f us", s.Median))
			y += rowH
		}
		y += gap
	}
	return c.writeTo(w)
}

// stormChart draws the storm: dials per second in each bucket (bars), and
// the Tethers connected (a line, right axis), with the server's kill and
// restart marked.
func stormChart(w io.Writer, s *stormResult) error {
	const (
		left, right, top, bottom = 70.0, 70.0, 60.0, 50.0
		width, height            = 860.0, 380.0
	)
	c := newCanvas(width, height)
	plotW, plotH := width-left-right, height-top-bottom
	if len(s.Timeline) == 0 {
		c.text(width/2, height/2, "middle", 14, colText, "no storm data")
		return c.writeTo(w)
	}
	bw := stormBucket.Seconds()
	t0 := s.Timeline[0].Start
	t1 := s.Timeline[len(s.Timeline)-1].Start + bw
	maxRate := 1.0
	for _, bk := range s.Timeline {
		maxRate = max(maxRate, float64(bk.Dials)/bw)
	}
	rateTicks := linTicks(0, maxRate, 5)
	if n := len(rateTicks); n > 0 && rateTicks[n-1] < maxRate {
		rateTicks = append(rateTicks, rateTicks[n-1]+(rateTicks[n-1]-rateTicks[max(n-2, 0)]))
	}
	yMax := maxRate
	if n := len(rateTicks); n > 0 {
		yMax = rateTicks[n-1]
	}
	x := func(t float64) float64 { return left + (t-t0)/(t1-t0)*plotW }
	yRate := func(r float64) float64 { return top + plotH - r/yMax*plotH }
	yConn := func(n float64) float64 { return top + plotH - n/float64(max(s.N, 1))*plotH }

	title := fmt.Sprintf("Storm: %d Tethers (default policy), TCP server killed at 0 s, restarted at %.2f s", s.N, s.Restart)
	c.text(width/2, 22, "middle", 15, colText, title)
	sub := "not all back"
	if finite(s.AllBack) {
		sub = fmt.Sprintf("all back at %.2f s (%.2f s after the restart); %d dials, %d refused", s.AllBack, s.AllBack-s.Restart, s.Dials, s.Fails)
	}
	c.text(width/2, 40, "middle", 12, colText, sub)
	for _, t := range rateTicks {
		c.line(left, yRate(t), left+plotW, yRate(t), colGrid, 1, false)
		c.text(left-6, yRate(t)+4, "end", 11, colTether, tickLabel(t))
	}
	for _, t := range linTicks(t0, t1, 8) {
		c.line(x(t), top+plotH, x(t), top+plotH+4, colText, 1, false)
		c.text(x(t), top+plotH+18, "middle", 11, colText, tickLabel(t))
	}
	for _, f := range []float64{0, 0.5, 1} {
		c.text(left+plotW+6, yConn(f*float64(s.N))+4, "start", 11, colPeer, tickLabel(math.Round(f*float64(s.N))))
	}
	for _, bk := range s.Timeline {
		r := float64(bk.Dials) / bw
		c.rect(x(bk.Start)+0.5, yRate(r), x(bk.Start+bw)-x(bk.Start)-1, yRate(0)-yRate(r), colTether)
	}
	xs := make([]float64, 0, len(s.Timeline))
	ys := make([]float64, 0, len(s.Timeline))
	for _, bk := range s.Timeline {
		xs = append(xs, x(bk.Start+bw))
		ys = append(ys, yConn(float64(bk.Connected)))
	}
	c.polyline(xs, ys, colPeer, 2)
	for _, m := range []struct {
		t     float64
		label string
	}{{0, "killed"}, {s.Restart, "restarted"}} {
		c.line(x(m.t), top, x(m.t), top+plotH, colTarget, 1, true)
		c.text(x(m.t)+4, top+12, "start", 11, colTarget, m.label)
	}
	c.line(left, top+plotH, left+plotW, top+plotH, colText, 1, false)
	c.text(left+plotW/2, height-12, "middle", 11, colText, "seconds since the server was killed")
	c.vtext(18, top+plotH/2, 11, colTether, "dials per second")
	c.vtext(width-12, top+plotH/2, 11, colPeer, "Tethers connected")
	return c.writeTo(w)
}

// throughputChart draws the throughput ratio (wrapped / raw) of each row,
// with its spread, against the 0.95 target.
func throughputChart(w io.Writer, rows []row) error {
	const (
		left, right, top, rowH = 230.0, 60.0, 56.0, 20.0
		width                  = 860.0
	)
	lo, hi := 0.9, 1.05
	for _, r := range rows {
		if finite(r.SpreadLo, r.SpreadHi) {
			lo, hi = min(lo, r.SpreadLo), max(hi, r.SpreadHi)
		}
		if finite(r.Ratio) {
			lo, hi = min(lo, r.Ratio), max(hi, r.Ratio)
		}
	}
	lo = math.Floor(lo*20) / 20
	hi = math.Ceil(hi*20) / 20
	height := top + float64(len(rows))*rowH + 50
	c := newCanvas(width, height)
	plotW := width - left - right
	x := func(v float64) float64 { return left + (v-lo)/(hi-lo)*plotW }
	c.text(width/2, 22, "middle", 15, colText, "Throughput through the wrapper / raw connection, same run")
	c.text(width/2, 40, "middle", 12, colText, "median of the ratios of the rounds (calls interleaved in batches); bar: interquartile range; dashed: the 0.95 target")
	bottom := height - 40
	for _, t := range linTicks(lo, hi, 6) {
		c.line(x(t), top-6, x(t), bottom, colGrid, 1, false)
		c.text(x(t), bottom+16, "middle", 11, colText, tickLabel(t))
	}
	c.line(x(1), top-6, x(1), bottom, colText, 1, false)
	c.line(x(0.95), top-6, x(0.95), bottom, colTarget, 1, true)
	y := top
	for _, r := range rows {
		col := colTether
		if strings.HasPrefix(r.Case, "gokit/") {
			col = colPeer
		}
		mid := y + rowH/2
		c.text(left-10, mid+4, "end", 12, colText, r.Part+" "+r.Transport+" "+r.Case)
		c.line(x(r.SpreadLo), mid, x(r.SpreadHi), mid, col, 3, false)
		if finite(r.Ratio) {
			fmt.Fprintf(&c.b, `<circle cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", num(x(r.Ratio)), num(mid), col)
		}
		c.text(x(hi)+6, mid+4, "start", 10, colText, fmtFloat(r.Ratio, 3))
		y += rowH
	}
	return c.writeTo(w)
}
