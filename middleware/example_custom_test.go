package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// A Directory tells where a service lives now: a service registry, DNS SRV
// records, a configuration service.
type Directory interface {
	Lookup(ctx context.Context, service string) (addr string, err error)
}

// Resolve returns a Middleware that asks dir where service lives before each
// reconnect, and sends the next dial there: the Go counterpart of
// io-tether's asynchronous resolver.
//
// It acts before next, on Disconnected and Unreachable events only, so that
// the inner handlers see the new address; when the lookup fails, the next
// dial keeps the address it had. The lookup gets the handler's ctx, so Close
// interrupts it. Resolve keeps no state of its own: one value serves any
// number of Tethers. A nil dir gives up on the first event, as the built-ins
// do with a bad configuration.
func Resolve(dir Directory, service string) tether.Middleware {
	if dir == nil {
		return func(tether.DisconnectHandler) tether.DisconnectHandler {
			return tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
				ev.Err = errors.New("resolve: nil Directory")
				return tether.GiveUp
			})
		}
	}
	return func(next tether.DisconnectHandler) tether.DisconnectHandler {
		return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Disconnected || ev.Kind == tether.Unreachable {
				if addr, err := dir.Lookup(ctx, service); err == nil {
					ev.Addr = addr
				}
			}
			return next.HandleDisconnect(ctx, ev)
		})
	}
}

// mapDirectory is a Directory held in memory.
type mapDirectory struct {
	mu   sync.Mutex
	addr map[string]string
}

func (d *mapDirectory) Lookup(ctx context.Context, service string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.addr[service]; ok {
		return a, nil
	}
	return "", fmt.Errorf("no service %q", service)
}

func (d *mapDirectory) move(service, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addr[service] = addr
}

// This example writes a middleware, Resolve, that asks a directory where a
// service lives before each reconnect, checks it with tethertest, and uses
// it in a chain. The "chat" service moves from 127.0.0.1:7001 to
// 127.0.0.1:7002 while a Tether is connected to it.
func Example_customMiddleware() {
	dir := &mapDirectory{addr: map[string]string{"chat": "127.0.0.1:7001"}}

	// Every middleware should keep the rules of tethertest.
	fmt.Println("conformance:", tethertest.CheckMiddleware(Resolve(dir, "chat")))

	// Two servers in memory: 7001 says "foo", and the service moves to
	// 7002, which says "bar".
	var servers tethertest.Dialer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go servers.Serve(ctx, func(c *tethertest.Conn) {
		switch c.Addr() {
		case "127.0.0.1:7001":
			c.Write([]byte("foo"))
			dir.move("chat", "127.0.0.1:7002")
		case "127.0.0.1:7002":
			c.Write([]byte("bar"))
		}
	})

	h := tether.Chain(nil,
		middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond}),
		Resolve(dir, "chat"),
	)
	t, err := tether.Dial(ctx, &servers, "127.0.0.1:7001", h)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(t, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(buf), "from", t.Addr())
	// Output:
	// conformance: <nil>
	// foobar from 127.0.0.1:7002
}
