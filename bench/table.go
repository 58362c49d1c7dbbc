package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// formatVersion names the layout of the table; it changes only when a column
// is added, removed or changes meaning.
const formatVersion = "tether-bench v1"

// columns are the fields of every row of the table, in order.
var columns = []string{"part", "transport", "case", "unit", "raw", "wrapped", "ratio", "delta", "spread", "target", "met"}

// A row is one measurement: a wrapped connection (a Tether, or a peer
// library for part "peer") against the raw connection, in the same run.
type row struct {
	Part      string // throughput, allocs, reconnect, idle, storm, peer
	Transport string // tcp, unix, tls, quic, mem
	Case      string // what was measured, e.g. "write/1KiB"
	Unit      string // the unit of Raw, Wrapped and Delta

	Raw     float64 // the raw connection; NaN when there is none
	Wrapped float64 // the Tether (or the peer); NaN when not measured
	// Ratio is Wrapped/Raw where the two were measured in alternated pairs
	// (throughput, reconnect); NaN elsewhere.
	Ratio float64
	// Spread is the interquartile range of the ratios of the alternated
	// pairs: how much a single pair may say otherwise; NaN when not
	// applicable.
	SpreadLo, SpreadHi float64

	Target target
	// Unjudged says that the run was too short to judge the target: a
	// timing figure of quick mode, whose few short runs cannot tell a miss
	// from noise.
	Unjudged bool
}

// newRow returns a row of raw against wrapped, without a ratio.
func newRow(part, transport, cas, unit string, raw, wrapped float64) row {
	nan := math.NaN()
	return row{Part: part, Transport: transport, Case: cas, Unit: unit, Raw: raw, Wrapped: wrapped,
		Ratio: nan, SpreadLo: nan, SpreadHi: nan}
}

// compared returns a row of raw against wrapped, measured in alternated
// pairs: the ratio is wrapped/raw, the spread the interquartile range of
// the pairs' ratios.
func compared(part, transport, cas, unit string, raw, wrapped float64, ratios []float64) row {
	return row{Part: part, Transport: transport, Case: cas, Unit: unit, Raw: raw, Wrapped: wrapped,
		Ratio: wrapped / raw, SpreadLo: quantile(ratios, 0.25), SpreadHi: quantile(ratios, 0.75)}
}

// Delta is Wrapped minus Raw, or NaN when either is missing.
func (r row) Delta() float64 { return r.Wrapped - r.Raw }

// A target is what a row must show: a ratio at least Limit, or a delta at
// most Limit.
type target struct {
	Kind  targetKind
	Limit float64
}

type targetKind int

const (
	noTarget targetKind = iota
	minRatio            // ratio >= Limit
	maxDelta            // delta <= Limit
)

// String returns the target as the table shows it: "ratio>=0.95",
// "delta<=25", or "-".
func (t target) String() string {
	switch t.Kind {
	case minRatio:
		return "ratio>=" + strconv.FormatFloat(t.Limit, 'f', -1, 64)
	case maxDelta:
		return "delta<=" + strconv.FormatFloat(t.Limit, 'f', -1, 64)
	}
	return "-"
}

// Met says whether r meets its target: "yes", "no", "-" when it has none
// (or the value it needs was not measured), or "unjudged" when the run could
// not resolve it (see Unjudged).
func (r row) Met() string {
	if r.Unjudged && r.Target.Kind != noTarget {
		return "unjudged"
	}
	var ok bool
	switch r.Target.Kind {
	case minRatio:
		if math.IsNaN(r.Ratio) {
			return "-"
		}
		ok = r.Ratio >= r.Target.Limit
	case maxDelta:
		d := r.Delta()
		if math.IsNaN(d) {
			return "-"
		}
		// Compare at the precision shown, so that the table never says
		// "+0.00 ... no".
		ok = roundTo(d, decimals(r.Unit)) <= r.Target.Limit
	default:
		return "-"
	}
	if ok {
		return "yes"
	}
	return "no"
}

// decimals is the number of decimals shown for a value in unit.
func decimals(unit string) int {
	switch unit {
	case "MB/s", "us":
		return 1
	case "allocs/op", "MiB", "dials/tether":
		return 2
	case "goroutines/conn", "s":
		return 3
	}
	return 0 // B/conn, dials/s, count
}

func roundTo(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

// fields returns the row's cells, as the table and the CSV show them.
func (r row) fields() []string {
	d := decimals(r.Unit)
	spread := "-"
	if !math.IsNaN(r.SpreadLo) && !math.IsNaN(r.SpreadHi) {
		spread = fmtFloat(r.SpreadLo, 3) + ".." + fmtFloat(r.SpreadHi, 3)
	}
	delta := "-"
	if dv := r.Delta(); !math.IsNaN(dv) {
		delta = fmtFloat(roundTo(dv, d), d)
		if !strings.HasPrefix(delta, "-") {
			delta = "+" + delta
		}
	}
	return []string{
		orDash(r.Part), orDash(r.Transport), orDash(r.Case), orDash(r.Unit),
		fmtFloat(r.Raw, d), fmtFloat(r.Wrapped, d), fmtFloat(r.Ratio, 3),
		delta, spread, r.Target.String(), r.Met(),
	}
}

// fmtFloat formats x with d decimals; NaN is "-", and a negative zero is
// shown as zero.
func fmtFloat(x float64, d int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.HasPrefix(s, "-") && strings.Trim(s, "-0.") == "" {
		s = s[1:]
	}
	return s
}

func orDash(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return "-"
	}
	return s
}

// header holds the lines that precede the table: the format, the machine,
// the settings.
type header struct {
	Pairs [][2]string // key=value, in order
}

// writeTable writes the table in its text format:
//
//	# tether-bench v1
//	# key=value key="value with spaces" ...
//	part transport case unit raw wrapped ratio delta spread target met
//	throughput tcp write/1KiB MB/s 812.3 800.1 0.985 -12.2 0.970..1.003 ratio>=0.95 yes
//
// Lines that start with "#" are comments. Fields are separated by spaces
// (padded so that columns line up) and never contain one; "-" stands for
// "not applicable". Columns are only ever appended, and a new layout
// changes formatVersion.
func writeTable(w io.Writer, h header, rows []row) error {
	var b strings.Builder
	b.WriteString("# " + formatVersion + "\n")
	if len(h.Pairs) > 0 {
		b.WriteString("#")
		for _, kv := range h.Pairs {
			v := kv[1]
			if v == "" || strings.ContainsAny(v, " \t\"") {
				v = strconv.Quote(v)
			}
			b.WriteString(" " + kv[0] + "=" + v)
		}
		b.WriteString("\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.fields(), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads the last cell of no line, but trailing spaces of
	// shorter lines would be noise in a diff.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

// writeTableCSV writes the table as CSV, with the same columns and cells.
func writeTableCSV(w io.Writer, rows []row) error {
	cw := csv.NewWriter(w)
	cw.Write(columns)
	for _, r := range rows {
		cw.Write(r.fields())
	}
	cw.Flush()
	return cw.Error()
}
