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

// frozenTLS returns a Dialer of TLS connections whose server completes the
// handshake and then reads nothing, as a frozen peer or middlebox whose
// buffers are full: crypto/tls's Close would wait up to 5 s to write its
// close_notify alert. The handshake is left to the first I/O (tls.Client):
// handshake completes it.
func frozenTLS(t *testing.T) (d *tethertest.Dialer, handshake func(*tether.Tether)) {
	d = &tethertest.Dialer{}
	d.Wrap(func(c *tethertest.Conn) net.Conn { return tls.Client(c.Client(), tethertest.TLSClientConfig()) })
	go d.Serve(t.Context(), func(c *tethertest.Conn) {
		tls.Server(c, tethertest.TLSServerConfig()).HandshakeContext(t.Context())
		<-t.Context().Done()
	})
	return d, func(tt *tether.Tether) {
		if err := tt.Conn().(*tls.Conn).HandshakeContext(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// Semantics 7: Close returns promptly, also when the peer reads nothing and
// the close_notify alert cannot be written.
func TestCloseFrozenTLSPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, handshake := frozenTLS(t)
		tt, err := tether.Dial(t.Context(), d, "frozen", nil)
		if err != nil {
			t.Fatal(err)
		}
		handshake(tt)
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
		d, handshake := frozenTLS(t)
		atOnce := tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.Reconnect })
		tt, err := tether.Dial(t.Context(), d, "frozen", atOnce)
		if err != nil {
			t.Fatal(err)
		}
		defer tt.Close()
		handshake(tt)

		start := time.Now()
		tt.Reconnect()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for tt.Generation() < 2 {
			if !tt.WaitForStateChange(ctx, tt.State()) {
				t.Fatal("no new connection")
			}
		}
		if d := time.Since(start); d >= 100*time.Millisecond {
			t.Fatalf("the reconnect took %v, want well under 100ms", d)
		}
	})
}

// noNetConn offers NetConn but has no connection under it (a mock, an
// in-memory transport).
type noNetConn struct{ net.Conn }

func (noNetConn) NetConn() net.Conn { return nil }

// A connection whose NetConn returns nil is closed as any other, on a loss
// and on Close (the first reconnect panicked).
func TestNilNetConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &tethertest.Dialer{}
		d.Wrap(func(c *tethertest.Conn) net.Conn { return noNetConn{c.Client()} })
		atOnce := tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.Reconnect })
		tt := tethertest.Dial(t, d, "a", atOnce)
		d.Server(t).Close()
		got := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			got <- err
		}()
		d.Server(t).Write([]byte("x"))
		if err := <-got; err != nil {
			t.Fatalf("Read after the reconnect: %v", err)
		}
		if err := tt.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}
