// Package dialers has the tether.Dialers that are not TCP, TLS or QUIC, and
// the combinators that make one Dialer from another:
//
//   - [Unix] dials Unix domain sockets;
//   - [FromFunc] adapts the ecosystem's dial functions,
//     func(ctx, network, addr string) (net.Conn, error), such as
//     net.Dialer.DialContext, http.Transport.DialContext or a proxy
//     dialer's DialContext;
//   - [Timeout] bounds each attempt of any Dialer.
//
// They compose:
//
//	// socks is a proxy.ContextDialer of golang.org/x/net/proxy
//	d := dialers.Timeout(dialers.FromFunc("tcp", socks.DialContext), 5*time.Second)
//	t, err := tether.Dial(ctx, d, "db.internal:5432", nil)
//
// # Unix sockets
//
// A server that restarts removes its socket file and makes it again: in
// between, a dial fails with "no such file or directory", and before the
// server listens with "connection refused". Both are transient for
// [github.com/io-tether/tether.IsPermanent], so the default policy waits for
// the server. A path longer than a socket address holds ("invalid
// argument") is permanent: no retry mends it.
//
// # Timeouts per attempt
//
// [Timeout] gives each attempt of any Dialer its own deadline, and returns at
// that deadline even when the Dialer ignores its ctx. Dials that do not fail
// fast need it: a QUIC dial to a dead port, a SYN that a firewall drops, a
// proxy that hangs. A Unix Dialer bounds its own attempts by
// [github.com/io-tether/tether/tcp.DefaultTimeout], the default of every
// dialer of this module, unless its Timeout says otherwise.
//
// # Errors
//
// Every error names the transport and the address as a [*net.OpError] does,
// "dial NETWORK ADDR: cause", as the errors of every dialer of this module
// do, and errors.Is and errors.As reach the cause:
//
//   - [Unix]: net.Dialer's, "dial unix /run/app.sock: connect: connection
//     refused";
//   - [FromFunc]: its function's when it returns a *net.OpError of that
//     form (net.Dialer's do), else one that wraps the function's error,
//     "dial tcp db.internal:5432: socks connect ...";
//   - [Timeout]: its Dialer's, passed through, or its own when the time
//     runs out, "dial db.internal:5432: tether/dialers: no connection within
//     5s", which names no transport: Timeout does not know its Dialer's.
//
// A bad configuration (a negative timeout, a nil function) is an error of
// the same form whose cause is this package's, permanent for
// [github.com/io-tether/tether.IsPermanent].
package dialers
