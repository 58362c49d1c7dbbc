package session_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// benchPair returns the client's and the server's end of a raw TCP
// connection or of a session over TCP, on loopback, and a stop function.
func benchPair(b testing.TB, via string, h tether.DisconnectHandler, opts ...session.Option) (c, s net.Conn, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if via == "raw" || via == "tls-raw" {
		if via == "tls-raw" {
			ln = tls.NewListener(ln, tethertest.TLSServerConfig())
		}
		defer ln.Close()
		acc := make(chan net.Conn, 1)
		go func() {
			s, _ := ln.Accept()
			if tc, ok := s.(*tls.Conn); ok {
				tc.Handshake() // tls.Dial below waits for it
			}
			acc <- s
		}()
		var c net.Conn
		if via == "tls-raw" {
			c, err = tls.Dial("tcp", ln.Addr().String(), tethertest.TLSClientConfig())
		} else {
			c, err = net.Dial("tcp", ln.Addr().String())
		}
		if err != nil {
			b.Fatal(err)
		}
		s := <-acc
		return c, s, func() { c.Close(); s.Close() }
	}
	var d tether.Dialer = &tethertcp.Dialer{}
	if via == "tls-session" {
		ln = tls.NewListener(ln, tethertest.TLSServerConfig())
		d = &tethertls.Dialer{Config: tethertest.TLSClientConfig()}
	}
	sl := session.NewListener(ln, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := session.Dial(ctx, d, sl.Addr().String(), h, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ss, err := sl.AcceptSession()
	if err != nil {
		b.Fatal(err)
	}
	return sc, ss, func() { sc.Close(); ss.Close(); sl.Close() }
}

// drain reads s until it ends, counting the bytes in n.
func drain(s net.Conn, n *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		k, err := s.Read(buf)
		n.Add(int64(k))
		if err != nil {
			return
		}
	}
}

// BenchmarkThroughput writes through a raw TCP connection and through a
// session over TCP, side by side, at two write sizes, and the same over
// TLS; each run ends when the reader has received every byte. The
// session's figure over the raw one is its throughput ratio.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{32 << 10, 1 << 10} {
		for _, via := range []string{"raw", "session", "tls-raw", "tls-session"} {
			b.Run("size="+sizeName(size)+"/via="+via, func(b *testing.B) {
				c, s, stop := benchPair(b, via, nil)
				defer stop()
				var got atomic.Int64
				go drain(s, &got)
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var sent int64
				for b.Loop() {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
					sent += int64(size)
				}
				for got.Load() < sent {
					runtime.Gosched()
				}
			})
		}
	}
}

