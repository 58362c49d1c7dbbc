// Package tetheropts lets the packages of this module ask about
// tether.Options, which are opaque outside package tether (it sets the
// functions here as it starts).
package tetheropts

// SetsWritePolicy reports whether opts, tether.Options, set a write policy.
var SetsWritePolicy func(opts []any) bool
