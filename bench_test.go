package tether_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// nopConn reads and writes nothing, instantly: it measures the Tether alone.
type nopConn struct{}

func (nopConn) Read(p []byte) (int, error)       { return len(p), nil }
func (nopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (nopConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// transports make a connected pair: the client end and the server end.
var transports = []struct {
	name string
	pair func(b *testing.B) (client net.Conn, server net.Conn, redial tether.Dialer)
}{
	{"pipe", func(b *testing.B) (net.Conn, net.Conn, tether.Dialer) {
		c, s := net.Pipe()
		return c, s, tether.DialerFunc(func(context.Context, string) (net.Conn, error) {
			return nil, io.ErrClosedPipe
		})
	}},
	{"tcp", func(b *testing.B) (net.Conn, net.Conn, tether.Dialer) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			s, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- s
		}()
		d := &tcp.Dialer{}
		c, err := d.Dial(b.Context(), l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, ok := <-accepted
		if !ok {
			b.Fatal("accept failed")
		}
		return c, s, d
	}},
}

// benchIO runs f as a sub-benchmark for each transport and size, through
// the raw connection and through a Tether over the same kind of
// connection, side by side. f gets the client's end (raw or wrapped) and
// the server's.
func benchIO(b *testing.B, f func(b *testing.B, c, s net.Conn, size int)) {
	for _, tr := range transports {
		for _, size := range []int{1 << 10, 32 << 10} {
			for _, via := range []string{"raw", "tether"} {
				b.Run("transport="+tr.name+"/size="+sizeName(size)+"/via="+via, func(b *testing.B) {
					c, s, d := tr.pair(b)
					c = wrap(b, c, d, via)
					defer c.Close()
					defer s.Close()
					b.SetBytes(int64(size))
					b.ReportAllocs()
					f(b, c, s, size)
				})
			}
		}
	}
}

// BenchmarkWrite writes through the raw connection and through a Tether.
func BenchmarkWrite(b *testing.B) {
	benchIO(b, func(b *testing.B, w, s net.Conn, size int) {
		go io.Copy(io.Discard, s)
		buf := make([]byte, size)
		for b.Loop() {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRead reads through the raw connection and through a Tether.
func BenchmarkRead(b *testing.B) {
	benchIO(b, func(b *testing.B, r, s net.Conn, size int) {
		go func() {
			buf := make([]byte, size)
			for {
				if _, err := s.Write(buf); err != nil {
					return
				}
			}
		}()
		buf := make([]byte, size)
		for b.Loop() {
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOverhead measures what a Tether adds to a Read and a Write over a
// connection that does nothing.
func BenchmarkOverhead(b *testing.B) {
	for _, via := range []string{"raw", "tether"} {
		b.Run("via="+via, func(b *testing.B) {
			c := wrap(b, nopConn{}, nil, via)
			buf := make([]byte, 1024)
			b.ReportAllocs()
			for b.Loop() {
				c.Read(buf)
				c.Write(buf)
			}
		})
	}
}

func wrap(b *testing.B, c net.Conn, d tether.Dialer, via string) net.Conn {
	if via == "raw" {
		return c
	}
	if d == nil {
		d = tether.DialerFunc(func(context.Context, string) (net.Conn, error) { return nil, io.ErrClosedPipe })
	}
	t, err := tether.New(c, d, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
