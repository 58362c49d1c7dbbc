package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/io-tether/tether"
)

// settle is how long a sample waits, with the client blocked in Read,
// before it ends the connection.
const settle = time.Millisecond

// reconnectTarget is the most a Tether may add to a raw re-dial over TCP,
// in microseconds (median): issue 13's target (round 1's was 25).
const reconnectTarget = 10

// A reconnectSample is one measured reconnect, a line of reconnect.csv.
type reconnectSample struct {
	Transport, Case, Via string
	Index                int
	Micros               float64
	Kind                 string // how the new connection came to be (tls, quic), or ""
}

// A client loses its connection and gets a new one.
type client interface {
	// next waits for the loss of the connection, gets a new one, and
	// returns when the new one's first byte (the greeting) was read.
	next() (time.Time, error)
	// kind says how the current connection came to be (see connKind).
	kind() string
	close()
}

// rawClient re-dials by hand, as code without a Tether does.
type rawClient struct {
	tr   *transport
	d    tether.Dialer
	addr string
	c    net.Conn
}

func (r *rawClient) next() (time.Time, error) {
	var b [1]byte
	if _, err := r.c.Read(b[:]); err == nil {
		return time.Time{}, errors.New("raw: read data from a connection that should be lost")
	}
	r.c.Close()
	c, err := r.d.Dial(context.Background(), r.addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("raw: redial: %w", err)
	}
	r.c = c
	if r.tr.clientFirst {
		if err := hello(c); err != nil {
			return time.Time{}, fmt.Errorf("raw: hello: %w", err)
		}
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return time.Time{}, fmt.Errorf("raw: greeting: %w", err)
	}
	t := time.Now()
	if b[0] != greetingByte {
		return time.Time{}, fmt.Errorf("raw: greeting %q", b[0])
	}
	return t, nil
}

func (r *rawClient) kind() string { return connKind(r.c) }
func (r *rawClient) close()       { r.c.Close() }

// tetherClient reads through a Tether, which reconnects by itself.
type tetherClient struct {
	t *tether.Tether
}

func (c *tetherClient) next() (time.Time, error) {
	var b [1]byte
	if _, err := c.t.Read(b[:]); err != nil {
		return time.Time{}, fmt.Errorf("tether: %w", err)
	}
	t := time.Now()
	if b[0] != greetingByte {
		return time.Time{}, fmt.Errorf("tether: greeting %q", b[0])
	}
	return t, nil
}

func (c *tetherClient) kind() string { return connKind(c.t.Conn()) }
func (c *tetherClient) close()       { c.t.Close() }

// A driver runs a client's next in a goroutine of its own for all the
// samples, as an application's reader goroutine would: a fresh goroutine per
// sample would make the raw re-dial pay for growing its stack every time.
type driver struct {
	cl   client
	go_  chan struct{}
	done chan result
}

type result struct {
	t   time.Time
	err error
}

func newDriver(cl client) *driver {
	d := &driver{cl: cl, go_: make(chan struct{}), done: make(chan result, 1)}
	go func() {
		for range d.go_ {
			t, err := cl.next()
			d.done <- result{t, err}
		}
	}()
	return d
}

func (d *driver) stop() { close(d.go_) }

// sample ends the connection of the server's end p, once the driver's
// client is blocked in Read, and returns the time from then until the client
// read the first byte of the new connection, and the server's end of the new
// connection.
func sample(s *server, p *peer, d *driver, endConn bool) (time.Duration, *peer, error) {
	d.go_ <- struct{}{}
	time.Sleep(settle)
	s.forget(p)
	t0 := time.Now()
	if endConn {
		p.end()
	} else {
		p.Close()
	}
	var r result
	select {
	case r = <-d.done:
	case <-time.After(setupTimeout):
		return 0, nil, errors.New("no new connection in time")
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	np, err := s.next()
	if err != nil {
		return 0, nil, err
	}
	return r.t.Sub(t0), np, nil
}

// runReconnect measures, for each transport and case, the time from a
// connection's loss to the first byte on the new one: a Tether whose handler
// reconnects at once against a raw re-dial, alternately.
func (b *bench) runReconnect() error {
	for _, tr := range b.cfg.transports {
		for _, rc := range tr.reconnect {
			b.progress("reconnect %s %s", tr.name, rc.name)
			if err := b.reconnectOf(tr, rc); err != nil {
				return fmt.Errorf("reconnect %s %s: %w", tr.name, rc.name, err)
			}
		}
	}
	return nil
}

func (b *bench) reconnectOf(tr *transport, rc reconnectCase) error {
	s, err := tr.serve(rc.variant)
	if err != nil {
		return err
	}
	defer s.close()
	dRaw, dTether := tr.dialer(), tr.dialer()
	defer closeDialer(dRaw)
	defer closeDialer(dTether)

	rc0, err := dialRaw(tr, dRaw, s.addr)
	if err != nil {
		return err
	}
	raw := &rawClient{tr: tr, d: dRaw, addr: s.addr, c: rc0}
	defer raw.close()
	rawPeer, err := s.next()
	if err != nil {
		return err
	}
	t, err := dialTether(tr, dTether, s.addr, reconnectAtOnce)
	if err != nil {
		return err
	}
	tt := &tetherClient{t: t}
	defer tt.close()
	ttPeer, err := s.next()
	if err != nil {
		return err
	}

	clients := []client{raw, tt}
	drivers := []*driver{newDriver(raw), newDriver(tt)}
	defer drivers[0].stop()
	defer drivers[1].stop()
	peers := []*peer{rawPeer, ttPeer}
	names := []string{"raw", "tether"}
	micros := [][]float64{nil, nil}
	want := expectedKind(tr.name, rc)
	const warmup = 3
	for i := range b.cfg.samples + warmup {
		for k := range 2 {
			j := (i + k) % 2
			d, np, err := sample(s, peers[j], drivers[j], rc.conn)
			if err != nil {
				return fmt.Errorf("%s sample %d: %w", names[j], i, err)
			}
			peers[j] = np
			kind := clients[j].kind()
			if kind != want {
				return fmt.Errorf("%s sample %d: a %q connection, want %q", names[j], i, kind, want)
			}
			if i < warmup {
				continue
			}
			us := float64(d.Nanoseconds()) / 1e3
			micros[j] = append(micros[j], us)
			b.reconnects = append(b.reconnects, reconnectSample{Transport: tr.name, Case: rc.name,
				Via: names[j], Index: i - warmup, Micros: us, Kind: kind})
		}
	}
	r := compared("reconnect", tr.name, rc.name, "us", median(micros[0]), median(micros[1]),
		pairedRatios(micros[1], micros[0]))
	if tr.name == "tcp" {
		r.Target = target{Kind: maxDelta, Limit: reconnectTarget}
	}
	b.rows = append(b.rows, r)
	return nil
}
