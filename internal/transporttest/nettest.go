package transporttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

// testNetConn runs nettest.TestConn with a Tether as c1 and the server's
// end of its connection as c2. nettest reads to EOF, so the Tether gives up
// on the peer's clean EOF. A transport whose connections survive a write
// timeout must pass with no other disconnect (the Tether gives up on any);
// over one that they do not survive (WriteTimeoutBreaks), the Tether
// replaces the broken connection and c2 follows it to the new one.
func testNetConn(t *testing.T, tr Transport) {
	var (
		mu    sync.Mutex
		pipes []*tethertest.Recorder
	)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		conns := make(chan net.Conn)
		srv, err := startServer(t, tr, func(ctx context.Context, c net.Conn, _ int) {
			select {
			case conns <- c:
				<-ctx.Done() // c is the pipe's until the Server closes it
			case <-ctx.Done():
			}
		})
		if err != nil {
			return nil, nil, nil, err
		}
		rec := NewRecorder(func(ev *tether.Event) tether.Action {
			switch {
			case ev.Kind == tether.Disconnected && tr.WriteTimeoutBreaks && !errors.Is(ev.Err, io.EOF):
				return tether.Reconnect
			case ev.Kind == tether.Disconnected, ev.Kind == tether.Unreachable:
				return tether.GiveUp
			}
			return tether.Reconnect
		})
		mu.Lock()
		pipes = append(pipes, rec)
		mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		tt, err := tether.Dial(ctx, tr.Dialer(), srv.Addr(), rec)
		if err != nil {
			srv.Close()
			return nil, nil, nil, err
		}
		var first net.Conn
		select {
		case first = <-conns:
		case <-ctx.Done():
			tt.Close()
			srv.Close()
			return nil, nil, nil, fmt.Errorf("%s: the server did not accept the Tether's connection", tr.Name)
		}
		peer := newFollowConn(first, conns, tt.Done())
		stop = func() {
			tt.Close()
			peer.Close()
			srv.Close()
		}
		return tt, peer, stop, nil
	})
	mu.Lock()
	defer mu.Unlock()
	if tr.WriteTimeoutBreaks {
		// PastTimeout alone breaks a connection (a Write past its
		// deadline, then a roundtrip): the Tether must have replaced it.
		reconnects := 0
		for _, rec := range pipes {
			reconnects += rec.Count(tether.Reconnected)
		}
		if reconnects == 0 {
			t.Errorf("no reconnect in nettest.TestConn over %s, whose write timeouts break connections", tr.Name)
		}
		return
	}
	for i, rec := range pipes {
		for _, ev := range rec.Events() {
			if ev.Kind == tether.Disconnected && !errors.Is(ev.Err, io.EOF) {
				t.Errorf("pipe %d of nettest.TestConn (in the order of its subtests): Disconnected by %v, want no disconnect but the peer's EOF",
					i+1, ev.Err)
			}
		}
	}
}

// followConn is the server's end of a Tether's connection, which follows
// the Tether to its next connection when the one it uses fails, as a server
// that resumes sessions would. It returns the failure once the Tether is
// done.
type followConn struct {
	conns <-chan net.Conn // the connections the server accepts after the first
	done  <-chan struct{} // the Tether's Done
	stop  chan struct{}   // closed by Close

	sw   sync.Mutex // serialises moving to the next connection
	mu   sync.Mutex
	cur  net.Conn
	once sync.Once
}

func newFollowConn(c net.Conn, conns <-chan net.Conn, done <-chan struct{}) *followConn {
	return &followConn{conns: conns, done: done, stop: make(chan struct{}), cur: c}
}

func (f *followConn) current() net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// next returns the connection after old, which failed with err: waiting for
// the server to accept the Tether's reconnect, unless the Tether is done or
// f closed.
func (f *followConn) next(old net.Conn, err error) (net.Conn, error) {
	f.sw.Lock()
	defer f.sw.Unlock()
	if c := f.current(); c != old {
		return c, nil
	}
	select {
	case c := <-f.conns:
		f.mu.Lock()
		f.cur = c
		f.mu.Unlock()
		old.Close()
		return c, nil
	case <-f.done:
	case <-f.stop:
	}
	return nil, err
}

func (f *followConn) Read(p []byte) (int, error) {
	c := f.current()
	for {
		n, err := c.Read(p)
		if err == nil || n > 0 {
			return n, nil
		}
		if c, err = f.next(c, err); err != nil {
			return 0, err
		}
	}
}

func (f *followConn) Write(p []byte) (int, error) {
	c := f.current()
	n := 0
	for {
		m, err := c.Write(p[n:])
		n += m
		if err == nil {
			return n, nil
		}
		if c, err = f.next(c, err); err != nil {
			return n, err
		}
	}
}

func (f *followConn) Close() error {
	f.once.Do(func() { close(f.stop) })
	return f.current().Close()
}

func (f *followConn) LocalAddr() net.Addr                { return f.current().LocalAddr() }
func (f *followConn) RemoteAddr() net.Addr               { return f.current().RemoteAddr() }
func (f *followConn) SetDeadline(t time.Time) error      { return f.current().SetDeadline(t) }
func (f *followConn) SetReadDeadline(t time.Time) error  { return f.current().SetReadDeadline(t) }
func (f *followConn) SetWriteDeadline(t time.Time) error { return f.current().SetWriteDeadline(t) }
