package middleware_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

func TestFailoverNextAddress(t *testing.T) {
	tests := []struct {
		name    string
		mw      tether.Middleware
		kind    tether.EventKind
		attempt int
		addr    string
		want    string
	}{
		{"unreachable moves on", middleware.Failover(addrA, addrB, addrC), tether.Unreachable, 1, addrA, addrB},
		{"disconnected moves on", middleware.Failover(addrA, addrB, addrC), tether.Disconnected, 0, addrB, addrC},
		{"wraps around", middleware.Failover(addrA, addrB, addrC), tether.Unreachable, 3, addrC, addrA},
		{"unknown address starts at the first", middleware.Failover(addrA, addrB, addrC), tether.Unreachable, 1, "127.0.0.1:9", addrA},
		{"one address stays", middleware.Failover(addrA), tether.Unreachable, 1, addrA, addrA},
		{"connected is unchanged", middleware.Failover(addrA, addrB), tether.Connected, 0, addrA, addrA},
		{"reconnected is unchanged", middleware.Failover(addrA, addrB), tether.Reconnected, 2, addrB, addrB},
		{"sticky: a stable connection lost goes back to the first", middleware.StickyFailover(addrA, addrB, addrC), tether.Disconnected, 0, addrC, addrA},
		{"sticky: the first lost goes back to the first", middleware.StickyFailover(addrA, addrB, addrC), tether.Disconnected, 0, addrA, addrA},
		{"sticky: a flap moves on", middleware.StickyFailover(addrA, addrB, addrC), tether.Disconnected, 2, addrA, addrB},
		{"sticky: unreachable moves on", middleware.StickyFailover(addrA, addrB, addrC), tether.Unreachable, 1, addrB, addrC},
		{"sticky: connected is unchanged", middleware.StickyFailover(addrA, addrB), tether.Connected, 0, addrB, addrB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &tethertest.Recorder{}
			ev := tether.Event{Kind: tt.kind, Addr: tt.addr, Dialed: tt.addr, Attempt: tt.attempt}
			a, got := handle(tt.mw(n), ev)
			require.Equal(t, tether.Reconnect, a)
			require.Equal(t, tt.want, got.Addr, "Addr after %v at %s = %s, want %s", tt.kind, tt.addr, got.Addr, tt.want)
			require.Equal(t, tt.addr, got.Dialed, "Dialed is not changed")
			// Failover acts before next: next sees the address it chose.
			require.Len(t, n.Events(), 1)
			require.Equal(t, tt.want, n.Events()[0].Addr, "next saw Addr %s, want %s", n.Events()[0].Addr, tt.want)
		})
	}
}

func TestFailoverCallerSliceIsCopied(t *testing.T) {
	addrs := []string{addrA, addrB}
	h := middleware.Failover(addrs...)(reconnect)
	addrs[1] = addrC
	_, ev := handle(h, tether.Event{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Attempt: 1})
	require.Equal(t, addrB, ev.Addr, "Failover must not see later changes to the caller's slice")
}

// TestFailoverSeed is io-tether's example: server A writes "foo" and closes,
// the handler moves to server B, which writes "bar"; reading 6 bytes returns
// "foobar".
func TestFailoverSeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := fooBar(t.Context())
		tt := tethertest.Dial(t, n, addrA, tether.Chain(nil, middleware.Failover(addrA, addrB)))
		buf := make([]byte, 6)
		_, err := io.ReadFull(tt, buf)
		require.NoError(t, err)
		require.Equal(t, "foobar", string(buf))
		require.NoError(t, tt.Close())
		var got []string
		for _, d := range n.History() {
			got = append(got, d.Addr)
		}
		require.Equal(t, []string{addrA, addrB}, got)
	})
}

