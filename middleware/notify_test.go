package middleware_test

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tethertest"
)

// Notify's copies carry the decision: the address and delay that next set,
// and the state the Tether enters.
func TestNotifySendsCopiesAfterNext(t *testing.T) {
	ch := make(chan tether.Event, 10)
	n := answer(tether.Reconnect, func(ev *tether.Event) { ev.Addr, ev.Delay = addrB, time.Second })
	h := middleware.Notify(ch)(n)
	evs := []tether.Event{
		{Kind: tether.Connected, Addr: addrA, Dialed: addrA, Generation: 1},
		{Kind: tether.Disconnected, Err: io.EOF, Addr: addrA, Dialed: addrA, Generation: 1},
		{Kind: tether.Unreachable, Err: errRefused, Addr: addrA, Dialed: addrA, Attempt: 1},
		{Kind: tether.Reconnected, Addr: addrA, Dialed: addrA, Attempt: 1, Generation: 2},
	}
	for _, ev := range evs {
		a, got := handle(h, ev)
		require.Equal(t, tether.Reconnect, a)
		require.Equal(t, addrB, got.Addr, "next's change is kept")
		want := ev
		want.Addr, want.Delay = addrB, time.Second
		want.State = tether.TransientFailure
		if ev.Kind == tether.Connected || ev.Kind == tether.Reconnected {
			want.State = tether.Ready
		}
		select {
		case c := <-ch:
			require.Equal(t, want, c, "the copy is the event as next left it, with the state it leads to")
		default:
			t.Fatalf("no copy of %v", ev.Kind)
		}
	}
	require.Len(t, n.Events(), len(evs), "next sees every event")
}

// TestNotifyNeverBlocks runs a Tether through reconnects while nobody reads
// the channel: nothing blocks, and NotifyDropped counts every event dropped.
func TestNotifyNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tt := range []struct {
			name string
			ch   chan tether.Event
		}{
			{"unbuffered", make(chan tether.Event)},
			{"full", make(chan tether.Event, 1)},
		} {
			var dropped atomic.Uint64
			n := fooBar(t.Context())
			tn, err := tether.Dial(context.Background(), n, addrA,
				tether.Chain(nil, middleware.NotifyDropped(tt.ch, &dropped), middleware.Failover(addrA, addrB)))
			require.NoError(t, err, tt.name)
			buf := make([]byte, 6)
			_, err = io.ReadFull(tn, buf)
			require.NoError(t, err, tt.name)
			require.Equal(t, "foobar", string(buf), tt.name)
			// connected, disconnected, reconnected: a full channel keeps
			// the first, an unbuffered one none.
			want := uint64(3 - cap(tt.ch))
			require.Equal(t, want, dropped.Load(), "%s: dropped = %d, want %d", tt.name, dropped.Load(), want)
			require.NoError(t, tn.Close())
		}
	})
}

func TestNotifyTetherEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan tether.Event, 10)
		n := fooBar(t.Context())
		tn := tethertest.Dial(t, n, addrA, tether.Chain(nil, middleware.Notify(ch), middleware.Failover(addrA, addrB)))
		_, err := io.ReadFull(tn, make([]byte, 6))
		require.NoError(t, err)
		require.NoError(t, tn.Close())
		var kinds []tether.EventKind
		var dialed []string
		for len(ch) > 0 {
			ev := <-ch
			kinds = append(kinds, ev.Kind)
			dialed = append(dialed, ev.Dialed)
		}
		require.Equal(t, []tether.EventKind{tether.Connected, tether.Disconnected, tether.Reconnected}, kinds)
		require.Equal(t, []string{addrA, addrA, addrB}, dialed)
	})
}

// A consumer that closes the channel once Done is closed gets no send on
// it after: a handler inside Notify that was deciding when Close came, and
// takes a moment to return once its ctx ended, returns first. Its copy says
// Shutdown, not the state its answer would have led to. (Done was closed by
// Close, and the late copy made Notify panic on the closed channel: a trial
// met it with a CircuitBreaker holding the redial.)
func TestNotifyNothingAfterDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan tether.Event, 10)
		var d tethertest.Dialer
		holding := func(next tether.DisconnectHandler) tether.DisconnectHandler {
			return tether.DisconnectHandlerFunc(func(ctx context.Context, ev *tether.Event) tether.Action {
				if ev.Kind == tether.Disconnected {
					<-ctx.Done()
					time.Sleep(time.Millisecond) // winds down
				}
				return next.HandleDisconnect(ctx, ev)
			})
		}
		tt := tethertest.Dial(t, &d, addrA, tether.Chain(nil, middleware.Notify(ch), holding))
		d.Server(t).Close()
		read := make(chan error, 1)
		go func() {
			_, err := tt.Read(make([]byte, 1))
			read <- err
		}()
		synctest.Wait() // the handler holds the redial
		require.NoError(t, tt.Close())
		<-tt.Done()
		close(ch) // Notify's send on it would panic
		require.ErrorIs(t, <-read, net.ErrClosed)
		var last tether.Event
		for ev := range ch {
			last = ev
		}
		require.Equal(t, tether.Disconnected, last.Kind, "the last copy: %v", last)
		require.Equal(t, tether.Shutdown, last.State, "the copy of the event decided during Close: %v", last)
	})
}
