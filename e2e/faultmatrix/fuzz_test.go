package faultmatrix

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
	"github.com/io-tether/tether/tethertest/faultproxy"
	"github.com/stretchr/testify/require"
)

// FuzzFaultSchedule plays a fault schedule decoded from the input (four
// bytes a step, at most six steps, each short) against the record streams
// of TestIntegritySoak, and checks the integrity invariant. Each input takes
// about a second of real time, and its coverage depends on timing, so fuzz
// it with -fuzzminimizetime=1x: otherwise the fuzzer spends its time
// minimizing inputs whose new coverage does not reproduce.
func FuzzFaultSchedule(f *testing.F) {
	all := faultproxy.AllFaults()
	for i := range all {
		// Each fault, half as long as the longest, then again after a
		// short gap, for its longest.
		b := byte((2*i + 1) * 256 / (2 * len(all))) // decodes to all[i]
		f.Add([]byte{b, 128, 128, 64, b, 255, 255, 32})
	}
	f.Add([]byte{0, 255, 0, 0, 200, 255, 200, 0, 100, 255, 100, 0}) // three back to back
	f.Fuzz(func(t *testing.T, data []byte) {
		steps := faultproxy.DecodeSchedule(data, fuzzSchedule)
		if len(steps) > 6 {
			steps = steps[:6]
		}
		runIntegrity(t, integrityConfig{seed: 1, steps: steps})
	})
}

// fuzzSchedule keeps each fuzzed step short.
var fuzzSchedule = faultproxy.ScheduleConfig{
	MaxFor:   300 * time.Millisecond,
	MaxGap:   100 * time.Millisecond,
	MaxDelay: 50 * time.Millisecond,
	MaxCut:   16 << 10,
}

// FuzzConcurrentOps runs Read, Write, SetDeadline, SetReadDeadline,
// SetWriteDeadline and Close from three goroutines, with faults (reset,
// clean close, blackhole, failed and held dials) between them, on a Tether
// over tethertest.Dialer inside synctest. It checks that nothing panics,
// that every operation returns (by its deadline, or at the latest when the
// Tether is closed), that each result keeps the io contracts and the
// Tether's transparency (no error but a deadline, Close, or a drop under
// WriteDrop), and that no goroutine is left.
func FuzzConcurrentOps(f *testing.F) {
	f.Add([]byte{0, 0, 1, 12, 13, 6, 0, 1, 11})
	f.Add([]byte{1, 12 * 3, 1, 0, 6, 1, 0, 7, 1, 0, 8, 13})
	f.Add([]byte{2, 4 + 12, 1, 3 + 12*2, 7, 1, 11, 1, 0, 9, 0, 1})
	f.Add([]byte{3, 10, 0, 1, 5 + 12*4, 0, 1, 11 + 12*5, 2, 1, 0})
	f.Add([]byte{7, 9 + 12*2, 10, 0, 1, 6, 11 + 12*10, 10 + 12, 0, 1, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		if len(data) > 301 {
			data = data[:301]
		}
		synctest.Test(t, func(t *testing.T) { runOps(t, data[0], data[1:]) })
	})
}

