package main

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	tetherquic "github.com/io-tether/tether/quic"
)

// A quicListener is the quic package's Listener of streams, keeping the
// QUIC connections of the streams it accepted: drain waits for their peers
// to close them, and Kill closes them, telling the peers (a server crash in
// the tests).
type quicListener struct {
	*tetherquic.Listener

	mu    sync.Mutex
	conns map[*quic.Conn]struct{}
}

// listenQUIC listens on addr over QUIC.
func listenQUIC(addr string, tc *tls.Config) (*quicListener, error) {
	ln, err := tetherquic.Listen(addr, tc, nil)
	if err != nil {
		return nil, err
	}
	return &quicListener{Listener: ln, conns: make(map[*quic.Conn]struct{})}, nil
}

// Accept returns the next stream, and notes its connection.
func (l *quicListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	qc := c.(*tetherquic.StreamConn).QUICConn()
	l.mu.Lock()
	defer l.mu.Unlock()
	for old := range l.conns {
		if old.Context().Err() != nil {
			delete(l.conns, old) // gone: forget it
		}
	}
	l.conns[qc] = struct{}{}
	return c, nil
}

// Addr returns the UDP address listened on.
func (l *quicListener) Addr() string { return l.Listener.Addr().String() }

// Kill closes every QUIC connection, telling the peers.
func (l *quicListener) Kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.CloseWithError(0, "tcat: closing")
	}
}

// drain waits until the peers have closed every QUIC connection, or for
// grace at most.
func (l *quicListener) drain(grace time.Duration) {
	l.mu.Lock()
	conns := make([]*quic.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for _, c := range conns {
		select {
		case <-c.Context().Done():
		case <-timer.C:
			return
		}
	}
}