// TestStickyFailoverReturnsToPrimary: the primary is down at first, so the
// Tether fails over to the backup; when the backup's connection is lost after
// the primary came back, StickyFailover goes back to the primary where
// Failover goes on down the list.
func TestStickyFailoverReturnsToPrimary(t *testing.T) {
	for _, tt := range []struct {
		name string
		mw   tether.Middleware
		want string
	}{
		{"sticky", middleware.StickyFailover(addrA, addrB, addrC), addrA},
		{"plain", middleware.Failover(addrA, addrB, addrC), addrC},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := servers(t, map[string]func(net.Conn){addrA: hold, addrB: hold, addrC: hold})
				n.Down(addrA)
				tn := tethertest.Dial(t, n, addrA, tether.Chain(nil, tt.mw))
				require.Equal(t, addrB, tn.Addr(), "Dial failed over to the backup")
				done := drain(tn)
				time.Sleep(10 * time.Second) // stable
				n.Up(addrA)
				n.Down(addrB)
				time.Sleep(time.Second) // the default policy's first redial waits at most 200 ms
				log := n.History()
				require.Len(t, log, 3)
				require.Equal(t, tt.want, log[2].Addr, "the redial after losing the backup went to %s, want %s", log[2].Addr, tt.want)
				require.NoError(t, log[2].Err)
				require.NoError(t, tn.Close())
				<-done
			})
		})
	}
}

// TestStickyFailoverForcedReconnect: Tether.Reconnect on a backup, soon
// after Dial failed over to it, goes back to the primary. The event's
// Attempt still counts the failed dial before the backup's connection, but
// a forced reconnect is no failure: before the fix it moved on to C.
func TestStickyFailoverForcedReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){addrA: hold, addrB: hold, addrC: hold})
		n.Down(addrA)
		tn := tethertest.Dial(t, n, addrA, tether.Chain(nil, middleware.StickyFailover(addrA, addrB, addrC)))
		require.Equal(t, addrB, tn.Addr())
		done := drain(tn)
		n.Up(addrA)
		time.Sleep(100 * time.Millisecond) // within the stability period
		tn.Reconnect()
		time.Sleep(5 * time.Second) // the default policy's delay
		log := n.History()
		require.Len(t, log, 3)
		require.Equal(t, addrA, log[2].Addr, "the forced reconnect went to %s", log[2].Addr)
		require.NoError(t, log[2].Err)
		require.NoError(t, tn.Close())
		<-done
	})
}

// TestStickyFailoverFlappingPrimary: a primary that accepts and closes at
// once does not trap the Tether: the flap counts as a failed dial and
// StickyFailover moves on to the backup.
func TestStickyFailoverFlappingPrimary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){
			addrA: func(net.Conn) {}, // accept, close
			addrB: hold,
		})
		tn := tethertest.Dial(t, n, addrA, tether.Chain(nil, middleware.StickyFailover(addrA, addrB)))
		done := drain(tn)
		time.Sleep(time.Minute)
		require.Equal(t, addrB, tn.Addr())
		require.Equal(t, 2, len(n.History()), "one dial to the flapping primary, one to the backup")
		require.NoError(t, tn.Close())
		<-done
	})
}

var errHiccup = errors.New("hiccup")

type hiccupConn struct {
	net.Conn
	once bool
}

func (c *hiccupConn) Read(p []byte) (int, error) {
	if !c.once {
		c.once = true
		return 0, errHiccup
	}
	return c.Conn.Read(p)
}

// Failover counts from the address that failed (Event.Dialed): after an
// ignored error (the connection to A kept, though Failover had moved the
// address on), A's loss fails over to B, not back to A.
func TestFailoverAfterIgnore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := servers(t, map[string]func(net.Conn){addrA: hold, addrB: hold})
		n.Wrap(func(c *tethertest.Conn) net.Conn {
			if c.Index() == 0 {
				return &hiccupConn{Conn: c.Client()}
			}
			return c.Client()
		})
		policy := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			if errors.Is(ev.Err, errHiccup) {
				return tether.Ignore
			}
			ev.Delay = 10 * time.Millisecond
			return tether.Reconnect
		})
		tt := tethertest.Dial(t, n, addrA, tether.Chain(policy, middleware.Failover(addrA, addrB)))
		_, err := tt.Read(make([]byte, 1))
		require.ErrorIs(t, err, errHiccup) // ignored: the connection to A is kept
		done := drain(tt)
		synctest.Wait()
		n.Down(addrA)
		time.Sleep(time.Second)
		hist := n.History()
		require.Equal(t, addrB, hist[1].Addr, "the first dial after A's loss went back to A: %+v", hist)
		tt.Close()
		<-done
	})
}
