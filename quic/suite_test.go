package quic_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/testcert"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/quic-go/quic-go"
)

// TestSuite holds the quic Dialer to the semantics every transport shares.
// A stream exists for the server once the client writes on it, and the
// suite's servers may speak first: the suite's Dialer writes a one-byte
// hello on each new stream, which the Listener reads before Accept returns
// the stream.
func TestSuite(t *testing.T) {
	transporttest.Run(t, transporttest.Transport{
		Name:   "quic",
		Listen: listenStreams,
		Dialer: func() tether.Dialer {
			d := &tetherquic.Dialer{TLSConfig: clientTLS(), Config: fastConfig()}
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

// streamListener accepts the streams of the QUIC connections to it.
type streamListener struct {
	udp     *net.UDPConn
	tr      *quic.Transport
	ctx     context.Context
	cancel  context.CancelFunc
	streams chan net.Conn
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []*quic.Conn
}

func listenStreams(_ testing.TB, addr string) (transporttest.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	l := &streamListener{udp: udp, tr: &quic.Transport{Conn: udp}, streams: make(chan net.Conn)}
	ln, err := l.tr.Listen(testcert.Get().ServerConfig(alpn), nil)
	if err != nil {
		udp.Close()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Go(func() {
		for {
			c, err := ln.Accept(l.ctx)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conns = append(l.conns, c)
			l.mu.Unlock()
			l.wg.Go(func() { l.serveConn(c) })
		}
	})
	return l, nil
}

func (l *streamListener) serveConn(c *quic.Conn) {
	for {
		st, err := c.AcceptStream(l.ctx)
		if err != nil {
			return
		}
		l.wg.Go(func() {
			sc := tetherquic.NewServerConn(c, st)
			if _, err := io.ReadFull(sc, make([]byte, 1)); err != nil {
				sc.Close()
				return
			}
			select {
			case l.streams <- sc:
			case <-l.ctx.Done():
				sc.Close()
			}
		})
	}
}

func (l *streamListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.streams:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops listening and frees the address, without a word to the
// clients of the connections left (Kill closes them first).
func (l *streamListener) Close() error {
	l.cancel()
	l.tr.Close()
	l.udp.Close()
	l.wg.Wait()
	return nil
}

func (l *streamListener) Addr() string { return l.udp.LocalAddr().String() }

// Kill closes the QUIC connections: their clients learn of it at once.
func (l *streamListener) Kill() {
	l.mu.Lock()
	cs := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range cs {
		c.CloseWithError(0, "killed")
	}
}
