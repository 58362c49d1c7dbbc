//go:build linux

package deadpeer

import (
	"context"
	"net"
	"os"
	"testing"

	"github.com/io-tether/tether/internal/transporttest"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(listenEnv); spec != "" {
		os.Exit(serveListeners(spec)) // the child of netns.listeners
	}
	transporttest.Main(m)
}

// startServer serves ln with handle until the test ends.
func startServer(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	listen := func(testing.TB, string) (transporttest.Listener, error) { return transporttest.NetListener(ln), nil }
	transporttest.StartServer(t, transporttest.Transport{Name: ln.Addr().Network(), Listen: listen},
		func(_ context.Context, c net.Conn, _ int) { handle(c) })
}

// echo writes back what it reads (see transporttest.EchoConn).
func echo(c net.Conn) { transporttest.EchoConn(c) }
