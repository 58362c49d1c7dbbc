// Package backoff holds the exponential backoff arithmetic shared by the
// default policy of package tether and by middleware.Backoff.
package backoff

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults are grpc-go's connection-backoff defaults.
const (
	DefaultBaseDelay  = 1 * time.Second
	DefaultMultiplier = 1.6
	DefaultJitter     = 0.2
	DefaultMaxDelay   = 120 * time.Second
)

// Config is an exponential backoff policy. The zero value of each field means
// its default.
type Config struct {
	BaseDelay  time.Duration
	MaxDelay   time.Duration
	Multiplier float64
	Jitter     float64
}

// Default is the default policy.
var Default = Config{
	BaseDelay:  DefaultBaseDelay,
	MaxDelay:   DefaultMaxDelay,
	Multiplier: DefaultMultiplier,
	Jitter:     DefaultJitter,
}

// Normalize returns c with each zero field set to its default, or an error
// when a field is out of range. prefix starts the error message.
func (c Config) Normalize(prefix string) (Config, error) {
	switch {
	case c.BaseDelay < 0:
		return c, errors.New(prefix + "negative BaseDelay")
	case c.MaxDelay < 0:
		return c, errors.New(prefix + "negative MaxDelay")
	case c.Multiplier < 0 || c.Multiplier != c.Multiplier:
		return c, errors.New(prefix + "Multiplier must be at least 1")
	case c.Multiplier > 0 && c.Multiplier < 1:
		return c, errors.New(prefix + "Multiplier must be at least 1")
	case c.Jitter < 0 || c.Jitter > 1 || c.Jitter != c.Jitter:
		return c, errors.New(prefix + "Jitter must be within 0..1")
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay == 0 {
		// The default cap does not turn a BaseDelay above it into a bad
		// configuration: it rises to BaseDelay (no growth).
		c.MaxDelay = max(DefaultMaxDelay, c.BaseDelay)
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultMultiplier
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	if c.MaxDelay < c.BaseDelay {
		return c, errors.New(prefix + "MaxDelay is less than BaseDelay")
	}
	return c, nil
}

// Nominal returns the delay before the next dial after attempt failed dials,
// before jitter: 0 for attempt 0 (see Delay), then BaseDelay×Multiplier^(attempt-1),
// capped at MaxDelay. c must be normalized.
func (c Config) Nominal(attempt int) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d, limit := float64(c.BaseDelay)*math.Pow(c.Multiplier, float64(attempt-1)), float64(c.MaxDelay)
	if d >= limit || d != d {
		return c.MaxDelay
	}
	return time.Duration(d)
}

// Delay returns the jittered delay for attempt, drawing from r (a value in
// [0, 1), normally rand.Float64()).
//
// Attempt 0, the first redial after a stable connection was lost, waits a
// uniform draw in [0, Jitter×BaseDelay], so that many clients that lost the
// same server do not redial it in the same instant. Later attempts wait
// Nominal(attempt)×(1 ± Jitter), never more than MaxDelay×(1+Jitter).
func (c Config) Delay(attempt int, r float64) time.Duration {
	if attempt <= 0 {
		return time.Duration(r * c.Jitter * float64(c.BaseDelay))
	}
	d := float64(c.Nominal(attempt))
	d *= 1 + c.Jitter*(2*r-1)
	if d < 0 {
		d = 0
	}
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// Rand returns a uniform draw in [0, 1) for Delay.
func Rand() float64 { return rand.Float64() }
