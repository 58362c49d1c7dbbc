package tetherotel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/io-tether/tether/internal/tlsalert"
)

// OtherErrorType is the error.type of an error that ErrorType does not
// classify, as OpenTelemetry's semantic conventions name it.
const OtherErrorType = "_OTHER"

// ErrorType classifies err for the error.type attribute: one of a few
// values, so that the attribute keeps a low cardinality, whatever the
// message or the address inside err. It looks through wrapping (a
// *net.OpError, a middleware's give-up cause), and returns the first that
// matches of:
//
//	error.type          err
//	eof                 io.EOF, io.ErrUnexpectedEOF (the peer closed)
//	connection_refused  syscall.ECONNREFUSED
//	connection_reset    syscall.ECONNRESET, syscall.ECONNABORTED
//	broken_pipe         syscall.EPIPE
//	host_unreachable    syscall.EHOSTUNREACH
//	network_unreachable syscall.ENETUNREACH
//	dns                 a *net.DNSError
//	tls                 a certificate verification failure, a TLS alert (ours or the peer's)
//	timeout             a deadline or a net.Error whose Timeout() is true
//	canceled            context.Canceled
//	closed              net.ErrClosed
//	_OTHER              anything else
//
// A nil err is "".
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var (
		dnsErr   *net.DNSError
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED):
		return "connection_reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken_pipe"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host_unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network_unreachable"
	case errors.As(err, &dnsErr):
		return "dns"
	case errors.As(err, &verify), errors.As(err, &alert), errors.As(err, &record),
		errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &hostname),
		remoteAlert(err):
		return "tls"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return OtherErrorType
}

// remoteAlert reports whether err holds a TLS alert that the peer sent, in
// the form crypto/tls reports it after a handshake (a TLS 1.3 server that
// rejects the client's certificate says so at the client's first Read).
func remoteAlert(err error) bool {
	_, ok := tlsalert.Remote(err)
	return ok
}
