package netdial

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/io-tether/tether"
)

func TestTimeout(t *testing.T) {
	base := &net.Dialer{Timeout: 3 * time.Second}
	for _, tc := range []struct {
		base    *net.Dialer
		timeout time.Duration
		want    time.Duration
	}{
		{nil, 0, 10 * time.Second},
		{nil, time.Second, time.Second},
		{base, 0, 3 * time.Second},
		{base, time.Second, time.Second},
		{nil, -1, 0},
	} {
		if got := Timeout(tc.base, tc.timeout, 10*time.Second); got != tc.want {
			t.Errorf("Timeout(%v, %v) = %v, want %v", tc.base, tc.timeout, got, tc.want)
		}
	}
}

func TestDialer(t *testing.T) {
	base := &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{}}
	nd, err := Dialer(base, 0, 10*time.Second, nil)
	if err != nil || nd.Timeout != 3*time.Second || nd.LocalAddr != base.LocalAddr || nd == base {
		t.Errorf("Dialer(base, 0) = %+v, %v; want a copy of base", nd, err)
	}
	neg := errors.New("negative")
	if _, err := Dialer(nil, -1, time.Second, neg); !errors.Is(err, neg) || !tether.IsPermanent(err) {
		t.Errorf("Dialer(nil, -1) error = %v, want a permanent %v", err, neg)
	}
}
