package tether_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// frozenTLSDialer dials TLS over net.Pipe to a server that completes the
// handshake and then reads nothing, as a frozen peer or middlebox whose
// buffers are full: crypto/tls's Close would wait up to 5 s to write its
// close_notify alert. Each dial's server end is sent on servers.
func frozenTLSDialer(servers chan<- net.Conn) tether.DialerFunc {
	return func(ctx context.Context, _ string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			ts := tls.Server(s, tethertest.TLSServerConfig())
			ts.HandshakeContext(context.Background())
			servers <- s
		}()
		tc := tls.Client(c, tethertest.TLSClientConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
}

// Semantics 7: Close returns promptly, also when the peer reads nothing and
// the close_notify alert cannot be written.
func TestCloseFrozenTLSPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		servers := make(chan net.Conn, 2)
		tt, err := tether.Dial(t.Context(), frozenTLSDialer(servers), "frozen", nil)
		if err != nil {
			t.Fatal(err)
		}
		s := <-servers
		defer s.Close()
		start := time.Now()
		if err := tt.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(start); d >= 100*time.Millisecond {
			t.Fatalf("Close took %v, want well under 100ms", d)
		}
	})
}

// A forced Reconnect closes the healthy connection as Close does: a peer
// that reads nothing does not hold the new dial back for crypto/tls's 5 s.
func TestReconnectFrozenTLSPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		servers := make(chan net.Conn, 2)
		tt, err := tether.Dial(t.Context(), frozenTLSDialer(servers), "frozen", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tt.Close()
		s := <-servers
		defer s.Close()
		start := time.Now()
		tt.Reconnect()
		s2 := <-servers
		defer s2.Close()
		for tt.Generation() < 2 {
			if !tt.WaitForStateChange(t.Context(), tt.State()) {
				t.Fatal("no new connection")
			}
		}
		if d := time.Since(start); d >= 100*time.Millisecond {
			t.Fatalf("the reconnect took %v, want well under 100ms", d)
		}
	})
}
