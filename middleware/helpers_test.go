package middleware_test

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/io-tether/tether"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Loopback addresses of the fake servers. Nothing listens on them: the
// fakeNet dialer hands out net.Pipe ends.
const (
	addrA = "127.0.0.1:7001"
	addrB = "127.0.0.1:7002"
	addrC = "127.0.0.1:7003"
)

// errRefused is the dial error of a fakeNet address with no server, as the
// tcp dialer reports it: transient.
var errRefused error = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

// fakeNet is a Dialer for tests inside a synctest bubble: an address is up
// when a serve function is set for it, and each dial to it runs serve on the
// server end of a net.Pipe, in a goroutine. Every dial is recorded.
type fakeNet struct {
	mu    sync.Mutex
	serve map[string]func(net.Conn)
	dials []dialRecord
	conns []net.Conn // server ends, closed by down and closeAll
	wg    sync.WaitGroup
}

type dialRecord struct {
	addr string
	at   time.Time
	ok   bool
}

func newFakeNet() *fakeNet { return &fakeNet{serve: make(map[string]func(net.Conn))} }

func (n *fakeNet) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	serve := n.serve[addr]
	n.dials = append(n.dials, dialRecord{addr, time.Now(), serve != nil})
	if serve == nil {
		return nil, errRefused
	}
	c, s := net.Pipe()
	n.conns = append(n.conns, s)
	n.wg.Go(func() {
		defer s.Close()
		serve(s)
	})
	return c, nil
}

// up makes addr accept connections and run serve on each.
func (n *fakeNet) up(addr string, serve func(net.Conn)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.serve[addr] = serve
}

// down makes addr refuse connections and closes those it has.
func (n *fakeNet) down(addr string) {
	n.mu.Lock()
	delete(n.serve, addr)
	conns := n.conns
	n.conns = nil
	n.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// closeAll closes every server end and waits for the serve goroutines.
func (n *fakeNet) closeAll() {
	n.mu.Lock()
	n.serve = map[string]func(net.Conn){}
	conns := n.conns
	n.conns = nil
	n.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	n.wg.Wait()
}

// log returns the dials so far.
func (n *fakeNet) log() []dialRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]dialRecord(nil), n.dials...)
}

// dialsTo counts the dials to addr since at.
func (n *fakeNet) dialsTo(addr string, since time.Time) int {
	k := 0
	for _, d := range n.log() {
		if d.addr == addr && !d.at.Before(since) {
			k++
		}
	}
	return k
}

// hold is a serve function that keeps the connection until the client or
// the test closes it.
func hold(c net.Conn) { io.Copy(io.Discard, c) }

// sendAndClose returns a serve function that writes s and closes.
func sendAndClose(s string) func(net.Conn) {
	return func(c net.Conn) { c.Write([]byte(s)) }
}

// drain reads t until it fails, so that the Tether notices losses, and
// closes the returned channel then.
func drain(t *tether.Tether) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, t)
	}()
	return done
}

// reconnect is the innermost handler of most tests: it always reconnects.
var reconnect = tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action {
	return tether.Reconnect
})

// handle calls h on a copy of ev and returns the action and the event after
// the call.
func handle(h tether.DisconnectHandler, ev tether.Event) (tether.Action, tether.Event) {
	a := h.HandleDisconnect(context.Background(), &ev)
	return a, ev
}

// next is a handler that records the events it sees and answers with
// action (Reconnect by default), optionally changing the event first.
type next struct {
	action tether.Action
	change func(ev *tether.Event)

	mu   sync.Mutex
	seen []tether.Event
}

func (n *next) HandleDisconnect(_ context.Context, ev *tether.Event) tether.Action {
	n.mu.Lock()
	n.seen = append(n.seen, *ev)
	n.mu.Unlock()
	if n.change != nil {
		n.change(ev)
	}
	return n.action
}

func (n *next) events() []tether.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]tether.Event(nil), n.seen...)
}
