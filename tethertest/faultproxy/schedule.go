package faultproxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault is one kind of fault that a Step injects.
type Fault int

// The faults, and what Proxy.Apply does for each.
const (
	FaultReset       Fault = iota // ResetAll
	FaultClose                    // CloseAll
	FaultStrand                   // Strand
	FaultRefuse                   // ResetAll and SetMode(ModeRefuse) for Step.For: the server is down
	FaultHold                     // ResetAll and SetMode(ModeHold) for Step.For (Linux only): a partition
	FaultAcceptClose              // ResetAll and SetMode(ModeAcceptClose) for Step.For: a flapping server
	FaultAcceptReset              // ResetAll and SetMode(ModeAcceptReset) for Step.For
	FaultBlackhole                // Blackhole(true) for Step.For
	FaultDelay                    // Shape{Delay: Arg ms, Jitter: Arg ms} for Step.For
	FaultSlice                    // Shape{Slice: Arg} for Step.For
	FaultCut                      // Shape{CutAfter: Arg} for Step.For
	numFaults
)

var faultNames = [...]string{
	FaultReset:       "reset",
	FaultClose:       "close",
	FaultStrand:      "strand",
	FaultRefuse:      "refuse",
	FaultHold:        "hold",
	FaultAcceptClose: "accept-close",
	FaultAcceptReset: "accept-reset",
	FaultBlackhole:   "blackhole",
	FaultDelay:       "delay",
	FaultSlice:       "slice",
	FaultCut:         "cut",
}

