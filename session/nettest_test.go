package session_test

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
)

// TestNetConn checks that a session's ends behave as net.Conns.
func TestNetConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		sl := session.NewListener(ln, session.WithLinger(100*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := session.Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil, session.WithLinger(100*time.Millisecond))
		if err != nil {
			sl.Close()
			return nil, nil, nil, err
		}
		s, err := sl.AcceptSession()
		if err != nil {
			c.Close()
			sl.Close()
			return nil, nil, nil, err
		}
		return c, s, func() { c.Close(); s.Close(); sl.Close() }, nil
	})
}
