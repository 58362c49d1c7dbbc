package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// server is the embedded QUIC server: on each stream it waits for the
// client's hello, writes a welcome line, then echoes each line.
type server struct {
	cert      tls.Certificate
	resetKey  quic.StatelessResetKey
	ticketKey [32]byte
	addr      string

	mu      sync.Mutex
	run     int // how many times the server started
	conns   int // connections of this run
	udp     *net.UDPConn
	tr      *quic.Transport
	conn    *quic.Conn   // the latest connection
	stream  *quic.Stream // the latest stream
	running sync.WaitGroup
}

// start listens on addr, with 0-RTT on.
func (s *server) start(addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{s.cert}, NextProtos: []string{proto}}
	// Session tickets that a restarted server can still decrypt: the
	// client resumes, with 0-RTT.
	tc.SetSessionTicketKeys([][32]byte{s.ticketKey})
	// The same stateless reset key after a restart lets the server tell a
	// client at once that its connection is gone, when the client sends
	// more than a keep-alive.
	tr := &quic.Transport{Conn: udp, StatelessResetKey: &s.resetKey}
	ln, err := tr.ListenEarly(tc, &quic.Config{Allow0RTT: true})
	if err != nil {
		udp.Close()
		return err
	}
	s.mu.Lock()
	s.run++
	s.conns = 0
	s.udp, s.tr, s.addr = udp, tr, udp.LocalAddr().String()
	run := s.run
	s.mu.Unlock()
	s.running.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.conn = c
			n := s.conns
			s.mu.Unlock()
			s.running.Go(func() { s.serveConn(c, run, n) })
		}
	})
	return nil
}

// serveConn serves the streams of c, the conn-th connection of the run-th
// start.
func (s *server) serveConn(c *quic.Conn, run, conn int) {
	for n := 1; ; n++ {
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		s.mu.Lock()
		s.stream = st
		s.mu.Unlock()
		s.running.Go(func() {
			sc := bufio.NewScanner(st)
			if !sc.Scan() || sc.Text() != "hello" {
				st.CancelWrite(2)
				return
			}
			fmt.Fprintf(st, "welcome (server run %d, connection %d, stream %d)\n", run, conn, n)
			for sc.Scan() {
				fmt.Fprintf(st, "echo: %s\n", sc.Text())
			}
			st.Close()
		})
	}
}

// resetStream resets the latest stream, both ways.
func (s *server) resetStream() error {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	st.CancelRead(1)
	st.CancelWrite(1)
	return nil
}

// closeConn closes the latest connection, telling the client.
func (s *server) closeConn() error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	return c.CloseWithError(0, "closing")
}

// crash stops the server without a word to its clients.
func (s *server) crash() {
	s.mu.Lock()
	tr, udp := s.tr, s.udp
	s.tr, s.udp = nil, nil
	s.mu.Unlock()
	if tr == nil {
		return
	}
	tr.Close()
	udp.Close()
	s.running.Wait()
}

// restart crashes the server and starts it again on the same address, with
// new session ticket keys if newKeys.
func (s *server) restart(newKeys bool) error {
	s.crash()
	if newKeys {
		s.ticketKey = newKey()
	}
	return s.start(s.addr)
}

// newKey returns a random key.
func newKey() [32]byte {
	var k [32]byte
	rand.Read(k[:]) // crypto/rand never fails
	return k
}

// selfSigned makes the server's certificate, for 127.0.0.1, and a pool
// that trusts it, for the client. A real server has one from a CA.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots, nil
}
