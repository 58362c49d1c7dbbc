package tcp

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The Dialer's keep-alive fields win where set; the NetDialer's fill the
// rest, as net.Dialer reads them; probes stay on unless turned off.
func TestKeepAliveMergesNetDialer(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name string
		d    Dialer
		want net.KeepAliveConfig // Enable false: probes off
	}{
		{"zero", Dialer{}, net.KeepAliveConfig{Enable: true}},
		{"own fields", Dialer{KeepAliveConfig: net.KeepAliveConfig{Idle: 7 * s, Count: 4}},
			net.KeepAliveConfig{Enable: true, Idle: 7 * s, Count: 4}},
		{"off", Dialer{NoKeepAlive: true, KeepAliveConfig: net.KeepAliveConfig{Idle: 7 * s}}, net.KeepAliveConfig{}},
		{"base config fills zero fields",
			Dialer{KeepAliveConfig: net.KeepAliveConfig{Interval: 2 * s},
				NetDialer: &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 9 * s, Interval: 8 * s, Count: 5}}},
			net.KeepAliveConfig{Enable: true, Idle: 9 * s, Interval: 2 * s, Count: 5}},
		{"base config taken even when not enabled",
			Dialer{NetDialer: &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Idle: 9 * s}}},
			net.KeepAliveConfig{Enable: true, Idle: 9 * s}},
		{"base KeepAlive is idle and interval",
			Dialer{NetDialer: &net.Dialer{KeepAlive: 11 * s}},
			net.KeepAliveConfig{Enable: true, Idle: 11 * s, Interval: 11 * s}},
		{"base KeepAlive yields to an enabled base config",
			Dialer{NetDialer: &net.Dialer{KeepAlive: 11 * s, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Count: 3}}},
			net.KeepAliveConfig{Enable: true, Count: 3}},
		{"base turns probes off", Dialer{NetDialer: &net.Dialer{KeepAlive: -1}}, net.KeepAliveConfig{}},
		{"own fields turn them back on",
			Dialer{KeepAliveConfig: net.KeepAliveConfig{Idle: 4 * s}, NetDialer: &net.Dialer{KeepAlive: -1}},
			net.KeepAliveConfig{Enable: true, Idle: 4 * s}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, on := tc.d.keepAlive()
			require.Equal(t, tc.want.Enable, on)
			require.Equal(t, tc.want, got)
			nd, err := tc.d.netDialer()
			require.NoError(t, err)
			if on {
				require.Equal(t, tc.want, nd.KeepAliveConfig, "the net.Dialer of the dial")
			} else {
				require.Negative(t, nd.KeepAlive, "the net.Dialer of the dial")
				require.False(t, nd.KeepAliveConfig.Enable)
			}
		})
	}
}
