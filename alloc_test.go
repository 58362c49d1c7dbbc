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
	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
)

// Semantics 8: the healthy Read and Write paths allocate nothing.
func TestHealthyPathAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // of each Read and Write
		dial func(t *testing.T) *tether.Tether
	}{
		{"memory", 1024, func(t *testing.T) *tether.Tether {
			d := tether.DialerFunc(func(context.Context, string) (net.Conn, error) { return nopConn{}, nil })
			return tethertest.Dial(t, d, "a", nil)
		}},
		{"tcp", 1, func(t *testing.T) *tether.Tether {
			tr := transporttest.TCP
			srv := transporttest.StartServer(t, tr, func(_ context.Context, c net.Conn, _ int) { transporttest.EchoConn(c) })
			tt, err := tcp.Dial(t.Context(), srv.Addr(), nil)
			require.NoError(t, err)
			t.Cleanup(func() { tt.Close() })
			return tt
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := tc.dial(t)
			buf := make([]byte, tc.size)
			allocs := testing.AllocsPerRun(1000, func() {
				tt.Write(buf)
				tt.Read(buf)
			})
			require.Zero(t, allocs, "allocations per Write+Read of %d bytes", tc.size)
		})
	}
}
