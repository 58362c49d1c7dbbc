package main

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	kitconn "github.com/go-kit/kit/util/conn"
	kitlog "github.com/go-kit/log"
)

// runPeer measures write throughput over TCP through go-kit's
// util/conn.Manager beside a Tether and the raw connection, on the same
// connection, in turn. The Manager is write-only (it has no Read) and fails
// writes while it is disconnected, so only writes are compared.
func (b *bench) runPeer() error {
	l, err := openLink(tcpTransport())
	if err != nil {
		return err
	}
	defer l.close()
	go sink(l.p)

	// The Manager "dials" the Tether's connection, so that all three write
	// to the same socket. It never stops (it has no Close): once this part
	// is over its dialer fails.
	var over atomic.Bool
	kd := func(network, addr string) (net.Conn, error) {
		if over.Load() {
			return nil, errors.New("bench: over")
		}
		return noClose{l.raw}, nil
	}
	m := kitconn.NewManager(kd, "tcp", l.s.addr, time.After, kitlog.NewNopLogger())
	defer over.Store(true)

	for _, size := range sizes {
		cas := "write/" + sizeName(size)
		b.progress("peer gokit %s", cas)
		buf := make([]byte, size)
		mbps, err := b.rounds("peer", "tcp", cas, size, []contender{
			{"raw", call(l.raw, "write", buf)}, {"tether", call(l.t, "write", buf)}, {"gokit", call(m, "write", buf)},
		})
		if err != nil {
			return fmt.Errorf("%s: %w", cas, err)
		}
		rk := throughputRow("peer", "tcp", "gokit/"+cas, mbps, 2)
		rk.Target = target{}
		b.rows = append(b.rows, throughputRow("peer", "tcp", "tether/"+cas, mbps, 1), rk)
	}
	return nil
}

// noClose is a connection that the Manager cannot close: it belongs to the
// Tether.
type noClose struct{ net.Conn }

func (noClose) Close() error { return nil }
