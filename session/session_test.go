package session_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether/session"
)

func TestEcho(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			sl := session.NewListener(tr.listen(t))
			go echo(sl)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, closeDialer := tr.dialer()
			defer closeDialer()
			c, err := session.Dial(ctx, d, sl.Addr().String(), quick())
			require.NoError(t, err)
			msg := []byte("hello, session")
			_, err = c.Write(msg)
			require.NoError(t, err)
			got := make([]byte, len(msg))
			_, err = io.ReadFull(c, got)
			require.NoError(t, err)
			require.Equal(t, msg, got)
			require.NoError(t, c.CloseWrite())
			_, err = c.Read(got)
			require.ErrorIs(t, err, io.EOF)
			require.NoError(t, c.Close())
			require.NoError(t, sl.Close())
		})
	}
}
