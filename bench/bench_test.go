package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/io-tether/tether"
)

func TestTethersOwn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stack []string // innermost first
		want  bool
	}{
		{"made by the Tether", []string{"runtime.mallocgc", "runtime.newobject", "github.com/io-tether/tether.(*Tether).Write", "main.main"}, true},
		{"the Tether's own code", []string{"github.com/io-tether/tether.(*Tether).startLocked", "github.com/io-tether/tether.(*Tether).fail"}, true},
		{"through a helper", []string{"fmt.Errorf", "github.com/io-tether/tether.(*Tether).Write"}, true},
		{"the connection's", []string{"crypto/tls.(*Conn).Write", "github.com/io-tether/tether.(*Tether).Write"}, false},
		{"the connection's read", []string{"runtime.mallocgc", "github.com/quic-go/quic-go.(*Stream).Read", "github.com/io-tether/tether/quic.(*Conn).Read", "github.com/io-tether/tether.(*Tether).Read"}, false},
		{"a subpackage only", []string{"github.com/io-tether/tether/quic.(*Conn).Write", "main.main"}, false},
		{"no Tether", []string{"net.(*conn).Write", "main.main"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tethersOwn(tc.stack); got != tc.want {
				t.Errorf("tethersOwn(%q) = %v, want %v", tc.stack, got, tc.want)
			}
		})
	}
}

// TestOwnAllocs checks the attribution against code whose allocations are
// known: New allocates, a healthy Write over a no-op connection does not,
// and a connection's own allocations are not the Tether's.
func TestOwnAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("collects garbage many times")
	}
	noDial := tether.DialerFunc(func(context.Context, string) (net.Conn, error) { return nil, errors.New("no") })
	keep := make([]*tether.Tether, 0, 300)
	got, err := ownAllocs(200, func() (int, error) {
		tt, err := tether.New(nopConn{}, noDial, "mem", nil)
		keep = append(keep, tt)
		return 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got < 1 {
		t.Errorf("ownAllocs(tether.New) = %v per call, want at least 1", got)
	}
	buf := make([]byte, 64)
	tt := keep[0]
	if got, err := ownAllocs(1000, call(tt, "write", buf)); err != nil || got != 0 {
		t.Errorf("ownAllocs(Write) = %v, %v; want 0, nil", got, err)
	}
	ac, err := tether.New(allocConn{}, noDial, "mem", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ownAllocs(1000, call(ac, "write", buf)); err != nil || got != 0 {
		t.Errorf("ownAllocs(Write over an allocating connection) = %v, %v; want 0, nil", got, err)
	}
}

// allocConn allocates in every Write, as some connections do.
type allocConn struct{ nopConn }

var sinkBytes []byte

func (allocConn) Write(p []byte) (int, error) {
	sinkBytes = make([]byte, len(p)+1)
	return len(p), nil
}

// TestInterleave runs in a synctest bubble, whose clock moves only by the
// contenders' sleeps: the times it sums are exact.
func TestInterleave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := map[string]int{}
		cs := []contender{
			{"fast", func() (int, error) { calls["fast"]++; time.Sleep(2 * time.Microsecond); return 100, nil }},
			{"slow", func() (int, error) { calls["slow"]++; time.Sleep(4 * time.Microsecond); return 100, nil }},
		}
		secs, bytes, err := interleave(time.Millisecond, 4, rand.New(rand.NewPCG(1, 2)), cs)
		if err != nil {
			t.Fatal(err)
		}
		// A cycle of a batch each lasts 24 us: the first past 1 ms ends it.
		cycles := 1000/24 + 1
		if calls["fast"] != 4*cycles || calls["slow"] != 4*cycles {
			t.Errorf("calls = %v, want %d batches of 4 each", calls, cycles)
		}
		if want := int64(400 * cycles); bytes[0] != want || bytes[1] != want {
			t.Errorf("bytes = %v, want %d each", bytes, want)
		}
		if want := 8e-6 * float64(cycles); math.Abs(secs[0]-want) > 1e-12 || math.Abs(secs[1]-2*want) > 1e-12 {
			t.Errorf("secs = %v, want %v and %v", secs, want, 2*want)
		}
	})
	cs := []contender{{"fine", func() (int, error) { return 1, nil }}, {"broken", func() (int, error) { return 0, errors.New("broken") }}}
	if _, _, err := interleave(time.Millisecond, 1, rand.New(rand.NewPCG(1, 2)), cs); err == nil || !strings.Contains(err.Error(), "broken: broken") {
		t.Errorf("interleave with a failing contender: %v, want its error", err)
	}
}

