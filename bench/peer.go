package main

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	kitconn "github.com/go-kit/kit/util/conn"
	kitlog "github.com/go-kit/log"
	"github.com/io-tether/tether"
)

// runPeer measures write throughput over TCP through go-kit's
// util/conn.Manager beside a Tether and the raw connection, on the same
// connection, in turn. The Manager is write-only (it has no Read) and fails
// writes while it is disconnected, so only writes are compared.
func (b *bench) runPeer() error {
	tr := tcpTransport()
	s, err := tr.serve("")
	if err != nil {
		return err
	}
	defer s.close()
	d, release := tr.dialer()
	defer release()
	tt, err := dialPair(tr, s, d, "tether")
	if err != nil {
		return err
	}
	defer tt.close()
	raw := tt.c.(*tether.Tether).Conn()
	go sink(tt.p)

	// The Manager "dials" the Tether's connection, so that all three write
	// to the same socket. It never stops (it has no Close): once this part
	// is over its dialer fails.
	var over atomic.Bool
	kd := func(network, addr string) (net.Conn, error) {
		if over.Load() {
			return nil, errors.New("bench: over")
		}
		return noClose{raw}, nil
	}
	m := kitconn.NewManager(kd, "tcp", s.addr, time.After, kitlog.NewNopLogger())
	defer over.Store(true)

	for _, size := range sizes {
		cas := "write/" + sizeName(size)
		b.progress("peer gokit %s", cas)
		buf := make([]byte, size)
		op := func(w writer) func() (int, error) { return func() (int, error) { return w.Write(buf) } }
		mbps, err := b.rounds("peer", "tcp", cas, size, []contender{
			{"raw", op(raw)}, {"tether", op(tt.c)}, {"gokit", op(m)},
		})
		if err != nil {
			return fmt.Errorf("%s: %w", cas, err)
		}
		rt := throughputRow("peer", "tcp", "tether/"+cas, mbps, 1)
		rk := throughputRow("peer", "tcp", "gokit/"+cas, mbps, 2)
		rk.Target = target{}
		b.rows = append(b.rows, rt, rk)
	}
	return nil
}

// noClose is a connection that the Manager cannot close: it belongs to the
// Tether.
type noClose struct{ net.Conn }

func (noClose) Close() error { return nil }
