package tcp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/io-tether/tether"
	"github.com/io-tether/tether/middleware"
	"github.com/io-tether/tether/tcp"
)

// respServer runs commands as Redis parses them: RESP arrays, and any other
// line as an inline command. It kills its first connection with a reset
// once it has read cut bytes, as Redis killed under load does, and counts
// the commands of every later connection by name.
type respServer struct {
	l   net.Listener
	cut int64

	mu   sync.Mutex
	cmds map[string]int
	seen chan string // each command's name, as it runs
}

func startRESP(t *testing.T, cut int64) *respServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &respServer{l: l, cut: cut, cmds: map[string]int{}, seen: make(chan string, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if n == 0 {
					io.CopyN(io.Discard, c, s.cut)
					c.(*net.TCPConn).SetLinger(0) // a reset
					return
				}
				s.serve(c)
			})
		}
	})
	return s
}

func (s *respServer) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		name, err := readCommand(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.cmds[name]++
		s.mu.Unlock()
		select {
		case s.seen <- name:
		default:
		}
		c.Write([]byte("+OK\r\n"))
	}
}

func (s *respServer) commands() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for k, v := range s.cmds {
		m[k] = v
	}
	return m
}

// readCommand reads one command and returns its name, upper-cased.
func readCommand(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "*") {
		f := strings.Fields(line) // an inline command
		if len(f) == 0 {
			return "", nil
		}
		return strings.ToUpper(f[0]), nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return "", err
	}
	var name string
	for i := range n {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		size, err := strconv.Atoi(strings.TrimRight(hdr, "\r\n")[1:])
		if err != nil {
			return "", err
		}
		arg := make([]byte, size+2)
		if _, err := io.ReadFull(r, arg); err != nil {
			return "", err
		}
		if i == 0 {
			name = strings.ToUpper(string(arg[:size]))
		}
	}
	return name, nil
}

func resp(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

// A connection killed while a large SET is being written must not make the
// server run the rest of the value as commands. Under the default write
// policy the cut Write returns ErrDropped and its rest goes nowhere; the
// next command goes whole to the new connection. (Resending the rest made
// Redis run the tail of a 64 MiB value as 4.4 million INCR commands.)
func TestRESPNoCommandInjection(t *testing.T) {
	srv := startRESP(t, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := tether.Chain(nil, middleware.Backoff(middleware.BackoffConfig{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	tt, err := tcp.Dial(ctx, srv.l.Addr().String(), h)
	require.NoError(t, err)
	defer tt.Close()

	value := strings.Repeat("INCR injected\r\n", (64<<20)/15)
	set := resp("SET", "k", value)
	// A resent rest would make the server run, and answer, millions of
	// commands that nobody reads: bound the Write so that such a
	// regression fails instead of hanging.
	require.NoError(t, tt.SetWriteDeadline(time.Now().Add(20*time.Second)))
	n, err := tt.Write(set)
	require.ErrorIs(t, err, tether.ErrDropped, "Write(64 MiB SET) = %d, %v", n, err)
	require.Less(t, n, len(set))

	_, err = tt.Write(resp("PING"))
	require.NoError(t, err)
	select {
	case name := <-srv.seen:
		require.Equal(t, "PING", name, "the first command the new connection ran")
	case <-ctx.Done():
		t.Fatal("the server never ran PING")
	}
	r := bufio.NewReader(tt)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", line)
	require.Equal(t, map[string]int{"PING": 1}, srv.commands())
}
