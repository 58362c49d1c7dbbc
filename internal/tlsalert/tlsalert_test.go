package tlsalert_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/io-tether/tether/internal/tlsalert"
	"github.com/io-tether/tether/tethertest"
)

// remoteAlert returns the error of a client handshake that the server
// rejects with no_application_protocol (120), as crypto/tls reports it.
func remoteAlert(t *testing.T) error {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		tls.Server(server, tethertest.TLSServerConfig("h2")).Handshake()
	}()
	err := tls.Client(client, tethertest.TLSClientConfig("x")).Handshake()
	if err == nil {
		t.Fatal("Handshake() = nil, want the server's alert")
	}
	return err
}

func TestRemote(t *testing.T) {
	alert := remoteAlert(t)
	for _, tc := range []struct {
		name string
		err  error
		want tls.AlertError
		ok   bool
	}{
		{"crypto/tls's error", alert, 120, true},
		{"wrapped", fmt.Errorf("dial: %w", alert), 120, true},
		{"in another OpError", &net.OpError{Op: "dial", Net: "tls", Err: alert}, 120, true},
		{"joined", errors.Join(errors.New("other"), alert), 120, true},
		{"nil", nil, 0, false},
		{"plain", errors.New("remote error: tls: no application protocol"), 0, false},
		{"exported AlertError", tls.AlertError(120), 0, false},
		{"remote error of another type", &net.OpError{Op: "remote error", Err: errors.New("x")}, 0, false},
		{"remote error without Err", &net.OpError{Op: "remote error"}, 0, false},
		{"joined, no alert", errors.Join(errors.New("a"), errors.New("b")), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tlsalert.Remote(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Remote(%v) = %d, %v, want %d, %v", tc.err, got, ok, tc.want, tc.ok)
			}
		})
	}
}