// BenchmarkThroughputPairs compares a session over TCP with the raw TCP
// connection in one run, interleaved: each iteration sends a burst through
// the raw connection, then the same burst through the session, each timed
// until its reader has received every byte. Interleaving keeps the two
// figures comparable on a machine whose load changes (separate benchmarks
// run seconds apart). It reports both rates and session/raw, the
// throughput ratio.
func BenchmarkThroughputPairs(b *testing.B) {
	const burst = 8 << 20
	for _, size := range []int{32 << 10, 1 << 10} {
		b.Run("size="+sizeName(size), func(b *testing.B) {
			rc, rs, rstop := benchPair(b, "raw", nil)
			defer rstop()
			sc, ss, sstop := benchPair(b, "session", nil)
			defer sstop()
			rdone, sdone := make(chan struct{}), make(chan struct{})
			go drainBursts(rs, burst, rdone)
			go drainBursts(ss, burst, sdone)
			buf := make([]byte, size)
			send := func(c net.Conn, done chan struct{}) time.Duration {
				start := time.Now()
				for sent := 0; sent < burst; sent += size {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				<-done
				return time.Since(start)
			}
			b.SetBytes(2 * burst)
			b.ReportAllocs()
			var raw, sess time.Duration
			for b.Loop() {
				raw += send(rc, rdone)
				sess += send(sc, sdone)
			}
			mbps := func(d time.Duration) float64 { return float64(b.N) * burst / d.Seconds() / 1e6 }
			b.ReportMetric(mbps(raw), "raw-MB/s")
			b.ReportMetric(mbps(sess), "session-MB/s")
			b.ReportMetric(raw.Seconds()/sess.Seconds(), "session/raw")
		})
	}
}

// drainBursts reads s in bursts of n bytes, signalling done after each.
func drainBursts(s net.Conn, n int, done chan<- struct{}) {
	buf := make([]byte, 64<<10)
	for {
		for got := 0; got < n; {
			k, err := s.Read(buf[:min(len(buf), n-got)])
			if err != nil {
				return
			}
			got += k
		}
		done <- struct{}{}
	}
}

// BenchmarkRead reads what the peer writes, raw and through a session: the
// allocations are those of Read.
func BenchmarkRead(b *testing.B) {
	for _, via := range []string{"raw", "session"} {
		b.Run("size=32KiB/via="+via, func(b *testing.B) {
			c, s, stop := benchPair(b, via, nil)
			defer stop()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					if _, err := s.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 32<<10)
			b.SetBytes(32 << 10)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResume measures the time from the loss of a connection to the
// first byte after it: through a session (the client's transport is
// closed; the Tether redials at once, the session resumes, and a byte
// written meanwhile arrives), against a raw re-dial (close, dial, write a
// byte, read it).
func BenchmarkResume(b *testing.B) {
	b.Run("via=raw", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		acc := make(chan net.Conn, 1)
		go func() {
			for {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				acc <- s
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s := <-acc
		one := make([]byte, 1)
		for b.Loop() {
			c.Close()
			s.Close()
			if c, err = net.Dial("tcp", ln.Addr().String()); err != nil {
				b.Fatal(err)
			}
			s = <-acc
			c.Write(one)
			if _, err := io.ReadFull(s, one); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		s.Close()
	})
	b.Run("via=session", func(b *testing.B) {
		// A handler that redials at once, as the raw side does.
		immediate := tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.Reconnect })
		c, s, stop := benchPair(b, "session", immediate)
		defer stop()
		sc := c.(*session.Conn)
		one := make([]byte, 1)
		for b.Loop() {
			gen := sc.Tether().Generation()
			sc.Tether().Conn().Close()
			if _, err := sc.Write(one); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(s, one); err != nil {
				b.Fatal(err)
			}
			// The byte may have gone out before the loss was seen: wait
			// for the resume so that the next round starts on it.
			for sc.Tether().Generation() == gen {
				runtime.Gosched()
			}
		}
	})
}

// BenchmarkIdleSession measures the memory of an idle session, both ends
// together, after a first exchange and an idle interval (which frees the
// buffers): heap and goroutine stacks, per session.
func BenchmarkIdleSession(b *testing.B) {
	const n = 200
	idle := session.WithKeepAlive(100*time.Millisecond, 10*time.Second)
	for b.Loop() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		sl := session.NewListener(ln, idle)
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		conns := make([]net.Conn, 0, 2*n)
		one := make([]byte, 1)
		for range n {
			c, err := session.Dial(context.Background(), &tethertcp.Dialer{}, sl.Addr().String(), nil, idle)
			if err != nil {
				b.Fatal(err)
			}
			s, err := sl.Accept()
			if err != nil {
				b.Fatal(err)
			}
			c.Write(one)
			io.ReadFull(s, one)
			conns = append(conns, c, s)
		}
		time.Sleep(500 * time.Millisecond) // an idle interval and its ping
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		per := float64(ms1.HeapInuse+ms1.StackInuse-ms0.HeapInuse-ms0.StackInuse) / n
		b.ReportMetric(per, "B/session")
		for _, c := range conns {
			c.(*session.Conn).Close()
		}
		sl.Close()
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
