// Package quic is the QUIC Dialer of package tether: each connection of a
// Tether is one bidirectional stream of a quic-go connection, and a reconnect
// costs as little as QUIC allows.
//
// Import it as tetherquic, beside quic-go:
//
//	import (
//		"github.com/quic-go/quic-go"
//		tetherquic "github.com/io-tether/tether/quic"
//	)
//
//	t, err := tetherquic.Dial(ctx, "example.net:4433",
//		&tls.Config{NextProtos: []string{"my-protocol"}}, nil)
//
// # Streams and connections
//
// A [Dialer] keeps one QUIC connection per address, and the Tethers that share
// the Dialer have their streams on it. What a reconnect costs depends on what
// failed ([Origin] reports it):
//
//   - only the stream (the peer reset it: *quic.StreamError, or closed it
//     with a FIN) while the connection is alive: a new stream on the same
//     connection, with no handshake and no round trip;
//   - the connection (*quic.IdleTimeoutError, *quic.ApplicationError,
//     *quic.StatelessResetError, ...): a new connection that resumes the TLS
//     session (the Dialer keeps a session cache, and keeps the session
//     through redials that time out while the server is down), one round
//     trip;
//   - with [Dialer.Enable0RTT], that resumed connection carries the first
//     bytes in 0-RTT, with no round trip before them; see the caution below.
//
// The Dialer learns that a connection is gone from its Context, done once
// quic-go has closed it, and from the connection errors its streams return
// (which come first). It also puts no new stream on a connection that no
// longer hears from its server: one whose keep-alives went unanswered for
// about two and a half keep-alive periods (2.6 s at the defaults), or on
// which a stream timed out (a deadline, the read watchdog of
// tether.WithReadIdleTimeout) with no packet received since. It dials a new
// connection instead, and retires the old one, which closes once its last
// stream is closed. Against a killed ngtcp2 server restarted on the same
// port (it sends no stateless reset), requests with a 1 s deadline, one
// Tether each, lost the first request after the kill to the dead
// connection; its timeout made the next go on a new connection, 1.3 s after
// the kill. A request made before the Dialer can tell goes on the dead
// connection and is lost with it (see Timeouts).
//
// A connection stays up, sending keep-alives, until it dies or the Dialer
// is closed, even when no Tether has a stream on it any more (after a
// Failover moved them elsewhere, say): (*Dialer).Close closes the Dialer's
// connections. [Dial] makes a Dialer for one Tether and closes it when the
// Tether ends.
//
// # The stream's life
//
// A [Conn] opens its stream at its first Write (on a connection in its
// 0-RTT handshake, at Dial), because a QUIC stream exists for the server
// only once the client sends on it: a Tether that never
// writes costs the server nothing, and a Dial never waits for the server to
// allow one more stream (the first Write does, within its deadline: a busy
// connection is not an unreachable server). Close ends a stream that
// carried bytes with a FIN after them, and resets an abandoned one (a
// failed or cut stream, one that never carried a byte, and with
// [Dialer.ResetOnClose] any that CloseWrite did not end), with
// [Dialer.StreamErrorCode] in RESET_STREAM and STOP_SENDING. A bare FIN, or
// a FIN after half a request, is an error to HTTP/3 servers (nghttp3
// closes the whole connection, and every stream on it, for it). The
// Dialer closes its connections with [Dialer.ConnErrorCode]. HTTP/3 uses
// 0x100 (H3_NO_ERROR) for the connection and 0x10c (H3_REQUEST_CANCELLED)
// for a request given up.
//
// # Requests and responses
//
// A protocol with one request per stream (HTTP/3's model) uses one Tether
// per request on a shared Dialer: write the request, CloseWrite, read the
// response to io.EOF (after CloseWrite the server's FIN ends the exchange,
// it is not a loss), and Close. Each request costs a new stream on the
// shared connection, no handshake: about 4,000 requests a second in a row
// (3,800 to 4,950 in three runs) against Debian's ngtcp2 server on
// loopback. A request whose connection died is lost with it: give each
// request a deadline, as the request/response example does; the next
// request's Dial redials.
//
// A Tether may also be reused across such requests, without CloseWrite,
// with a server that answers a request before the stream's FIN (one that
// waits for the FIN, as HTTP/3 servers may, never answers it): the Tether
// sees each server's FIN as the end of its stream and reconnects on a new
// one. The Tether counts a clean end after bytes went both ways as the end
// of an exchange, not a flap, however soon it came, so the default
// policy's backoff does not grow from one request to the next
// (TestReusedTetherCleanEnds). A Tether per request keeps the requests
// independent (one lost stream costs one request), and is the pattern to
// prefer.
//
// # A stream exists for the server once the client writes
//
// Opening a QUIC stream sends nothing: the server's AcceptStream returns only
// when the first bytes (or a FIN) arrive. A protocol where the server speaks
// first therefore hangs after every (re)connect, unless the client writes
// first. Give such a Tether an OnConnect hook that writes a hello (which the
// server reads and discards, or uses to resume a session):
//
//	t, err := tether.Dial(ctx, d, addr, nil,
//		tether.WithOnConnect(func(ctx context.Context, c net.Conn) error {
//			_, err := c.Write([]byte("HELLO\n"))
//			return err
//		}))
//
// # 0-RTT can be replayed
//
// 0-RTT data is sent before the handshake has proven that the server is live
// and the exchange fresh: an attacker who recorded it can send it to the
// server again. [Dialer.Enable0RTT] is therefore off by default; turn it on
// only when the first bytes after a reconnect are safe to process twice (an
// idempotent hello, not "debit 100"). When the server rejects 0-RTT (it lost
// its session ticket keys on a restart, say), the [Conn] writes those bytes
// again on a fresh stream once the handshake is complete, and the Tether does
// not notice. The next Read or Write to meet the rejection writes them, within
// the Dialer's timeout (not a deadline of the user's: the Writes that took
// them have returned). A Conn closed before any operation met the rejection
// does not write them: they are lost, as bytes a closed stream had not
// delivered are.
//
// # Timeouts
//
// QUIC has no "connection refused": a dial to an address where no QUIC server
// listens fails only when the handshake idle timeout passes. A lost server is
// noticed by the idle timeout, or sooner by a stateless reset when it
// restarted on the same address with the same Transport.StatelessResetKey;
// a server answers with a stateless reset only a packet of more than 42
// bytes, and some servers (ngtcp2's) send none.
//
// The Dialer's defaults are meant for a client that reconnects:
// [DefaultMaxIdleTimeout] (5 s), [DefaultKeepAlivePeriod] (1 s),
// [DefaultHandshakeIdleTimeout] (3 s), and for each dial attempt
// [github.com/io-tether/tether/tcp.DefaultTimeout] (the default of every
// dialer of this module; a dial to a dead address fails sooner, at the
// handshake idle timeout). quic-go counts the idle timeout from the last packet
// received or, when later, the first packet sent after it that needs an
// answer, so a server that vanished is noticed 5 to 6 s after its last
// packet: a killed ngtcp2 server was noticed after 5.8 s by a Tether waiting
// for its response (14.8 s with the earlier defaults, 10 s and 5 s). The
// keep-alive of a second also keeps up a connection to a server whose own
// idle timeout is short: quic-go reads a peer's idle timeout below 5 s as
// 5 s, so it cannot adapt to a server asking for 2 s, but a PING every
// second keeps that server's connection alive. Fields set in Dialer.Config
// take precedence.
//
// A client that only writes learns nothing of a vanished server until the
// idle timeout: quic-go accepts its bytes, Write returns nil, and the bytes
// never arrive. Against a server killed without a word, a client writing a
// short line every 50 ms noticed after 5.1 s, and the 99 lines it wrote in
// that time were all lost while Write returned nil (10.1 s and 197 lines
// with the earlier defaults). A smaller Config.MaxIdleTimeout loses less,
// at the price of dropping connections on shorter network hiccups; only
// acknowledgements from the application (or resumable sessions) lose
// nothing.
//
// quic-go reports a lost connection with errors that unwrap to net.ErrClosed
// and, for an idle timeout, report Timeout(). A Tether tells them from its own
// Close and from the user's deadlines, and reconnects.
//
// # Errors
//
// Every error of [Dialer.Dial] is a [*net.OpError] that names the transport
// and the address, as the errors of every dialer of this module do: "dial
// quic ADDR: cause", where the cause is quic-go's error ("dial quic
// 10.0.0.7:4433: timeout: no recent network activity"), the resolver's, or
// one of this package's ("dial quic 10.0.0.7:4433: tether/quic: Dialer
// closed"). errors.Is and errors.As reach the cause (*quic.TransportError,
// *quic.IdleTimeoutError, [ErrDialerClosed], ...). Those that a retry cannot
// mend are marked for tether.IsPermanent (see [Dialer.Dial]), so that the
// default policy gives up on a certificate the client does not trust or an
// ALPN protocol the server does not speak, and retries everything else. An
// attempt that runs out of its Timeout fails with a net.Error whose Timeout
// is true.
// Read and Write return quic-go's errors unchanged, io.EOF included, except a
// handshake failure after a 0-RTT Dial returned, which is marked permanent
// too.
//
// A server that closes a stream (FIN) and then its connection at once may
// make the client read an *quic.ApplicationError instead of io.EOF: quic-go
// reports the connection's end before a FIN it has not yet delivered (or
// sent). A Tether then sees a lost connection, not the end of the exchange,
// and reconnects. Servers should let the client close the connection, or
// wait for it a moment, after their last stream's FIN.
package quic
