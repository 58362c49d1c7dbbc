package tls_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// BenchmarkReconnect measures what a reconnect's dial costs on loopback, up
// to the first echoed byte on the new connection: a TCP re-dial, and a TLS
// one with a full handshake (the server issues no tickets) and with a
// resumed session. Client and server share the machine's CPUs.
func BenchmarkReconnect(b *testing.B) {
	noTickets := tethertest.TLSServerConfig()
	noTickets.SessionTicketsDisabled = true
	client := &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}
	for _, bc := range []struct {
		name    string
		tr      transporttest.Transport
		d       tether.Dialer
		resumed bool
	}{
		{"tcp", transporttest.TCP, &tcp.Dialer{}, false},
		{"tls-full", transport(noTickets), &tethertls.Dialer{Config: client}, false},
		{"tls-resumed", transport(tethertest.TLSServerConfig()), &tethertls.Dialer{Config: client}, true},
	} {
		b.Run("kind="+bc.name, func(b *testing.B) {
			srv := transporttest.StartServer(b, bc.tr, transporttest.Echo)
			ctx := context.Background()
			c, err := bc.d.Dial(ctx, srv.Addr()) // brings the session ticket
			require.NoError(b, err)
			transporttest.EchoByte(b, c)
			b.ReportAllocs()
			for b.Loop() {
				c.Close()
				if c, err = bc.d.Dial(ctx, srv.Addr()); err != nil {
					b.Fatal(err)
				}
				transporttest.EchoByte(b, c)
			}
			b.StopTimer()
			if tc, ok := c.(*tls.Conn); ok {
				require.Equal(b, bc.resumed, tc.ConnectionState().DidResume, "DidResume")
			}
			c.Close()
		})
	}
}

// BenchmarkThroughput measures one-way throughput of 64 KiB Writes to a
// server that discards them, and of 64 KiB Reads from a server that
// writes without end, through the raw *tls.Conn and through a Tether over
// the same kind of connection.
func BenchmarkThroughput(b *testing.B) {
	block := make([]byte, 64<<10)
	for _, dir := range []struct {
		name   string
		handle transporttest.Handler
		op     func(c net.Conn) error
	}{
		{"write", func(_ context.Context, c net.Conn, _ int) { io.Copy(io.Discard, c) },
			func(c net.Conn) error { _, err := c.Write(block); return err }},
		{"read", func(_ context.Context, c net.Conn, _ int) {
			for {
				if _, err := c.Write(block); err != nil {
					return
				}
			}
		}, func(c net.Conn) error { _, err := io.ReadFull(c, block); return err }},
	} {
		for _, via := range []string{"raw", "tether"} {
			b.Run("dir="+dir.name+"/via="+via, func(b *testing.B) {
				srv := transporttest.StartServer(b, transport(tethertest.TLSServerConfig()), dir.handle)
				d := &tethertls.Dialer{Config: &tls.Config{RootCAs: tethertest.TLSClientConfig().RootCAs}}
				var (
					c   net.Conn
					err error
				)
				if via == "raw" {
					c, err = d.Dial(context.Background(), srv.Addr())
				} else {
					c, err = tether.Dial(context.Background(), d, srv.Addr(), nil)
				}
				require.NoError(b, err)
				defer c.Close()
				b.SetBytes(int64(len(block)))
				b.ReportAllocs()
				for b.Loop() {
					if err := dir.op(c); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
