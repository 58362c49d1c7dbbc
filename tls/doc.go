// Package tls is the TLS Dialer of package tether: a TCP connection from
// package tcp (keep-alive on, a timeout for each attempt, the address
// resolved again at every dial) with a crypto/tls client handshake on top,
// and a session cache kept across dials so that a reconnect resumes the TLS
// session instead of paying a full handshake.
//
// Its name collides with crypto/tls: import it as tethertls.
//
//	import (
//		"crypto/tls"
//
//		tethertls "github.com/io-tether/tether/tls"
//	)
//
//	t, err := tethertls.Dial(ctx, "db.internal:5432", &tls.Config{}, nil) // the default policy
//
// # Session resumption
//
// A [Dialer] clones its Config once, at its first dial, and gives the clone
// a client session cache when the Config has none; the caller's Config is
// never changed. Every dial of that Dialer shares the cache, so every
// reconnect after the first connection resumes the session, provided the
// server issues tickets (TLS 1.3 servers send them just after the handshake:
// they reach the cache once the client has read from the connection).
// crypto/tls drops the session it offered when a handshake fails; when the
// server did not answer (it went away mid handshake, the attempt timed out)
// the Dialer puts it back, so that the reconnect that succeeds still resumes.
//
// # Errors
//
// Every error of [Dialer.Dial] is a [*net.OpError] that names the transport
// and the address, as the errors of every dialer of this module do. When
// the TCP dial fails, it is package tcp's, "dial tcp ADDR: ...". When the
// handshake fails (or the address does not parse), it is "dial tls ADDR:
// cause", and the cause is crypto/tls's error with its message unchanged,
// "dial tls 10.0.0.7:5432: tls: failed to verify certificate: ..." say.
// errors.Is and errors.As reach the cause. Each attempt, TCP dial and
// handshake together, is bounded by the NetDialer's timeout
// ([github.com/io-tether/tether/tcp.DefaultTimeout] when it has none).
//
// Those errors that say the two sides' configurations do not match, which
// no retry mends, are permanent for [tether.IsPermanent], so that the
// default policy gives up at once:
//
//   - a certificate that does not verify: a *tls.CertificateVerificationError,
//     reachable with errors.As;
//   - a certificate that the Config's own checks reject
//     (VerifyPeerCertificate, VerifyConnection: pinning, say): their error,
//     wrapped with tether.Permanent unless it has a Permanent method of its
//     own (a check that failed for a passing reason, an OCSP fetch, may say
//     false);
//   - an alert from the server that says so (protocol version, no
//     application protocol, bad certificate, ...: see tether.IsPermanent;
//     and handshake failure, which a server sends when it finds no cipher
//     suite or curve in common or, under TLS 1.2, when it requires a
//     client certificate that it did not get): the error then also wraps
//     the alert as a tls.AlertError, reachable with errors.As and
//     errors.Is, and keeps crypto/tls's message;
//   - a server that picks a TLS version or an ALPN protocol that the client
//     did not offer, and a Config whose MinVersion exceeds its MaxVersion:
//     wrapped with tether.Permanent.
//
// A server that closes the connection during the handshake, refuses it, or
// does not answer within the timeout is transient (the timeout is a
// net.Error whose Timeout is true).
//
// An alert that arrives after the handshake is not the Dialer's to
// classify: it comes in a Read of the Tether. Under TLS 1.3 this is how a
// server rejects a client certificate, after the client's side of the
// handshake is complete.
//
// # Closing
//
// The Tether closes a lost connection without a close_notify alert: the
// TCP connection under it first. crypto/tls's Close writes the alert with a
// 5 s deadline, which a dead peer whose buffers are full (a frozen server
// or middlebox) would make the reconnect wait out. [tether.Tether.Close]
// closes the current connection, and [tether.Tether.Reconnect] the one it
// replaces, as crypto/tls does, with the alert, unless a Write on it
// failed at its deadline: the connection may then end in part of a record,
// and its peer may read nothing more. An alert that cannot be written within
// 50 ms (the peer reads nothing) is given up, and the TCP connection closed
// without it, so that Close returns promptly.
package tls
