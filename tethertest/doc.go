// Package tethertest helps test code that uses package tether: an in-memory
// dialer whose connections break on command, an event recorder, helpers for
// the usual steps of a test, test certificates, and a conformance check for
// middleware.
//
// # An in-memory dialer
//
// A [Dialer] is a tether.Dialer over net.Pipe. The code under test dials it
// (tether.Dial(ctx, &d, "server", h)); the test takes the server's end of each
// connection with [Dialer.Accept] and plays the server with it, then breaks
// it as a network would:
//
//   - [Conn.Reset]: both ends fail with a connection reset (ECONNRESET);
//   - [Conn.Close]: a clean close, the client reads io.EOF;
//   - [Conn.Blackhole]: both ends stay open and carry nothing (a peer that
//     vanished; only a read deadline or tether.WithReadIdleTimeout sees it);
//   - [Dialer.FailNext]: the next dials fail (connection refused, or any
//     error);
//   - [Dialer.Hold] and [Dialer.Release]: dials hang, as to a host that drops
//     packets;
//   - [Dialer.Down] and [Dialer.Up]: an address refuses dials, and its
//     connections close, as a server that shuts down;
//   - [Dialer.FailWhen]: any dial fails, chosen by its number or address;
//   - [Dialer.Wrap]: dials return a test's own net.Conn around the client's
//     end, for a fault of another kind.
//
// [Dialer.History] lists the dials made, with their addresses and times.
//
// It needs no network, and dialing it starts no goroutine, so it runs inside
// testing/synctest, where backoff delays, deadlines and idle timeouts pass
// in virtual time and take no real time:
//
//	synctest.Test(t, func(t *testing.T) {
//		var d tethertest.Dialer
//		tt := tethertest.Dial(t, &d, "server", nil) // closed when the test ends
//		s := d.Server(t)                            // the server's end
//		s.Reset() // the next Read or Write on tt reconnects
//		...
//	})
//
// [Dial] and [Dialer.Server] fail the test if they fail, and clean up when
// it ends. Where servers answer by themselves, [Dialer.Serve] runs a
// function on each connection, in a goroutine of its own.
//
// # Recording events
//
// A [Recorder] is a DisconnectHandler that lets its Next handler decide and
// keeps each event with the decision. A test waits for an event with
// [Recorder.WaitFor] and inspects it:
//
//	rec := &tethertest.Recorder{Next: tether.DefaultHandler()}
//	tt, _ := tether.Dial(ctx, &d, "server", rec)
//	...
//	ev := rec.WaitFor(t, tether.Reconnected, 1)
//
// # TLS and QUIC
//
// [TLSServerConfig] and [TLSClientConfig] give a server and a client
// tls.Config for tests over loopback: a certificate for localhost,
// 127.0.0.1 and ::1, and a client that trusts its CA alone.
//
// # Checking a middleware
//
// [CheckMiddleware] and [TestMiddleware] run a tether.Middleware through the
// rules that every middleware keeps (it passes informational events through,
// calls next unless it decides, keeps no per-Tether state, is safe for
// concurrent use, ...), as testing/slogtest does for slog handlers.
package tethertest