// String returns the lowercase name of f.
func (f Fault) String() string {
	if f >= 0 && f < numFaults {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// AllFaults returns every Fault this platform supports.
func AllFaults() []Fault {
	var fs []Fault
	for f := Fault(0); f < numFaults; f++ {
		if f == FaultHold && !canHold {
			continue
		}
		fs = append(fs, f)
	}
	return fs
}

// A Step is one fault of a schedule: Run applies it, waits For, heals, and
// waits Gap.
type Step struct {
	Fault Fault
	// For is how long the fault lasts before the proxy heals; for the
	// one-shot faults (reset, close, strand) it is a wait after the fault.
	For time.Duration
	// Arg is the fault's parameter: milliseconds for FaultDelay, the largest
	// piece for FaultSlice, bytes for FaultCut; unused otherwise.
	Arg int64
	// Gap is the healthy time after the proxy heals.
	Gap time.Duration
}

// String describes s in one line.
func (s Step) String() string {
	switch s.Fault {
	case FaultDelay, FaultSlice, FaultCut:
		return fmt.Sprintf("%v(%d) for %v, gap %v", s.Fault, s.Arg, s.For, s.Gap)
	}
	return fmt.Sprintf("%v for %v, gap %v", s.Fault, s.For, s.Gap)
}

// ScheduleConfig bounds the steps that Schedule and DecodeSchedule make. A
// zero field takes its default.
type ScheduleConfig struct {
	Faults   []Fault       // the faults to draw from; default AllFaults()
	MaxFor   time.Duration // longest Step.For; default 1 s
	MaxGap   time.Duration // longest Step.Gap; default 500 ms
	MaxDelay time.Duration // longest FaultDelay; default 100 ms
	MaxSlice int           // largest FaultSlice piece; default 16 bytes
	MaxCut   int64         // largest FaultCut; default 64 KiB
}

func (c ScheduleConfig) normalize() ScheduleConfig {
	if len(c.Faults) == 0 {
		c.Faults = AllFaults()
	}
	if c.MaxFor <= 0 {
		c.MaxFor = time.Second
	}
	if c.MaxGap <= 0 {
		c.MaxGap = 500 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 100 * time.Millisecond
	}
	if c.MaxSlice <= 0 {
		c.MaxSlice = 16
	}
	if c.MaxCut <= 0 {
		c.MaxCut = 64 << 10
	}
	return c
}

// Schedule returns n random steps drawn from seed: the same seed, n and
// config give the same steps. n ≤ 0 gives none.
func Schedule(seed uint64, n int, cfg ScheduleConfig) []Step {
	if n <= 0 {
		return nil
	}
	cfg = cfg.normalize()
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	steps := make([]Step, n)
	for i := range steps {
		steps[i] = cfg.step(r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32())
	}
	return steps
}

// DecodeSchedule turns arbitrary bytes (a fuzzer's input) into steps, four
// bytes a step, within cfg's bounds; a short tail is ignored.
func DecodeSchedule(data []byte, cfg ScheduleConfig) []Step {
	cfg = cfg.normalize()
	var steps []Step
	for ; len(data) >= 4; data = data[4:] {
		// Spread each byte over the whole range of its field.
		spread := func(b byte) uint32 { return uint32(b) * 0x01010101 }
		steps = append(steps, cfg.step(spread(data[0]), spread(data[1]), spread(data[2]), spread(data[3])))
	}
	return steps
}

// step makes one step from four uniform draws.
func (c ScheduleConfig) step(f, dur, arg, gap uint32) Step {
	frac := func(u uint32) float64 { return float64(u) / (1 << 32) }
	s := Step{
		Fault: c.Faults[int(uint64(f)*uint64(len(c.Faults))>>32)],
		For:   time.Duration(frac(dur) * float64(c.MaxFor)),
		Gap:   time.Duration(frac(gap) * float64(c.MaxGap)),
	}
	switch s.Fault {
	case FaultDelay:
		s.Arg = 1 + int64(frac(arg)*float64(c.MaxDelay/time.Millisecond))
	case FaultSlice:
		s.Arg = 1 + int64(frac(arg)*float64(c.MaxSlice))
	case FaultCut:
		s.Arg = 1 + int64(frac(arg)*float64(c.MaxCut))
	}
	return s
}

// Apply starts the fault of s; Heal ends it. The faults on new connections
// (refuse, hold, accept-close, accept-reset) also reset the live ones, so
// that the client meets them.
func (p *Proxy) Apply(s Step) error {
	switch s.Fault {
	case FaultRefuse, FaultHold, FaultAcceptClose, FaultAcceptReset:
		defer p.ResetAll() // after the mode is set: a redial meets it
	}
	switch s.Fault {
	case FaultReset:
		p.ResetAll()
	case FaultClose:
		p.CloseAll()
	case FaultStrand:
		p.Strand()
	case FaultRefuse:
		return p.SetMode(ModeRefuse)
	case FaultHold:
		return p.SetMode(ModeHold)
	case FaultAcceptClose:
		return p.SetMode(ModeAcceptClose)
	case FaultAcceptReset:
		return p.SetMode(ModeAcceptReset)
	case FaultBlackhole:
		p.Blackhole(true)
	case FaultDelay:
		d := time.Duration(s.Arg) * time.Millisecond
		p.SetShape(Shape{Delay: d, Jitter: d})
	case FaultSlice:
		p.SetShape(Shape{Slice: int(s.Arg)})
	case FaultCut:
		p.SetShape(Shape{CutAfter: s.Arg})
	default:
		return fmt.Errorf("tether/tethertest/faultproxy: unknown fault %d", int(s.Fault))
	}
	return nil
}

// Run plays steps: for each, it calls each (when non-nil), applies the step,
// waits For, heals and waits Gap. It returns when the steps are done or ctx
// is, always healed.
func (p *Proxy) Run(ctx context.Context, steps []Step, each func(Step)) error {
	defer p.Heal()
	for _, s := range steps {
		if each != nil {
			each(s)
		}
		if err := p.Apply(s); err != nil {
			return err
		}
		if !wait(ctx, s.For) {
			return ctx.Err()
		}
		if err := p.Heal(); err != nil {
			return err
		}
		if !wait(ctx, s.Gap) {
			return ctx.Err()
		}
	}
	return nil
}

func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
