package tcp_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
)

func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var v int
	var serr error
	require.NoError(t, raw.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) }))
	require.NoError(t, serr)
	return v
}

// Keep-alive is on by default, off on request; UserTimeout sets
// TCP_USER_TIMEOUT; the per-attempt timeout has a default.
func TestSocketOptions(t *testing.T) {
	addr := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo).Addr()
	const tcpUserTimeout = 0x12

	c, err := (&tcp.Dialer{}).Dial(t.Context(), addr)
	require.NoError(t, err)
	require.Equal(t, 1, sockopt(t, c, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE))
	require.Equal(t, 0, sockopt(t, c, syscall.IPPROTO_TCP, tcpUserTimeout))
	c.Close()

	c, err = (&tcp.Dialer{
		NoKeepAlive: true,
		UserTimeout: 2 * time.Second,
	}).Dial(t.Context(), addr)
	require.NoError(t, err)
	require.Equal(t, 0, sockopt(t, c, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE))
	require.Equal(t, 2000, sockopt(t, c, syscall.IPPROTO_TCP, tcpUserTimeout))
	c.Close()

	c, err = (&tcp.Dialer{KeepAliveConfig: net.KeepAliveConfig{Idle: 7 * time.Second, Interval: 3 * time.Second, Count: 4}}).Dial(t.Context(), addr)
	require.NoError(t, err)
	require.Equal(t, 7, sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE))
	require.Equal(t, 3, sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL))
	require.Equal(t, 4, sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT))
	c.Close()

	// A NetDialer's settings fill the fields the Dialer leaves zero.
	c, err = (&tcp.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Interval: 2 * time.Second},
		NetDialer:       &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 9 * time.Second, Count: 5}},
	}).Dial(t.Context(), addr)
	require.NoError(t, err)
	require.Equal(t, 9, sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE))
	require.Equal(t, 2, sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL))
	require.Equal(t, 5, sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT))
	c.Close()

	c, err = (&tcp.Dialer{NetDialer: &net.Dialer{KeepAlive: -1}}).Dial(t.Context(), addr)
	require.NoError(t, err)
	require.Equal(t, 0, sockopt(t, c, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE), "a NetDialer that turns probes off")
	c.Close()

	// net.Dialer ignores Control when ControlContext is set: UserTimeout
	// goes in the hook that runs.
	var called bool
	c, err = (&tcp.Dialer{
		UserTimeout: 5 * time.Second,
		NetDialer: &net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error {
			called = true
			return nil
		}},
	}).Dial(t.Context(), addr)
	require.NoError(t, err)
	require.True(t, called, "the NetDialer's ControlContext ran")
	require.Equal(t, 5000, sockopt(t, c, syscall.IPPROTO_TCP, tcpUserTimeout), "TCP_USER_TIMEOUT with a NetDialer's ControlContext")
	c.Close()
}
