// Package tcp is the TCP [Dialer] of package tether: [net.Dialer]
// underneath, with keep-alive on, a timeout for each dial attempt,
// TCP_USER_TIMEOUT as an option, and the address resolved again at every dial
// so that a DNS change is followed.
//
//	t, err := tcp.Dial(ctx, "db.internal:5432", nil) // the default policy
//
// # Noticing a dead peer
//
// A peer that vanishes without a word (a crashed host, a cable pulled, a
// NAT entry expired) sends no FIN and no RST: a Tether learns of it only
// when the kernel gives up on the connection.
//
//   - Keep-alive ([Dialer.KeepAliveConfig], on by default) probes a quiet
//     connection and fails it with ETIMEDOUT after Idle + Interval × Count
//     (15 s + 15 s × 9 by default; set shorter figures for faster detection).
//   - Keep-alive does not probe while data waits to be acknowledged: a
//     writing client needs [Dialer.UserTimeout] (TCP_USER_TIMEOUT), the time
//     sent data may stay unacknowledged.
//   - Where a proxy or middlebox still answers for the dead peer, neither
//     helps: [github.com/io-tether/tether.WithReadIdleTimeout] turns a silence
//     longer than the peer's heartbeat into a disconnect.
//
// # Timeouts
//
// Each dial attempt, name resolution included, is bounded by
// [Dialer.Timeout] ([DefaultTimeout], 10 s, when zero; the default of every
// dialer of this module): a SYN that a firewall drops waits for the
// kernel's retries otherwise. The Tether's handler decides what happens
// after a failed attempt.
//
// # Errors
//
// Every error of [Dialer.Dial] is a [*net.OpError] that names the transport
// and the address, "dial tcp ADDR: cause", as the errors of every dialer of
// this module do: net.Dialer's own, with the address it was given where net
// leaves it out (a name that does not resolve), or one whose cause is a bad
// configuration ("dial tcp ADDR: tether/tcp: negative Timeout"). errors.Is
// and errors.As reach the cause (syscall.ECONNREFUSED, a *net.DNSError,
// ...), and [github.com/io-tether/tether.IsPermanent] classifies it: an
// address without a port, or with port 0 or a service name the system does
// not know (a *net.AddrError), and a bad configuration are permanent; refused,
// reset, unreachable, timeouts and a name that does not resolve now are
// transient.
package tcp
