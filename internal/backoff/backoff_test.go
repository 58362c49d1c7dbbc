package backoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNominalGrowsAndCaps(t *testing.T) {
	c := Default
	require.Equal(t, time.Duration(0), c.Nominal(0))
	require.Equal(t, time.Second, c.Nominal(1))
	require.Equal(t, 1600*time.Millisecond, c.Nominal(2))
	require.Equal(t, 2560*time.Millisecond, c.Nominal(3))
	require.Equal(t, 120*time.Second, c.Nominal(100))
	require.Equal(t, 120*time.Second, c.Nominal(1<<30))
}

func TestDelayJitterBounds(t *testing.T) {
	c := Default
	require.Equal(t, time.Duration(0), c.Delay(0, 0))
	require.Equal(t, 200*time.Millisecond, c.Delay(0, 1))
	require.Equal(t, 800*time.Millisecond, c.Delay(1, 0))
	require.Equal(t, 1200*time.Millisecond, c.Delay(1, 1))
	require.Equal(t, time.Second, c.Delay(1, 0.5))
	for range 10000 {
		d := c.Delay(5, Rand())
		n := c.Nominal(5)
		if d < n*8/10 || d > n*12/10 {
			t.Fatalf("Delay(5) = %v, want within 20%% of %v", d, n)
		}
	}
}

func TestNormalize(t *testing.T) {
	got, err := Config{}.Normalize("p: ")
	require.NoError(t, err)
	require.Equal(t, Default, got)
	// A BaseDelay above the default cap, with no cap set: the cap rises
	// to it.
	got, err = Config{BaseDelay: 5 * time.Minute}.Normalize("p: ")
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, got.MaxDelay)
	require.Equal(t, 5*time.Minute, got.Nominal(3))
	for name, c := range map[string]Config{
		"negative base":  {BaseDelay: -1},
		"negative max":   {MaxDelay: -1},
		"multiplier < 1": {Multiplier: 0.5},
		"jitter > 1":     {Jitter: 1.5},
		"jitter < 0":     {Jitter: -0.1},
		"max < base":     {BaseDelay: time.Minute, MaxDelay: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Normalize("p: ")
			require.Error(t, err)
			require.Contains(t, err.Error(), "p: ")
		})
	}
}
