package quic_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/io-tether/tether/tethertest"
	"github.com/quic-go/quic-go"
)

// TestSuite holds the quic Dialer to the semantics every transport shares.
// A stream exists for the server once the client writes on it, and the
// suite's servers may speak first: the suite's Dialer writes a one-byte
// hello on each new stream, which the Listener reads before Accept returns
// the stream.
func TestSuite(t *testing.T) {
	// The Dialers keep their QUIC connections for other streams (keep-alives
	// hold them up while the server is): they close when the suite ends,
	// its parallel tests included, so that goleak finds none of theirs.
	var (
		mu      sync.Mutex
		dialers []*tetherquic.Dialer
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range dialers {
			d.Close()
		}
	})
	transporttest.Run(t, transporttest.Transport{
		Name:   "quic",
		Listen: listenStreams,
		Dialer: func() tether.Dialer {
			d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: fastConfig()}
			mu.Lock()
			dialers = append(dialers, d)
			mu.Unlock()
			return tether.DialerFunc(func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := d.Dial(ctx, addr)
				if err != nil {
					return nil, err
				}
				if _, err := c.Write([]byte{0}); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			})
		},
	})
}

// streamListener is a tetherquic.Listener as the suite's Listener: it
// reads the hello byte of each stream before Accept returns the stream, and
// Kill closes the QUIC connections of the streams it returned.
type streamListener struct {
	*tetherquic.Listener

	mu    sync.Mutex
	conns map[*quic.Conn]struct{}
}

func listenStreams(_ testing.TB, addr string) (transporttest.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := tetherquic.Listen(addr, tethertest.TLSServerConfig(alpn), nil)
	if err != nil {
		return nil, err
	}
	return &streamListener{Listener: ln, conns: make(map[*quic.Conn]struct{})}, nil
}

// Accept returns the next stream whose hello came. (It comes with the
// stream's first packet: the suite's Dialer writes it as it dials.)
func (l *streamListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		sc := c.(*tetherquic.StreamConn)
		if _, err := io.ReadFull(sc, make([]byte, 1)); err != nil {
			sc.Close()
			continue
		}
		l.mu.Lock()
		l.conns[sc.QUICConn()] = struct{}{}
		l.mu.Unlock()
		return sc, nil
	}
}

func (l *streamListener) Addr() string { return l.Listener.Addr().String() }

// Kill closes the QUIC connections: their clients learn of it at once.
func (l *streamListener) Kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.CloseWithError(0, "killed")
	}
	clear(l.conns)
}
