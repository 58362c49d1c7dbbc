//go:build unix

package dialers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/dialers"
)

// A socket path longer than a socket address holds (108 bytes on Linux,
// 104 on the BSDs) can never be dialed: a bad address, permanent as one
// without a port is, and the default policy gives up at the first dial.
func TestUnixPathTooLong(t *testing.T) {
	path := "/tmp/" + strings.Repeat("x", 200) + ".sock"
	_, err := (&dialers.Unix{}).Dial(t.Context(), path)
	require.Error(t, err)
	require.True(t, tether.IsPermanent(err), "IsPermanent(%v) = false", err)
	require.Contains(t, err.Error(), "dial unix "+path)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tt, err := tether.Dial(ctx, &dialers.Unix{}, path, nil)
	require.Nil(t, tt)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "redialled until Dial's ctx ended")
}
