package tether

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
)

var (
	// ErrGaveUp is wrapped by the errors of operations on a Tether whose
	// handler gave up. Err reports the cause itself.
	ErrGaveUp = errors.New("tether: gave up reconnecting")
	// ErrDropped is wrapped by the error of a Write that, under
	// WithDropUnwritten, returned without writing all of its bytes.
	ErrDropped = errors.New("tether: unwritten bytes dropped")
	// ErrRejected is the cause reported when a handler returns GiveUp on
	// Connected or Reconnected without setting Event.Err.
	ErrRejected = errors.New("tether: handler rejected the connection")
	// ErrPeerClosed is the cause, wrapped in ErrGaveUp, of a Write on a
	// Tether that gave up after the peer closed cleanly (a Read gets io.EOF).
	ErrPeerClosed = errors.New("tether: peer closed the connection")
	// ErrIdleTimeout is wrapped by the Event.Err of a Disconnected that the
	// read watchdog (WithReadIdleTimeout) reported.
	ErrIdleTimeout = errors.New("tether: nothing received within the read idle timeout")
)

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
// so that the default policy gives up at once:
//
//   - an error in whose chain some error has a method Permanent() bool that
//     returns true (see Permanent; the tls and quic dialers mark theirs),
//   - a certificate verification failure (*tls.CertificateVerificationError,
//     x509.UnknownAuthorityError, x509.HostnameError,
//     x509.CertificateInvalidError),
//   - a TLS alert from the peer that says the configurations do not match:
//     handshake failure, bad or unknown certificate, protocol version, no
//     application protocol, insufficient security (tls.AlertError; the tls
//     dialer adds it to the chain of crypto/tls's remote-error alerts),
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
	)
	switch {
	case errors.As(err, &cve), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return true
	case errors.As(err, &ae):
		return true
	case errors.As(err, &alrt):
		return permanentAlert(alrt)
	}
	return false
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
