// Command bench measures what a Tether costs against the raw connection it
// wraps, in the same run, and prints a table of the results.
//
//	cd bench && go run .              # the whole suite (a minute or two)
//	cd bench && go run . -quick       # a few seconds: what CI runs
//	cd bench && go run . -parts reconnect -transports tcp,tls
//	cd bench && go run . -csv ../docs/perf -svg ../docs/perf
//
// # Parts
//
//   - throughput: bytes per second of Write (the server's end drains) and of
//     Read (the server's end writes without pause), with 1 KiB and 32 KiB
//     client buffers, through a Tether and through the very connection under
//     it (Tether.Conn). The two take turns, a batch of about 32 KiB of calls
//     each in an order drawn afresh every cycle, for -runtime per round.
//     Interleaving is what makes a 1 % difference visible: over loopback the
//     peer's wake-ups swing the throughput of consecutive runs by several
//     times, so runs one after the other (as go test -bench makes them)
//     cannot compare the two. Of -runs rounds, the row shows the one whose
//     ratio is the median (of an even number, the lower middle one): raw,
//     wrapped and ratio are that round's, and the spread is the
//     interquartile range of all the rounds' ratios. Target: >= 0.95.
//   - allocs: heap allocations of the Tether's own code per healthy Read and
//     Write of 1 KiB, exactly, from a memory profile that records every
//     allocation (case ".../own"). Target: 0. What the whole process
//     allocates per call, raw and through a Tether, is what go test -bench
//     -benchmem reports (BenchmarkWrite, BenchmarkRead, BenchmarkOverhead in
//     package tether; BenchmarkThroughput in tls and quic), so it is not
//     counted here a second time.
//   - reconnect: from the moment the server ends a connection to the moment
//     the client has read the first byte of the new one, with a handler that
//     reconnects at once (Event.Delay 0), against a raw re-dial with the same
//     kind of Dialer, alternately; both read from a long-lived goroutine, as
//     an application does. Cases: tcp and unix "close"; tls "resumed" (a
//     session ticket) and "full" (a server without tickets); quic "stream"
//     (the server ends the stream: a new stream on the live connection) and
//     "redial" (the server closes the QUIC connection: a resumed handshake).
//     Each reconnect is checked to be of its case's kind. Raw and wrapped
//     are the medians of each side's samples. Target: a median at most 10 us
//     above the raw re-dial over TCP.
//   - idle: the live heap and the goroutines that thousands of idle
//     connections keep, raw and as Tethers (the server's ends count in both,
//     alike); "mem" is a Tether over a connection that does nothing, and
//     "heap/deadline-ctx" Tethers whose Dial ctx had a deadline (which
//     the Tether must not keep once Dial returns). Target: at most 512 B and 0
//     goroutines per Tether beyond its connection.
//   - storm: Tethers with the default policy against a TCP server process
//     (this program, run with -serve-storm) that is killed and restarted on
//     the same port after -storm-down: the time until all are back, the
//     dials per second, the heap and goroutines before and after.
//   - peer: write throughput of go-kit's util/conn.Manager beside a Tether
//     and the raw connection, all three on the same TCP connection, in turn
//     as above. The Manager is write-only and fails writes while it is
//     disconnected, so only healthy writes are compared.
//
// # Output
//
// The table goes to standard output, progress to standard error. Its format
// is stable (see writeTable): "#" lines, a header line, then one row per
// measurement, fields separated by spaces. Columns: part, transport, case,
// unit, raw (the raw connection), wrapped (the Tether; for part peer, the
// library the case names), ratio (wrapped/raw, where the two were measured
// in alternated pairs), delta (wrapped minus raw, in unit), spread (the
// interquartile range of the pairs' ratios: how far one pair may stray from
// the ratio), target, met ("yes", "no", "-" without a target, "unjudged"
// for the timing targets of quick mode, whose few short runs cannot resolve
// them). "-" means not applicable; "us" is microseconds, "MB/s" 10^6 bytes
// per second. Columns are only ever appended; a change of layout changes
// the first line ("# tether-bench v1").
//
// -csv DIR writes summary.csv (the table), throughput.csv (every round),
// reconnect.csv (every sample), idle.csv and storm.csv (the timeline);
// -svg DIR writes reconnect.svg, storm.svg and throughput.svg, drawn with
// gonum.org/v1/plot. The storm chart is two panels over one time axis
// (Tethers connected, dials per second) rather than one panel with a second
// y axis, which gonum/plot does not draw. -cpuprofile and -memprofile (with
// -memprofilerate) profile the run.
//
// Everything runs on loopback (127.0.0.1 and Unix sockets), and every wait
// is bounded. The exit status is 1 when a part fails, and with -strict also
// when a target is missed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// A part is one part of the suite.
type part struct {
	name string
	run  func(*bench) error
}

