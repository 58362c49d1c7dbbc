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
// quic-go has closed it. A connection stays up, sending keep-alives, until it
// dies or the Dialer is closed, even when no Tether has a stream on it any
// more (after a Failover moved them elsewhere, say): (*Dialer).Close closes
// the Dialer's connections. [Dial] makes a Dialer for one Tether and closes it
// when the Tether ends.
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
// not notice.
//
// # Timeouts
//
// QUIC has no "connection refused": a dial to an address where no QUIC server
// listens fails only when the handshake idle timeout passes. A lost server is
// noticed by the idle timeout, or sooner by a stateless reset when it
// restarted on the same address with the same Transport.StatelessResetKey.
// A server answers with a stateless reset only a packet of more than 42
// bytes, which quic-go's keep-alives are not (its path MTU probes, sent in a
// connection's first seconds, are): a quiet client may learn of a restarted
// server only from its idle timeout, a writing one learns from its next write
// (whose bytes are lost with the connection). The Dialer's defaults are meant
// for a client that reconnects: [DefaultMaxIdleTimeout] (10 s) with
// keep-alives every half of it, [DefaultHandshakeIdleTimeout] (3 s), and
// [DefaultTimeout] (5 s) for each dial attempt. Fields set in Dialer.Config
// take precedence.
//
// quic-go reports a lost connection with errors that unwrap to net.ErrClosed
// and, for an idle timeout, report Timeout(). A Tether tells them from its own
// Close and from the user's deadlines, and reconnects.
//
// # Errors
//
// Dial errors start with "tether/quic: " and wrap quic-go's; those that a
// retry cannot mend are marked for tether.IsPermanent (see [Dialer.Dial]), so
// that the default policy gives up on a certificate the client does not trust
// or an ALPN protocol the server does not speak, and retries everything else.
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
