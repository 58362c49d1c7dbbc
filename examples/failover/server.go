package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A server answers each line "N" with "N NAME". It can stop and start
// again on the same address. Its methods are for one goroutine.
type server struct {
	name string
	addr string // once started, the address it listens on

	ln     net.Listener       // nil while stopped
	cancel context.CancelFunc // ends the connections of ln
	wg     sync.WaitGroup     // the goroutines of ln and its connections
}

// serveUntil runs one server on cfg.serve until ctx is done.
func serveUntil(ctx context.Context, cfg config, stdout io.Writer) error {
	s := &server{name: cfg.name, addr: cfg.serve}
	if s.name == "" {
		s.name = cfg.serve
	}
	if err := s.start(); err != nil {
		return err
	}
	defer s.stop()
	fmt.Fprintf(stdout, "serving as %s on %s\n", s.name, s.addr)
	<-ctx.Done()
	return ctx.Err()
}

// start listens on s.addr, and learns the port when it was 0.
func (s *server) start() error {
	ln, err := net.Listen("tcp", s.addr)
	// After a stop, a client's connection may hold the port for a moment
	// (as its local address): retry briefly.
	for tries := 0; err != nil && tries < 50; tries++ {
		time.Sleep(20 * time.Millisecond)
		ln, err = net.Listen("tcp", s.addr)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.ln, s.cancel, s.addr = ln, cancel, ln.Addr().String()
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.answer(ctx, c) })
		}
	})
	return nil
}

// answer answers the lines of c until ctx ends.
func (s *server) answer(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := fmt.Fprintf(c, "%s %s\n", sc.Text(), s.name); err != nil {
			return
		}
	}
}

// running reports whether s is listening.
func (s *server) running() bool { return s.ln != nil }

// stop closes the listener, then every connection (FIN), and waits for the
// server's goroutines. The listener goes first, so that a client that sees
// its connection end finds the port closed.
func (s *server) stop() {
	if s.ln == nil {
		return
	}
	s.ln.Close()
	s.cancel()
	s.wg.Wait()
	s.ln = nil
}