// parts lists the parts in the order they run and appear in the table.
var parts = []part{{"throughput", (*bench).runThroughput}, {"allocs", (*bench).runAllocs},
	{"reconnect", (*bench).runReconnect}, {"idle", (*bench).runIdle}, {"storm", (*bench).runStorm},
	{"peer", (*bench).runPeer}}

// config is what the flags say.
type config struct {
	mode         string // "full" or "quick"
	parts        []part
	transports   []*transport
	runs         int
	runTime      time.Duration
	samples      int
	allocOps     int
	idleN        int
	stormN       int
	stormDown    time.Duration
	stormTimeout time.Duration
	csvDir       string
	svgDir       string
	strict       bool
	cpuProfile   string
	memProfile   string
	memRate      int
}

// bench is one run of the suite and what it measured.
type bench struct {
	cfg    config
	stderr io.Writer

	rows       []row
	tput       []tputRun
	reconnects []reconnectSample
	idle       []idleResult
	storm      *stormResult
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench: "+format+"\n", args...)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a few seconds: fewer and shorter runs, smaller counts (CI)")
	partsFlag := fs.String("parts", "", "the parts to run, comma-separated (default all: "+names(parts, partName)+")")
	trFlag := fs.String("transports", "", "the transports to measure, comma-separated (default all: "+names(allTransports(), trName)+")")
	runs := fs.Int("runs", 0, "rounds per throughput case (default 20, quick 5)")
	runTime := fs.Duration("runtime", 0, "about how long one throughput run lasts (default 100ms, quick 10ms)")
	samples := fs.Int("samples", 0, "reconnects per case and contender (default 400, quick 30)")
	allocOps := fs.Int("allocops", 0, "operations per allocation count (default 20000, quick 2000)")
	idleN := fs.Int("idle", 0, "idle connections per transport (default 3000, quick 300)")
	stormN := fs.Int("storm-tethers", 0, "Tethers in the storm (default 1000, quick 200; try 10000)")
	stormDown := fs.Duration("storm-down", 0, "how long the storm's server stays down (default 1s, quick 250ms)")
	csvDir := fs.String("csv", "", "write the raw CSV files into `DIR`")
	svgDir := fs.String("svg", "", "write the SVG charts into `DIR`")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file`")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to `file` (and, for part idle, file.idle-TRANSPORT while the connections are alive; for part storm, file.storm-before and file.storm-after)")
	memRate := fs.Int("memprofilerate", 0, "runtime.MemProfileRate for -memprofile (1 records every allocation)")
	serve := fs.String("serve-storm", "", "internal: serve the storm on `addr` (the child process)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *serve != "" {
		if err := serveStorm(*serve); err != nil {
			fmt.Fprintln(stderr, "bench: storm server:", err)
			return 1
		}
		return 0
	}

	cfg := config{mode: "full", runs: 20, runTime: 100 * time.Millisecond, samples: 400, allocOps: 20000,
		idleN: 3000, stormN: 1000, stormDown: time.Second, stormTimeout: 2 * time.Minute,
		csvDir: *csvDir, svgDir: *svgDir, strict: *strict,
		cpuProfile: *cpuProfile, memProfile: *memProfile, memRate: *memRate}
	if *quick {
		cfg.mode = "quick"
		cfg.runs, cfg.runTime, cfg.samples, cfg.allocOps = 5, 10*time.Millisecond, 30, 2000
		cfg.idleN, cfg.stormN, cfg.stormDown, cfg.stormTimeout = 300, 200, 250*time.Millisecond, 30*time.Second
	}
	setInt(&cfg.runs, *runs)
	setInt(&cfg.samples, *samples)
	setInt(&cfg.allocOps, *allocOps)
	setInt(&cfg.idleN, *idleN)
	setInt(&cfg.stormN, *stormN)
	if *runTime > 0 {
		cfg.runTime = *runTime
	}
	if *stormDown > 0 {
		cfg.stormDown = *stormDown
	}
	var err error
	if cfg.parts, err = pick("part", *partsFlag, parts, partName); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if cfg.transports, err = pick("transport", *trFlag, allTransports(), trName); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	b := &bench{cfg: cfg, stderr: stderr}
	return b.main(stdout)
}

func setInt(dst *int, v int) {
	if v > 0 {
		*dst = v
	}
}

func partName(p part) string      { return p.name }
func trName(tr *transport) string { return tr.name }

// names lists the names of all, comma-separated.
func names[T any](all []T, name func(T) string) string {
	var ns []string
	for _, x := range all {
		ns = append(ns, name(x))
	}
	return strings.Join(ns, ",")
}

// pick returns the items of all that the comma-separated list s names, in
// the order of all; an empty list names them all.
func pick[T any](what, s string, all []T, name func(T) string) ([]T, error) {
	want := splitList(s)
	if len(want) == 0 {
		return all, nil
	}
	var out []T
	for _, x := range all {
		if slices.Contains(want, name(x)) {
			out = append(out, x)
		}
	}
	for _, n := range want {
		if !slices.ContainsFunc(all, func(x T) bool { return name(x) == n }) {
			return nil, fmt.Errorf("bench: unknown %s %q (%ss: %s)", what, n, what, names(all, name))
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// main runs the selected parts and writes the results.
func (b *bench) main(stdout io.Writer) int {
	if b.cfg.memRate > 0 {
		runtime.MemProfileRate = b.cfg.memRate
	}
	if b.cfg.cpuProfile != "" {
		f, err := os.Create(b.cfg.cpuProfile)
		if err != nil {
			fmt.Fprintln(b.stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(b.stderr, "bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	status := 0
	for _, p := range b.cfg.parts {
		if err := p.run(b); err != nil {
			fmt.Fprintf(b.stderr, "bench: %s: %v\n", p.name, err)
			status = 1
		}
	}
	elapsed := time.Since(start)
	if b.cfg.memProfile != "" {
		if err := writeHeapProfile(b.cfg.memProfile); err != nil {
			fmt.Fprintln(b.stderr, "bench:", err)
			status = 1
		}
	}
	if b.cfg.mode == "quick" {
		for i, r := range b.rows {
			// A few runs of 10 ms, on a machine busy with other work,
			// cannot resolve a 5 % throughput target or a 10 µs delta:
			// quick mode keeps the suite from rotting, and judges only
			// what it can (allocations, idle memory, goroutines).
			b.rows[i].Unjudged = r.Unit == "MB/s" || r.Unit == "us"
		}
	}
	if err := writeTable(stdout, b.header(elapsed), b.rows); err != nil {
		fmt.Fprintln(b.stderr, "bench:", err)
		return 1
	}
	if err := b.writeFiles(); err != nil {
		fmt.Fprintln(b.stderr, "bench:", err)
		status = 1
	}
	met := map[string]int{}
	for _, r := range b.rows {
		met[r.Met()]++
	}
	if n := met["unjudged"]; n > 0 {
		fmt.Fprintf(b.stderr, "bench: %d timing target(s) left unjudged: quick mode's few short runs cannot resolve them; run without -quick to judge them\n", n)
	}
	if missed := met["no"]; missed > 0 {
		fmt.Fprintf(b.stderr, "bench: %d target(s) missed\n", missed)
		if b.cfg.strict && status == 0 {
			status = 1
		}
	}
	return status
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// header describes the machine and the settings of the run.
func (b *bench) header(elapsed time.Duration) header {
	return header{Pairs: [][2]string{
		{"go", runtime.Version()},
		{"goos", runtime.GOOS},
		{"goarch", runtime.GOARCH},
		{"nproc", fmt.Sprint(runtime.NumCPU())},
		{"gomaxprocs", fmt.Sprint(runtime.GOMAXPROCS(0))},
		{"cpu", cpuModel()},
		{"mode", b.cfg.mode},
		{"parts", names(b.cfg.parts, partName)},
		{"transports", names(b.cfg.transports, trName)},
		{"runs", fmt.Sprint(b.cfg.runs)},
		{"samples", fmt.Sprint(b.cfg.samples)},
		{"idle", fmt.Sprint(b.cfg.idleN)},
		{"storm", fmt.Sprint(b.cfg.stormN)},
		{"elapsed", elapsed.Round(100 * time.Millisecond).String()},
	}}
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or "unknown".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// writeFiles writes the CSV and SVG files that the flags ask for.
func (b *bench) writeFiles() error {
	for _, out := range []struct {
		dir   string
		files map[string]func(io.Writer) error
	}{{b.cfg.csvDir, b.csvFiles()}, {b.cfg.svgDir, b.svgFiles()}} {
		if out.dir == "" {
			continue
		}
		if err := os.MkdirAll(out.dir, 0o755); err != nil {
			return err
		}
		for name, write := range out.files {
			if err := writeFile(filepath.Join(out.dir, name), write); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
