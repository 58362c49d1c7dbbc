package tethertest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/tethertest"
)

func TestRecorder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d tethertest.Dialer
		rec := &tethertest.Recorder{Next: tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
			if ev.Kind == tether.Unreachable {
				return tether.GiveUp
			}
			return tether.Reconnect
		})}
		tt := tethertest.Dial(t, &d, "server", rec)
		require.Equal(t, []tether.EventKind{tether.Connected}, rec.Kinds())
		connectedAt := time.Now()

		s := d.Server(t)
		time.Sleep(time.Second) // virtual: the loss comes a second later
		d.FailNext(1, nil)
		s.Reset()
		_, err := tt.Read(make([]byte, 1))
		require.Error(t, err)

		ev := rec.WaitFor(t, tether.Unreachable, 1)
		require.Equal(t, "server", ev.Dialed)
		require.Equal(t, 1, rec.Count(tether.Disconnected))
		recs := rec.Records()
		require.Len(t, recs, 3)
		require.Equal(t, tether.GiveUp, recs[2].Action)
		require.Equal(t, tether.Reconnect, recs[1].Action)
		require.Equal(t, connectedAt, recs[0].At)
		require.Equal(t, connectedAt.Add(time.Second), recs[1].At)
		require.Contains(t, rec.String(), "[connected disconnected(")
	})
}

func TestRecorderWaitBadCountAndCancel(t *testing.T) {
	var rec tethertest.Recorder
	_, err := rec.Wait(t.Context(), tether.Connected, 0)
	require.ErrorContains(t, err, "n must be at least 1")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = rec.Wait(ctx, tether.Connected, 1)
	require.True(t, errors.Is(err, context.Canceled))
}

func TestRecorderWaitForFailsOnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec tethertest.Recorder
		msg := runFatal(t, func(tb testing.TB) { rec.WaitFor(tb, tether.Reconnected, 1) })
		require.Contains(t, msg, "reconnected event #1: none within 30s")
	})
}

// A Recorder keeps what the handler decided, so a test can wait for an event
// and look at it.
func ExampleRecorder() {
	ctx := context.Background()
	var d tethertest.Dialer
	var rec tethertest.Recorder // decides Reconnect on every event
	t, err := tether.Dial(ctx, &d, "server:1", &rec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()

	s, _ := d.Accept(ctx)
	s.Close()
	go func() {
		s, _ := d.Accept(ctx)
		s.Write([]byte("!"))
	}()
	io.ReadFull(t, make([]byte, 1))

	ev, _ := rec.Wait(ctx, tether.Reconnected, 1)
	fmt.Println(rec.String())
	fmt.Println("reconnected to", ev.Dialed)
	// Output:
	// [connected disconnected(EOF) reconnected]
	// reconnected to server:1
}
