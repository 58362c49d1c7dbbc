package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// sizes are the client's buffer sizes of the throughput parts.
var sizes = []int{1 << 10, 32 << 10}

// serverChunk is the buffer of the server's end: large, so that the client's
// calls are what limits a transfer.
const serverChunk = 64 << 10

// A tputRun is one timed transfer, a line of throughput.csv.
type tputRun struct {
	Part, Transport, Case, Via string
	Round                      int
	Bytes                      int64
	Seconds                    float64
}

// MBps is the run's throughput in MB/s (10^6 bytes per second).
func (r tputRun) MBps() float64 { return float64(r.Bytes) / r.Seconds / 1e6 }

// writer is what the write direction needs of a client: a net.Conn, or
// go-kit's Manager.
type writer interface {
	Write(p []byte) (int, error)
}

// A contender is one way to call the same connection: directly (raw),
// through the Tether, or through a peer library. op makes one call and
// returns the bytes it moved.
type contender struct {
	name string
	op   func() (int, error)
}

// batchOf is how many calls of size bytes make a batch: about 32 KiB, so
// that a batch lasts some microseconds and reading the clock twice per batch
// costs little, the same for every contender.
func batchOf(size int) int { return max(1, (32<<10)/size) }

// interleave calls the contenders in turn, a batch of calls each, on the
// same connection, for about d; it returns the seconds each spent in its
// calls and the bytes each moved. Since the batches alternate every few
// microseconds, every contender meets the same conditions (the peer's
// wake-ups, the scheduler, other processes), which over loopback swing the
// throughput of consecutive runs by several times. The order of the
// contenders is drawn afresh for each cycle, so that none always follows
// the same other one (a batch leaves the socket's buffers fuller or emptier
// for the next).
func interleave(d time.Duration, batch int, rng *rand.Rand, cs []contender) ([]float64, []int64, error) {
	secs := make([]float64, len(cs))
	bytes := make([]int64, len(cs))
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	end := time.Now().Add(d)
	for {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var now time.Time
		for _, i := range order {
			start := time.Now()
			for range batch {
				n, err := cs[i].op()
				bytes[i] += int64(n)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %w", cs[i].name, err)
				}
			}
			now = time.Now()
			secs[i] += now.Sub(start).Seconds()
		}
		if now.After(end) {
			return secs, bytes, nil
		}
	}
}

// rounds runs interleave for each of the configured rounds and returns the
// throughput (MB/s) of each contender in each round, recording the runs for
// the CSV.
func (b *bench) rounds(part, transport, cas string, size int, cs []contender) ([][]float64, error) {
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	// A warm-up round, not recorded.
	if _, _, err := interleave(b.cfg.runTime/2, batchOf(size), rng, cs); err != nil {
		return nil, err
	}
	mbps := make([][]float64, len(cs))
	for r := range b.cfg.runs {
		secs, bytes, err := interleave(b.cfg.runTime, batchOf(size), rng, cs)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", r, err)
		}
		for i, c := range cs {
			run := tputRun{Part: part, Transport: transport, Case: cas, Via: c.name, Round: r,
				Bytes: bytes[i], Seconds: secs[i]}
			b.tput = append(b.tput, run)
			mbps[i] = append(mbps[i], run.MBps())
		}
	}
	return mbps, nil
}

// sink reads from p until it fails (p is closed).
func sink(p *peer) {
	buf := make([]byte, serverChunk)
	for {
		if _, err := p.Read(buf); err != nil {
			return
		}
	}
}

// spring writes to p until it fails (p is closed).
func spring(p *peer) {
	buf := make([]byte, serverChunk)
	for {
		if _, err := p.Write(buf); err != nil {
			return
		}
	}
}

// call returns one call of c's Read (dir "read") or Write with buf.
func call(c writer, dir string, buf []byte) func() (int, error) {
	if r, ok := c.(net.Conn); ok && dir == "read" {
		return func() (int, error) { return r.Read(buf) }
	}
	return func() (int, error) { return c.Write(buf) }
}

// throughputRow compares contender i with raw (contender 0) in the round
// whose ratio of the two is the median (of an even number of rounds, the
// lower of the middle two): raw, wrapped and their ratio are that round's,
// so that they agree, and the spread is the interquartile range of the
// rounds' ratios.
func throughputRow(part, transport, cas string, mbps [][]float64, i int) row {
	m := medianPair(mbps[0], mbps[i])
	r := compared(part, transport, cas, "MB/s", mbps[0][m], mbps[i][m], pairedRatios(mbps[i], mbps[0]))
	r.Target = target{Kind: minRatio, Limit: 0.95}
	return r
}

// runThroughput measures each transport's throughput, raw and through a
// Tether, in both directions and with each buffer size.
func (b *bench) runThroughput() error {
	for _, tr := range b.cfg.transports {
		if err := b.throughputOf(tr); err != nil {
			return fmt.Errorf("throughput %s: %w", tr.name, err)
		}
	}
	return nil
}

func (b *bench) throughputOf(tr *transport) error {
	for _, dir := range []string{"write", "read"} {
		if err := b.throughputDir(tr, dir); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

// throughputDir measures one direction: the server's end sinks (write) or
// sources (read) bytes for as long as the connection lasts, and the client
// calls the raw connection and the Tether over it in turn.
func (b *bench) throughputDir(tr *transport, dir string) error {
	l, err := openLink(tr)
	if err != nil {
		return err
	}
	defer l.close()
	if dir == "write" {
		go sink(l.p)
	} else {
		go spring(l.p)
	}
	for _, size := range sizes {
		cas := dir + "/" + sizeName(size)
		b.progress("throughput %s %s", tr.name, cas)
		buf := make([]byte, size)
		// The raw contender is the very connection under the Tether:
		// same socket, same server goroutine, same buffers; only the
		// Tether differs.
		mbps, err := b.rounds("throughput", tr.name, cas, size,
			[]contender{{"raw", call(l.raw, dir, buf)}, {"tether", call(l.t, dir, buf)}})
		if err != nil {
			return fmt.Errorf("%s: %w", cas, err)
		}
		b.rows = append(b.rows, throughputRow("throughput", tr.name, cas, mbps, 1))
	}
	return nil
}

func sizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
