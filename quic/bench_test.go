package quic_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	tetherquic "github.com/io-tether/tether/quic"
	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
)

// BenchmarkReconnect measures what a reconnect costs, up to the first echo
// on the new stream: a new stream on a live connection, and a redial with a
// full handshake, with a resumed TLS session, and with 0-RTT.
func BenchmarkReconnect(b *testing.B) {
	for _, bc := range []struct {
		name           string
		redial         bool
		tickets, early bool
	}{
		{"new-stream", false, true, false},
		{"full-handshake", true, false, false},
		{"resumed", true, true, false},
		{"0-rtt", true, true, true},
	} {
		b.Run("kind="+bc.name, func(b *testing.B) {
			srv := newServer(b, serverOpts{allow0RTT: true})
			tc := clientTLS()
			tc.SessionTicketsDisabled = !bc.tickets
			d := &tetherquic.Dialer{TLSConfig: tc, Enable0RTT: bc.early}
			defer d.Close()
			ctx := context.Background()
			// A first connection, which brings the session ticket.
			c, err := d.Dial(ctx, srv.addr)
			require.NoError(b, err)
			transporttest.EchoByte(b, c)
			b.ReportAllocs()
			for b.Loop() {
				if bc.redial {
					c.(*tetherquic.Conn).QUICConn().CloseWithError(0, "")
				} else {
					c.Close()
				}
				c, err = d.Dial(ctx, srv.addr)
				if err != nil {
					b.Fatal(err)
				}
				transporttest.EchoByte(b, c)
			}
			b.StopTimer()
			if bc.early {
				require.Equal(b, tetherquic.ZeroRTT, c.(*tetherquic.Conn).Origin())
			}
			c.Close()
		})
	}
}

// BenchmarkEcho measures a 1 KiB round trip through a Tether and through the
// raw quic-go stream.
func BenchmarkEcho(b *testing.B) {
	benchConns(b, serverOpts{}, func(b *testing.B, c net.Conn) {
		buf := make([]byte, 1024)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkThroughput measures one-way throughput (64 KiB writes to a server
// that discards them) through a Tether and through the raw quic-go stream.
func BenchmarkThroughput(b *testing.B) {
	sink := serverOpts{handle: func(_ *testServer, _ *quic.Conn, st *quic.Stream) {
		io.Copy(io.Discard, st)
		st.Close()
	}}
	benchConns(b, sink, func(b *testing.B, c net.Conn) {
		buf := make([]byte, 64<<10)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchConns runs f over a raw quic-go stream, a tetherquic.Conn, and a
// Tether, each to its own server made with o.
func benchConns(b *testing.B, o serverOpts, f func(b *testing.B, c net.Conn)) {
	b.Run("via=raw", func(b *testing.B) {
		srv := newServer(b, o)
		qc, err := quic.DialAddr(context.Background(), srv.addr, clientTLS(), nil)
		require.NoError(b, err)
		defer qc.CloseWithError(0, "")
		st, err := qc.OpenStreamSync(context.Background())
		require.NoError(b, err)
		f(b, rawConn{st, qc})
	})
	b.Run("via=conn", func(b *testing.B) {
		srv := newServer(b, o)
		d := &tetherquic.Dialer{TLSConfig: clientTLS()}
		defer d.Close()
		c, err := d.Dial(context.Background(), srv.addr)
		require.NoError(b, err)
		f(b, c)
	})
	b.Run("via=tether", func(b *testing.B) {
		srv := newServer(b, o)
		d := &tetherquic.Dialer{TLSConfig: clientTLS()}
		defer d.Close()
		tt, err := tether.Dial(context.Background(), d, srv.addr, nil)
		require.NoError(b, err)
		defer tt.Close()
		f(b, tt)
	})
}

// rawConn is the least a quic-go stream needs to be a net.Conn, for the
// baseline.
type rawConn struct {
	*quic.Stream
	qc *quic.Conn
}

func (c rawConn) LocalAddr() net.Addr  { return c.qc.LocalAddr() }
func (c rawConn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }
