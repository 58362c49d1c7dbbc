package tether

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"

	"github.com/io-tether/tether/internal/tlsalert"
)

var (
	// ErrGaveUp is wrapped by the errors of operations on a Tether whose
	// handler gave up. Err reports the cause itself.
	ErrGaveUp = errors.New("tether: gave up reconnecting")
	// ErrDropped is matched by the error of a Write whose bytes did not all
	// reach a connection: a Write cut by a loss (WriteWhole), any Write that
	// failed (WriteDrop), or one cut or failed with WithReconnectBoundary.
	// The count it returns is what the lost connection accepted.
	ErrDropped = errors.New("tether: unwritten bytes dropped")
	// ErrReconnected is matched by the error of the first Read and the
	// first Write after a reconnect, and of operations blocked on or cut by
	// the lost connection, with WithReconnectBoundary. The error is a
	// *ReconnectedError.
	ErrReconnected = errors.New("tether: reconnected")
	// ErrForcedReconnect is the Event.Err of the Disconnected event that
	// Tether.Reconnect causes.
	ErrForcedReconnect = errors.New("tether: reconnect forced by Reconnect")
	// ErrBufferFull is matched by the error of a Write that WithFailFast
	// made fail at once: the Tether was not Ready and the Write did not fit
	// whole in what was left of the write buffer (WithWriteBuffer). It wrote
	// nothing.
	ErrBufferFull = errors.New("tether: write buffer full while not connected")
	// ErrRejected is the cause reported when a handler returns GiveUp on
	// Connected or Reconnected without setting Event.Err.
	ErrRejected = errors.New("tether: handler rejected the connection")
	// ErrPeerClosed is the cause, wrapped in ErrGaveUp, of a Write on a
	// Tether that gave up after the peer closed cleanly (a Read gets io.EOF).
	ErrPeerClosed = errors.New("tether: peer closed the connection")
	// ErrIdleTimeout is wrapped by the Event.Err of a Disconnected that the
	// read watchdog (WithReadIdleTimeout) reported, or a session's
	// keep-alive (package session).
	ErrIdleTimeout = errors.New("tether: nothing received within the read idle timeout")
)

// ReconnectedError is the error of an operation that met a reconnect
// boundary (WithReconnectBoundary): the connection of generation Old was
// replaced by New (see Tether.Generation; several reconnects in a row
// count as one boundary). It matches ErrReconnected, and also ErrDropped
// when Dropped is not 0.
type ReconnectedError struct {
	Old, New uint64
	// Dropped is the count of bytes of a Write that the lost connection
	// cut or failed and that no connection got; 0 for a Read, and for a
	// Write that met only the boundary.
	Dropped int
}

// Error returns a description of the boundary.
func (e *ReconnectedError) Error() string {
	s := "tether: reconnected (connection " + strconv.FormatUint(e.Old, 10) + " replaced by " + strconv.FormatUint(e.New, 10) + ")"
	if e.Dropped > 0 {
		s += ": " + strconv.Itoa(e.Dropped) + " unwritten bytes dropped"
	}
	return s
}

// Is reports whether target is ErrReconnected, or ErrDropped when bytes
// were dropped.
func (e *ReconnectedError) Is(target error) bool {
	return target == ErrReconnected || (target == ErrDropped && e.Dropped > 0)
}

// permanentError marks an error as permanent for IsPermanent.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// Permanent returns err marked so that IsPermanent reports true for it and
// for any error that wraps it. Dialers use it for failures that a retry
// cannot mend. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err is a failure that retrying will not mend,
// so that the default policy gives up at once. The first error in err's
// chain that has a method Permanent() bool decides, whatever the rest of the
// chain holds (see Permanent; the tls and quic dialers mark theirs): a
// wrapper whose method returns false marks as transient an error that
// would count as permanent. Without such a method, err is permanent when
// its chain holds:
//
//   - a certificate verification failure (*tls.CertificateVerificationError,
//     x509.UnknownAuthorityError, x509.HostnameError,
//     x509.CertificateInvalidError),
//   - a TLS alert from the peer that says the configurations do not match:
//     handshake failure, bad or unknown certificate, protocol version, no
//     application protocol, insufficient security, certificate required
//     (a tls.AlertError in the chain, or the "remote error" *net.OpError of
//     crypto/tls, as a Read after the handshake may return it),
//   - a first record that is not TLS (tls.RecordHeaderError: a plaintext
//     server on the port),
//   - an address that cannot be parsed (*net.AddrError, such as a missing
//     port),
//   - context.Canceled (a cancelled Dial).
//
// Everything else is transient: connection refused or reset, io.EOF,
// timeouts, unreachable networks, a name that does not resolve now, QUIC idle
// timeouts and resets. IsPermanent(nil) is false.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) {
		return p.Permanent()
	}
	if errors.Is(err, context.Canceled) {
		return true
	}
	var (
		cve  *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
		ae   *net.AddrError
		alrt tls.AlertError
		rhe  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &cve), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return true
	case errors.As(err, &ae):
		return true
	case errors.As(err, &rhe):
		// The peer does not speak TLS (a plaintext server on a TLS
		// port): a retry meets the same server.
		return true
	case errors.As(err, &alrt):
		return permanentAlert(alrt)
	}
	// A TLS 1.3 server that rejects the client's certificate says so in
	// crypto/tls's own form at the client's first Read, after the
	// handshake.
	alert, _ := tlsalert.Remote(err)
	return permanentAlert(alert)
}

// permanentAlert reports whether a TLS alert says that the two sides'
// configurations do not match (RFC 8446 section 6.2).
func permanentAlert(a tls.AlertError) bool {
	switch a {
	case 40, // handshake_failure: no shared parameters, or a client certificate required
		42,  // bad_certificate
		43,  // unsupported_certificate
		44,  // certificate_revoked
		45,  // certificate_expired
		46,  // certificate_unknown
		48,  // unknown_ca
		70,  // protocol_version
		71,  // insufficient_security
		116, // certificate_required
		120: // no_application_protocol
		return true
	}
	return false
}
