package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// listen serves cfg.addr: one peer at a time, the newest connection
// replacing the current one. It copies stdin to the current connection and
// every connection to stdout, and returns once stdin has ended and the
// current peer has finished.
func listen(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) error {
	addr := listenAddr(cfg.addr)
	var (
		ln  listener
		err error
	)
	if !cfg.tls && !cfg.quic {
		ln, err = listenTCP(addr)
	} else {
		var tc *tls.Config
		if tc, err = serverTLS(cfg, stderr); err != nil {
			return err
		}
		if cfg.quic {
			ln, err = listenQUIC(addr, tc)
		} else {
			ln, err = listenTLS(addr, tc)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tcat: listening on %s (%s)\n", ln.Addr(), proto(cfg))
	if cfg.session {
		err = serveSessions(ctx, cfg, ln, stdin, stdout, stderr)
	} else {
		err = serve(ctx, ln, stdin, stdout, stderr, cfg.verbose)
	}
	if ql, ok := ln.(*quicListener); ok && err == nil {
		// Closing a QUIC connection at once could lose the FIN just
		// sent (the peer's stream then ends in error, not EOF): the
		// peer closes it once it has read everything.
		ql.drain(closeGrace)
	}
	ln.Close()
	return err
}

// closeGrace bounds how long the listen mode waits at the end for the peer
// to close a QUIC connection.
const closeGrace = 2 * time.Second

// A listener accepts net.Conns; for QUIC, each is a stream.
type listener interface {
	Accept() (net.Conn, error)
	Close() error
	Addr() string
}

// serve runs the listen mode's loop over ln.
func serve(ctx context.Context, ln listener, stdin io.Reader, stdout, stderr io.Writer, verbose bool) error {
	stop := make(chan struct{})
	defer close(stop)
	accepted := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	waiting := make(chan struct{}, 1) // a connection waits to replace the current one (see write)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			select {
			case waiting <- struct{}{}:
			default:
			}
			select {
			case accepted <- c:
			case <-stop:
				c.Close()
				return
			}
		}
	}()
	chunks := readChunks(stdin, stop)
	out := &lockedWriter{w: stdout} // a replaced connection's copy may still write

	type ended struct {
		c   net.Conn
		err error
	}
	readDone := make(chan ended)
	var (
		cur       net.Conn // the current connection, if any
		peerDone  bool     // cur's peer has finished sending
		stdinDone bool
		// afterEOF holds the chunks written to cur after its peer's EOF
		// (up to maxAfterEOF bytes). That EOF may have been a loss (a
		// connection closed in between): a dead connection takes the
		// first Write, and its peer resets it, which fails a later one.
		// So when a Write fails, or cur is replaced and has been reset
		// (wasReset), afterEOF goes to unsure, with the failed chunk,
		// and unsure goes first to the next connection. A connection
		// replaced otherwise counts as having delivered afterEOF: its
		// peer read it, and another peer must not get it again.
		afterEOF     [][]byte
		afterEOFSize int
		unsure       [][]byte
	)
	drop := func() {
		cur.Close()
		cur = nil
	}
	for {
		var in <-chan []byte // stdin is read only for a connection
		if cur != nil && !stdinDone {
			in = chunks
		}
		select {
		case c := <-accepted:
			select {
			case <-waiting: // the token of c, unless a write took it
			default:
			}
			if cur != nil {
				logf(stderr, verbose, "connection from %v replaced", cur.RemoteAddr())
				if wasReset(cur) {
					unsure = append(unsure, afterEOF...)
				}
				drop()
			}
			logf(stderr, verbose, "connection from %v", c.RemoteAddr())
			cur, peerDone = c, false
			afterEOF, afterEOFSize = nil, 0
			go func() {
				_, err := io.Copy(out, c)
				select {
				case readDone <- ended{c, err}:
				case <-stop:
				}
			}()
			for len(unsure) > 0 {
				if err := write(ctx, cur, unsure[0], waiting); err != nil {
					logf(stderr, verbose, "connection from %v: %v", cur.RemoteAddr(), err)
					drop()
					break
				}
				unsure = unsure[1:]
			}
			if cur == nil {
				continue
			}
			if stdinDone {
				closeWrite(cur)
			}
		case b, ok := <-in:
			if !ok {
				stdinDone = true
				closeWrite(cur)
				if peerDone {
					drop()
					return nil
				}
				continue
			}
			if err := write(ctx, cur, b, waiting); err != nil {
				logf(stderr, verbose, "connection from %v: %v", cur.RemoteAddr(), err)
				unsure = append(append(unsure, afterEOF...), b)
				drop()
				continue
			}
			if peerDone && afterEOFSize < maxAfterEOF {
				afterEOF = append(afterEOF, b)
				afterEOFSize += len(b)
			}
		case e := <-readDone:
			if e.c != cur {
				continue // a connection already replaced
			}
			if e.err != nil {
				logf(stderr, verbose, "connection from %v: %v", cur.RemoteAddr(), e.err)
				drop()
				continue
			}
			logf(stderr, verbose, "connection from %v: the peer has finished", cur.RemoteAddr())
			peerDone = true
			if stdinDone {
				drop()
				return nil
			}
		case err := <-acceptErr:
			return err
		case <-ctx.Done():
			if cur != nil {
				drop()
			}
			return ctx.Err()
		}
	}
}

// write writes b to c, unless a new connection comes to replace c, or ctx
// ends, first: it then closes c, which ends the Write with an error. A peer
// that stopped reading (a connection dead without a word, whose socket
// buffers are full), or a TLS client that never sends its handshake, would
// otherwise hold the loop, and neither a reconnecting peer nor an interrupt
// would be served.
func write(ctx context.Context, c net.Conn, b []byte, waiting <-chan struct{}) error {
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-waiting:
			c.Close()
		case <-ctx.Done():
			c.Close()
		case <-done:
		}
	}()
	_, err := c.Write(b)
	close(done)
	<-watched
	return err
}

// maxAfterEOF bounds the chunks kept after a peer's EOF: a peer that took
// this much after its EOF is reading (a lost one fails the second Write).
const maxAfterEOF = 1 << 20

// closeWrite shuts down the writing side of c.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// readChunks reads r in a goroutine and sends what it reads on the channel
// it returns, which it closes at the end of r or once stop is closed.
func readChunks(r io.Reader, stop <-chan struct{}) <-chan []byte {
	ch := make(chan []byte)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case ch <- buf[:n]:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// lockedWriter serialises the Writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p to the underlying Writer, one call at a time.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// netListener is a net.Listener as a listener.
type netListener struct{ net.Listener }

// Addr returns the address listened on.
func (l netListener) Addr() string { return l.Listener.Addr().String() }

// listenTCP listens on addr over TCP.
func listenTCP(addr string) (listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netListener{ln}, nil
}

// listenTLS listens on addr over TLS.
func listenTLS(addr string, tc *tls.Config) (listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netListener{tls.NewListener(ln, tc)}, nil
}