// runOps is one FuzzConcurrentOps input: options from flags, then ops
// dealt round-robin to three goroutines.
func runOps(t *testing.T, flags byte, ops []byte) {
	var d tethertest.Dialer
	var opts []tether.Option
	if flags&1 != 0 {
		opts = append(opts, tether.WithWritePolicy(tether.WriteDrop))
	}
	if flags&2 != 0 {
		opts = append(opts, tether.WithReadIdleTimeout(5*time.Second))
	}
	if flags&4 != 0 {
		opts = append(opts, tether.WithStabilityPeriod(0))
	}
	dropping := flags&1 != 0

	// The server: echo on every connection.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		smu   sync.Mutex
		conns []*tethertest.Conn
		swg   sync.WaitGroup
	)
	swg.Add(1)
	go func() {
		defer swg.Done()
		for {
			c, err := d.Accept(ctx)
			if err != nil {
				return
			}
			smu.Lock()
			conns = append(conns, c)
			smu.Unlock()
			swg.Add(1)
			go func() {
				defer swg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	latest := func() *tethertest.Conn {
		smu.Lock()
		defer smu.Unlock()
		if len(conns) == 0 {
			return nil
		}
		return conns[len(conns)-1]
	}

	tt, err := tether.Dial(ctx, &d, "server:1", nil, opts...)
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}

	// check reports a result that breaks a contract.
	check := func(op string, n, size int, err error) {
		switch {
		case n < 0 || n > size:
			t.Errorf("%s of %d bytes returned n = %d", op, size, n)
		case op == "Write" && err == nil && n != size:
			t.Errorf("Write of %d bytes = %d, nil", size, n)
		case op == "Read" && err == nil && n == 0:
			t.Errorf("Read of %d bytes = 0, nil", size)
		case err == nil,
			errors.Is(err, net.ErrClosed),
			errors.Is(err, os.ErrDeadlineExceeded),
			dropping && op == "Write" && errors.Is(err, tether.ErrDropped):
		default:
			t.Errorf("%s = %d, %v: an error the Tether should have hidden", op, n, err)
		}
	}

	// closed: a goroutine closed the Tether, and the others stop. (Not
	// Done, which closes only once the handler has returned: an operation
	// meanwhile returns net.ErrClosed, but a sleep of this harness's would
	// outlast the final check.)
	closed := make(chan struct{})
	var closeOnce sync.Once
	closeTether := func() error {
		closeOnce.Do(func() { close(closed) })
		return tt.Close()
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ops); i += 3 {
				select {
				case <-closed:
					return
				default:
				}
				kind, arg := ops[i]%12, int(ops[i]/12)
				at := func() time.Time {
					if arg == 0 {
						return time.Time{}
					}
					return time.Now().Add(time.Duration(arg) * 100 * time.Millisecond)
				}
				switch kind {
				case 0:
					size := arg*37 + 1
					n, err := tt.Write(make([]byte, size))
					check("Write", n, size, err)
				case 1:
					size := arg*13 + 1
					n, err := tt.Read(make([]byte, size))
					check("Read", n, size, err)
				case 2:
					check("SetDeadline", 0, 0, tt.SetDeadline(at()))
				case 3:
					check("SetReadDeadline", 0, 0, tt.SetReadDeadline(at()))
				case 4:
					check("SetWriteDeadline", 0, 0, tt.SetWriteDeadline(at()))
				case 5:
					if arg%4 == 0 {
						start := time.Now()
						if err := closeTether(); err != nil && !errors.Is(err, net.ErrClosed) {
							t.Errorf("Close = %v", err)
						}
						if took := time.Since(start); took > 0 {
							t.Errorf("Close took %v", took)
						}
					}
				case 6:
					if c := latest(); c != nil {
						c.Reset()
					}
				case 7:
					if c := latest(); c != nil {
						c.Blackhole()
					}
				case 8:
					if c := latest(); c != nil {
						c.Close()
					}
				case 9:
					d.FailNext(arg%3+1, nil)
				case 10:
					if arg%2 == 0 {
						d.Hold()
					} else {
						d.Release()
					}
				case 11:
					time.Sleep(time.Duration(arg) * 50 * time.Millisecond)
				}
			}
		}()
	}

	// Let the goroutines run (in virtual time), then close: every
	// operation still blocked must return.
	done := waitChan(&wg)
	select {
	case <-done:
	case <-time.After(time.Hour):
	}
	closedAt := time.Now()
	closeTether()
	d.Release()
	synctest.Wait()
	select {
	case <-done:
	default:
		t.Fatal("an operation still blocks after Close")
	}
	if took := time.Since(closedAt); took > 0 {
		t.Errorf("operations took %v to return after Close", took)
	}
	select {
	case <-tt.Done(): // the handler has returned
	default:
		t.Fatal("Done is not closed after Close")
	}
	for _, op := range []struct {
		name string
		err  error
	}{
		{"Read", func() error { _, err := tt.Read(make([]byte, 1)); return err }()},
		{"Write", func() error { _, err := tt.Write([]byte("x")); return err }()},
		{"SetDeadline", tt.SetDeadline(time.Time{})},
	} {
		if !errors.Is(op.err, net.ErrClosed) {
			t.Errorf("%s after Close = %v, want net.ErrClosed", op.name, op.err)
		}
	}
	cancel()
	swg.Wait()
}

// The fuzz seeds of FuzzFaultSchedule cover every fault.
func TestFuzzSeedsCoverFaults(t *testing.T) {
	all := faultproxy.AllFaults()
	for i, want := range all {
		b := byte((2*i + 1) * 256 / (2 * len(all)))
		steps := faultproxy.DecodeSchedule([]byte{b, 0, 0, 0}, fuzzSchedule)
		require.Equal(t, want, steps[0].Fault)
	}
}
