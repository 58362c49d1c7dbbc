//go:build !race

// The race detector perturbs allocation counts; .ci/run runs this file in a
// separate pass without -race.

package tether_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tcp"
)

// Semantics 8: the healthy Read and Write paths allocate nothing.
func TestHealthyPathAllocatesNothing(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		d := tether.DialerFunc(func(context.Context, string) (net.Conn, error) { return nopConn{}, nil })
		tt, err := tether.Dial(t.Context(), d, "a", nil)
		require.NoError(t, err)
		defer tt.Close()
		buf := make([]byte, 1024)
		allocs := testing.AllocsPerRun(1000, func() {
			tt.Read(buf)
			tt.Write(buf)
		})
		require.Zero(t, allocs, "allocations per Read+Write")
	})
	t.Run("tcp", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 1024)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
		tt, err := tcp.Dial(t.Context(), l.Addr().String(), nil)
		require.NoError(t, err)
		defer tt.Close()
		buf := make([]byte, 1)
		allocs := testing.AllocsPerRun(1000, func() {
			tt.Write(buf)
			tt.Read(buf)
		})
		require.Zero(t, allocs, "allocations per Write+Read over TCP")
	})
}