func TestPick(t *testing.T) {
	ps, err := pick("part", "storm, throughput,throughput", parts, partName)
	if got := names(ps, partName); err != nil || got != "throughput,storm" {
		t.Errorf("pick(storm, throughput,throughput) = %v, %v; want throughput,storm in canonical order", got, err)
	}
	if all, err := pick("part", " ", parts, partName); err != nil || len(all) != len(parts) {
		t.Errorf("pick(\" \") = %d parts, %v; want all %d", len(all), err, len(parts))
	}
	for _, bad := range []string{"bogus", "throughput,bogus"} {
		if _, err := pick("part", bad, parts, partName); err == nil || !strings.Contains(err.Error(), "unknown part") {
			t.Errorf("pick(%q) = %v, want an unknown part error", bad, err)
		}
	}
	trs, err := pick("transport", "quic,tcp", allTransports(), trName)
	if got := names(trs, trName); err != nil || got != "tcp,quic" {
		t.Errorf("pick(quic,tcp) = %v, %v; want tcp,quic", got, err)
	}
}

func TestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-parts", "nope"}, &out, &errOut); code != 2 {
		t.Errorf("run(-parts nope) = %d, want 2", code)
	}
	if code := run([]string{"extra"}, &out, &errOut); code != 2 {
		t.Errorf("run(extra) = %d, want 2", code)
	}
}

// TestRun runs a little of the suite end to end over TCP and Unix sockets,
// and reads its table and files back.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite")
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := run([]string{"-parts", "throughput,allocs,reconnect,idle", "-transports", "tcp,unix",
		"-runs", "2", "-runtime", "5ms", "-samples", "4", "-allocops", "200", "-idle", "20",
		"-csv", dir, "-svg", dir}, &out, &errOut)
	if code != 0 {
		t.Fatalf("run = %d; stderr:\n%s", code, errOut.String())
	}
	// The table's lines hold the fields of summary.csv, separated by spaces.
	f, err := os.Open(filepath.Join(dir, "summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(recs)+2 || lines[0] != "# "+formatVersion {
		t.Fatalf("%d lines for %d CSV records, first %q:\n%s", len(lines), len(recs), lines[0], out.String())
	}
	for i, rec := range recs {
		if got := strings.Fields(lines[i+2]); !slices.Equal(got, rec) {
			t.Errorf("table line %d = %q, CSV %q", i+2, got, rec)
		}
	}
	rows := recs[1:]
	// throughput 4 cases, allocs 2 rows, reconnect 1, idle 2 per
	// transport, and idle tcp heap/deadline-ctx; idle over mem too.
	if want := 2*(4+2+1+2) + 1 + 2; len(rows) != want {
		t.Errorf("%d rows, want %d:\n%s", len(rows), want, out.String())
	}
	// Every ratio agrees with the raw and wrapped figures beside it (shown
	// rounded to a tenth).
	for _, f := range rows {
		ratio, err1 := strconv.ParseFloat(f[6], 64)
		raw, err2 := strconv.ParseFloat(f[4], 64)
		wrapped, err3 := strconv.ParseFloat(f[5], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue // "-"
		}
		if tol := 0.0005 + 0.05*(wrapped+raw)/(raw*raw); math.Abs(ratio-wrapped/raw) > tol {
			t.Errorf("%s: ratio %v, but wrapped/raw = %v/%v", strings.Join(f[:3], " "), ratio, wrapped, raw)
		}
	}
	for _, name := range []string{"throughput.csv", "reconnect.csv", "idle.csv", "reconnect.svg", "throughput.svg"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if strings.HasSuffix(name, ".svg") {
			checkSVG(t, data)
		}
	}
}
