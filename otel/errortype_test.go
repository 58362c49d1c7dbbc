package tetherotel_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/io-tether/tether"
	tetherotel "github.com/io-tether/tether/otel"
	"github.com/io-tether/tether/tethertest"
)

// opErr is err as a dial or a read returns it.
func opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, err)}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{io.EOF, "eof"},
		{fmt.Errorf("hello: %w", io.ErrUnexpectedEOF), "eof"},
		{opErr("connect", syscall.ECONNREFUSED), "connection_refused"},
		{opErr("read", syscall.ECONNRESET), "connection_reset"},
		{opErr("read", syscall.ECONNABORTED), "connection_reset"},
		{opErr("write", syscall.EPIPE), "broken_pipe"},
		{opErr("connect", syscall.EHOSTUNREACH), "host_unreachable"},
		{opErr("connect", syscall.ENETUNREACH), "network_unreachable"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}}, "dns"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "tls"},
		{fmt.Errorf("handshake: %w", tls.AlertError(42)), "tls"},
		{x509.HostnameError{Host: "x.test"}, "tls"},
		{opErr("read", os.ErrDeadlineExceeded), "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{&net.OpError{Op: "dial", Err: timeoutErr{}}, "timeout"},
		{context.Canceled, "canceled"},
		{net.ErrClosed, "closed"},
		// A give-up cause that wraps the dial error is classified by it.
		{tether.Permanent(opErr("connect", syscall.ECONNREFUSED)), "connection_refused"},
		{errors.New("protocol violation at byte 12"), tetherotel.OtherErrorType},
	}
	for _, tt := range tests {
		if got := tetherotel.ErrorType(tt.err); got != tt.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestErrorTypeRemoteAlert: a TLS alert from the peer, in the form
// crypto/tls reports it (a *net.OpError "remote error" around a type of
// its own), is "tls", not _OTHER: a server that refuses the client's ALPN
// protocol, here.
func TestErrorTypeRemoteAlert(t *testing.T) {
	sc := tethertest.TLSServerConfig("h2")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	_, err = tls.Dial("tcp", ln.Addr().String(), tethertest.TLSClientConfig("not-h2"))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" {
		t.Fatalf("the dial's error is %v, want a remote error", err)
	}
	if got := tetherotel.ErrorType(err); got != "tls" {
		t.Errorf("ErrorType(%v) = %q, want \"tls\"", err, got)
	}
}
