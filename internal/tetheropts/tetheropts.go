// Package tetheropts holds what package tether shares with the packages of
// this module built on it, and with no one else: questions about
// tether.Options, which are opaque outside package tether (it sets the
// functions here as it starts), and the contracts of its hooks.
package tetheropts

// SetsWritePolicy reports whether opts, tether.Options, set a write policy.
var SetsWritePolicy func(opts []any) bool

// An OwnHookError is the error of an OnConnect hook that a package of this
// module installs itself (package session's handshake): it names its
// source, and the Tether returns it without the "tether: OnConnect:"
// prefix, which would point the user at a hook they never set.
type OwnHookError interface {
	error
	OwnHook()
}
