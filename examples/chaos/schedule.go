package main

import (
	"time"

	"github.com/io-tether/tether/tethertest/faultproxy"
)

// A faultSpec is one fault of the schedule, at a fraction of the run.
type faultSpec struct {
	name  string
	what  string
	fault faultproxy.Fault
	at    float64 // when it begins
	until float64 // when it ends; 0 for a one-shot fault
}

var schedule = []faultSpec{
	{"drop", "the server closes every connection (FIN)", faultproxy.FaultClose, 0.10, 0},
	{"reset", "every connection is reset (RST)", faultproxy.FaultReset, 0.20, 0},
	{"refuse", "the server is down: connections reset, dials refused", faultproxy.FaultRefuse, 0.30, 0.43},
	{"blackhole", "nothing gets through, on old or new connections", faultproxy.FaultBlackhole, 0.53, 0.67},
}

// A faultRun is a fault of the schedule as it happened.
type faultRun struct {
	spec    faultSpec
	at      time.Duration // since the start
	lasted  time.Duration
	mark    *mark // the first record written after it began
	noticed error // the first disconnect after it began
}

// An action is a step of the schedule: a fault begins or ends.
type action struct {
	at   time.Duration
	spec *faultSpec
	heal bool
}

// actions returns the steps of the schedule for a run of d, in order.
func actions(d time.Duration) []action {
	var as []action
	at := func(f float64) time.Duration {
		return time.Duration(f * float64(d)).Round(10 * time.Millisecond)
	}
	for i := range schedule {
		s := &schedule[i]
		as = append(as, action{at: at(s.at), spec: s})
		if s.until > 0 {
			as = append(as, action{at: at(s.until), spec: s, heal: true})
		}
	}
	return as
}

// act plays one step of the schedule.
func (c *client) act(a action) error {
	now := time.Now()
	if a.heal {
		return c.heal()
	}
	if err := c.proxy.Apply(faultproxy.Step{Fault: a.spec.fault}); err != nil {
		return err
	}
	f := &faultRun{spec: *a.spec, at: now.Sub(c.start), mark: c.marks.add(c.send.Next(), now)}
	c.faults = append(c.faults, f)
	if a.spec.until > 0 {
		c.active = f
	} else {
		c.recovery = f.mark
	}
	c.disp.printf("%s  fault    %s: %s\n", c.disp.stamp(now), a.spec.name, a.spec.what)
	return nil
}

// heal ends the fault in force.
func (c *client) heal() error {
	if err := c.proxy.Heal(); err != nil {
		return err
	}
	now := time.Now()
	f := c.active
	c.active = nil
	f.lasted = now.Sub(c.start) - f.at
	c.recovery = c.marks.add(c.send.Next(), now)
	c.disp.printf("%s  fault    %s ends after %v\n", c.disp.stamp(now), f.spec.name, f.lasted.Round(10*time.Millisecond))
	return nil
}
