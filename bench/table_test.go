package main

import (
	"bytes"
	"encoding/csv"
	"math"
	"slices"
	"strings"
	"testing"
)

var nan = math.NaN()

// tableRows cover each kind of row: a ratio target met and missed, a delta
// target, a row without a target, missing values, a negative zero.
var tableRows = []row{
	{Part: "throughput", Transport: "tcp", Case: "write/1KiB", Unit: "MB/s", Raw: 812.34, Wrapped: 800.06,
		Ratio: 0.98512, SpreadLo: 0.9701, SpreadHi: 1.0032, Target: target{Kind: minRatio, Limit: 0.95}},
	{Part: "throughput", Transport: "quic", Case: "read/32KiB", Unit: "MB/s", Raw: 300, Wrapped: 270,
		Ratio: 0.9, SpreadLo: 0.85, SpreadHi: 0.93, Target: target{Kind: minRatio, Limit: 0.95}},
	{Part: "allocs", Transport: "tcp", Case: "write/1KiB/own", Unit: "allocs/op", Raw: 0, Wrapped: 0.001,
		Ratio: nan, SpreadLo: nan, SpreadHi: nan, Target: target{Kind: maxDelta, Limit: 0}},
	{Part: "reconnect", Transport: "tcp", Case: "close", Unit: "us", Raw: 100, Wrapped: 130.04,
		Ratio: 1.3, SpreadLo: 1.1, SpreadHi: 1.5, Target: target{Kind: maxDelta, Limit: 25}},
	{Part: "idle", Transport: "tcp", Case: "goroutines", Unit: "goroutines/conn", Raw: math.Copysign(0, -1), Wrapped: 0,
		Ratio: nan, SpreadLo: nan, SpreadHi: nan, Target: target{Kind: maxDelta, Limit: 0}},
	{Part: "storm", Transport: "tcp", Case: "all-back-after-restart", Unit: "s", Raw: nan, Wrapped: 1.23456,
		Ratio: nan, SpreadLo: nan, SpreadHi: nan},
}

const tableGolden = `# tether-bench v1
# go=go1.26.0 cpu="AMD EPYC 7B13" mode=quick empty=""
part        transport  case                    unit             raw    wrapped  ratio  delta   spread        target       met
throughput  tcp        write/1KiB              MB/s             812.3  800.1    0.985  -12.3   0.970..1.003  ratio>=0.95  yes
throughput  quic       read/32KiB              MB/s             300.0  270.0    0.900  -30.0   0.850..0.930  ratio>=0.95  no
allocs      tcp        write/1KiB/own          allocs/op        0.00   0.00     -      +0.00   -             delta<=0     yes
reconnect   tcp        close                   us               100.0  130.0    1.300  +30.0   1.100..1.500  delta<=25    no
idle        tcp        goroutines              goroutines/conn  0.000  0.000    -      +0.000  -             delta<=0     yes
storm       tcp        all-back-after-restart  s                -      1.235    -      -       -             -            -
`

func TestWriteTable(t *testing.T) {
	h := header{Pairs: [][2]string{{"go", "go1.26.0"}, {"cpu", "AMD EPYC 7B13"}, {"mode", "quick"}, {"empty", ""}}}
	var buf bytes.Buffer
	if err := writeTable(&buf, h, tableRows); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != tableGolden {
		t.Errorf("writeTable =\n%s\nwant\n%s", got, tableGolden)
	}
	for i, line := range strings.Split(buf.String(), "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("line %d has trailing spaces: %q", i, line)
		}
	}
}

func TestMet(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    row
		want string
	}{
		{"ratio at the limit", row{Ratio: 0.95, Target: target{Kind: minRatio, Limit: 0.95}}, "yes"},
		{"ratio below", row{Ratio: 0.9499, Target: target{Kind: minRatio, Limit: 0.95}}, "no"},
		{"ratio missing", row{Ratio: nan, Target: target{Kind: minRatio, Limit: 0.95}}, "-"},
		{"delta within", row{Unit: "us", Raw: 100, Wrapped: 125, Target: target{Kind: maxDelta, Limit: 25}}, "yes"},
		{"delta over", row{Unit: "us", Raw: 100, Wrapped: 125.1, Target: target{Kind: maxDelta, Limit: 25}}, "no"},
		{"delta rounds to the limit", row{Unit: "allocs/op", Raw: 0, Wrapped: 0.004, Target: target{Kind: maxDelta, Limit: 0}}, "yes"},
		{"delta missing", row{Unit: "s", Raw: nan, Wrapped: 1, Target: target{Kind: maxDelta, Limit: 0}}, "-"},
		{"no target", row{Ratio: 0.1}, "-"},
		{"unjudged", row{Ratio: 0.5, Target: target{Kind: minRatio, Limit: 0.95}, Unjudged: true}, "unjudged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Met(); got != tc.want {
				t.Errorf("Met() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFmtFloat(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		d    int
		want string
	}{
		{1.25, 1, "1.2"}, {1.35, 1, "1.4"}, {-0.0001, 2, "0.00"}, {math.Copysign(0, -1), 0, "0"},
		{nan, 2, "-"}, {math.Inf(1), 2, "-"}, {-3.5, 1, "-3.5"},
	} {
		if got := fmtFloat(tc.x, tc.d); got != tc.want {
			t.Errorf("fmtFloat(%v, %d) = %q, want %q", tc.x, tc.d, got, tc.want)
		}
	}
}

func TestWriteTableCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := writeTableCSV(&buf, tableRows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], columns) {
		t.Errorf("CSV header = %q, want %q", recs[0], columns)
	}
	if len(recs) != len(tableRows)+1 {
		t.Fatalf("CSV has %d records, want %d", len(recs), len(tableRows)+1)
	}
	for i, r := range tableRows {
		if want := r.fields(); !slices.Equal(recs[i+1], want) {
			t.Errorf("CSV row %d = %q, want %q", i, recs[i+1], want)
		}
	}
}

func TestFieldsHaveNoSpaces(t *testing.T) {
	r := row{Part: "a b", Transport: "", Case: "x\ty", Unit: "us", Raw: 1, Wrapped: 2, Ratio: 2, SpreadLo: nan, SpreadHi: 1}
	for _, f := range r.fields() {
		if f == "" || strings.ContainsAny(f, " \t") {
			t.Errorf("field %q is empty or holds a space", f)
		}
	}
}
