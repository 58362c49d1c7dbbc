package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/io-tether/tether/internal/transporttest"
	"github.com/io-tether/tether/session"
	"github.com/io-tether/tether/tethertest/faultproxy"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { transporttest.Main(m) }

// wait bounds each wait of the tests: generous, for a loaded machine.
const wait = 20 * time.Second

// A proc is tcat running in a goroutine, with pipes for its stdin, stdout
// and stderr.
type proc struct {
	stdin          *io.PipeWriter
	stdout, stderr *lines
	done           chan error
	cancel         context.CancelFunc
}

// startListener starts tcat with args, which make it listen over TCP,
// and returns it with the address it listens on.
func startListener(t *testing.T, args ...string) (*proc, string) {
	l := start(t, args...)
	return l, l.stderr.expect(t, `^tcat: listening on (\S+) \(tcp\)$`)[1]
}

// start runs tcat with args.
func start(t *testing.T, args ...string) *proc {
	ctx, cancel := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	p := &proc{stdin: inW, stdout: readLines(outR), stderr: readLines(errR), done: make(chan error, 1), cancel: cancel}
	go func() {
		err := run(ctx, args, inR, outW, errW)
		inR.Close() // the test's Writes fail rather than block
		outW.Close()
		errW.Close()
		p.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		select {
		case <-p.done:
		case <-time.After(wait):
			t.Errorf("tcat %q did not end", args)
		}
	})
	return p
}

// write writes s to the proc's stdin.
func (p *proc) write(t *testing.T, s string) {
	t.Helper()
	_, err := io.WriteString(p.stdin, s)
	require.NoError(t, err)
}

// end waits for the proc to return, and returns its error.
func (p *proc) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(wait):
		t.Fatalf("tcat did not end within %v", wait)
		return nil
	}
}

// hangUp ends a two-terminal session: the client's stdin ends first, the
// listener sees its peer finish, then the listener's stdin ends, and both
// exit without an error. (The client must finish first: a peer that
// finishes while stdin is open is a lost connection to tcat, which
// reconnects.)
func hangUp(t *testing.T, l, c *proc) {
	t.Helper()
	require.NoError(t, c.stdin.Close())
	l.stderr.expect(t, `the peer has finished$`)
	require.NoError(t, l.stdin.Close())
	require.NoError(t, l.end(t))
	require.NoError(t, c.end(t))
}

// lines collects the lines of a reader, for the test to wait for.
type lines struct {
	mu      sync.Mutex
	all     []string
	next    int // the first line not yet consumed by expect
	eof     bool
	changed chan struct{}
}

// readLines collects the lines of r in a goroutine.
func readLines(r io.Reader) *lines {
	l := &lines{changed: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			l.signal()
		}
		io.Copy(io.Discard, r)
		l.mu.Lock()
		l.eof = true
		l.mu.Unlock()
		l.signal()
	}()
	return l
}

// signal wakes an expect that waits, if any.
func (l *lines) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// expect consumes lines up to the first that matches re, and returns its
// submatches.
func (l *lines) expect(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(wait)
	for {
		l.mu.Lock()
		for l.next < len(l.all) {
			s := l.all[l.next]
			l.next++
			if m := rx.FindStringSubmatch(s); m != nil {
				l.mu.Unlock()
				return m
			}
		}
		eof, all := l.eof, strings.Join(l.all, "\n")
		l.mu.Unlock()
		if eof {
			t.Fatalf("no line matches %q before the end; lines:\n%s", re, all)
		}
		select {
		case <-l.changed:
		case <-timeout:
			t.Fatalf("no line matches %q within %v; lines:\n%s", re, wait, all)
		}
	}
}

// rest returns every line, once the reader has ended.
func (l *lines) rest(t *testing.T) []string {
	t.Helper()
	timeout := time.After(wait)
	for {
		l.mu.Lock()
		if l.eof {
			defer l.mu.Unlock()
			return l.all
		}
		l.mu.Unlock()
		select {
		case <-l.changed:
		case <-timeout:
			t.Fatalf("output not closed within %v", wait)
		}
	}
}

// certs makes a self-signed certificate for the servers of a test, and
// writes it to a file for tcat's -ca.
func certs(t *testing.T) (server *tls.Config, caFile string) {
	cert, certPEM, _, err := selfSigned("", time.Now())
	require.NoError(t, err)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, certPEM, 0o600))
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{defaultALPN}}, caFile
}

// transports returns the transports of the tests, with the flags that make
// tcat dial each.
func transports(t *testing.T) []struct {
	tr   transporttest.Transport
	args []string
} {
	tc, caFile := certs(t)
	listenWith := func(f func(addr string) (listener, error)) func(testing.TB, string) (transporttest.Listener, error) {
		return func(_ testing.TB, addr string) (transporttest.Listener, error) {
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			return f(addr)
		}
	}
	return []struct {
		tr   transporttest.Transport
		args []string
	}{
		{transporttest.TCP, nil},
		{transporttest.Transport{Name: "tls", Listen: listenWith(func(addr string) (listener, error) {
			return listenTLS(addr, tc)
		})}, []string{"-tls", "-ca", caFile}},
		{transporttest.Transport{Name: "quic", Listen: listenWith(func(addr string) (listener, error) {
			return listenQUIC(addr, tc)
		})}, []string{"-quic", "-ca", caFile}},
	}
}

// TestConnect: tcat against an echo server that restarts, over each
// transport; the exchange goes on across the restart, and ends cleanly when
// stdin ends.
func TestConnect(t *testing.T) {
	for _, tt := range transports(t) {
		t.Run(tt.tr.Name, func(t *testing.T) {
			srv := transporttest.StartServer(t, tt.tr, transporttest.Echo)
			p := start(t, append(tt.args, "-v", srv.Addr())...)
			p.stderr.expect(t, `msg="tether connected"`)
			p.write(t, "one\n")
			p.stdout.expect(t, "^one$")

			srv.Stop()
			srv.Restart()
			// The reader sees the connection end and the Tether
			// reconnects; what is written next goes to the new one.
			p.stderr.expect(t, `msg="tether disconnected"`)
			p.stderr.expect(t, `msg="tether reconnected"`)
			p.write(t, "two\n")
			p.stdout.expect(t, "^two$")

			// The end of stdin half-closes the connection; the echo
			// server finishes, and tcat with it.
			require.NoError(t, p.stdin.Close())
			require.NoError(t, p.end(t))
			require.Equal(t, []string{"one", "two"}, p.stdout.rest(t))
		})
	}
}

// TestListen is the two-terminal session of the package doc, over each
// transport: a listener and a client talk, the listener restarts, and
// they talk on.
func TestListen(t *testing.T) {
	for _, tt := range transports(t) {
		t.Run(tt.tr.Name, func(t *testing.T) {
			lflags := []string{"-v", "-l"}
			cflags := []string{"-v"}
			ca := filepath.Join(t.TempDir(), "tcat.pem")
			if tt.tr.Name != "tcp" {
				// The listener makes its certificate and key, and
				// keeps them there for its restart.
				lflags = append(lflags, "-"+tt.tr.Name, "-ca", ca)
				cflags = append(cflags, "-"+tt.tr.Name, "-ca", ca)
			}
			l := start(t, append(lflags, "127.0.0.1:0")...)
			addr := l.stderr.expect(t, `^tcat: listening on (\S+) \(`+tt.tr.Name+`\)$`)[1]
			if tt.tr.Name != "tcp" {
				fi, err := os.Stat(ca)
				require.NoError(t, err)
				require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the file holds a private key")
			}
			c := start(t, append(cflags, addr)...)
			c.write(t, "ping\n")
			l.stdout.expect(t, "^ping$")
			l.write(t, "pong\n")
			c.stdout.expect(t, "^pong$")

			// The listener stops (it tells the client), and another
			// starts on the same address.
			l.cancel()
			require.ErrorIs(t, l.end(t), context.Canceled)
			c.stderr.expect(t, `msg="tether disconnected"`)
			l = start(t, append(lflags, addr)...)
			if tt.tr.Name != "tcp" {
				l.stderr.expect(t, `^tcat: certificate from \S+: dial with -`+tt.tr.Name+` -ca `)
			}
			c.stderr.expect(t, `msg="tether reconnected"`)
			c.write(t, "ping again\n")
			l.stdout.expect(t, "^ping again$")
			l.write(t, "pong again\n")
			c.stdout.expect(t, "^pong again$")

			hangUp(t, l, c)
			require.Equal(t, []string{"pong", "pong again"}, c.stdout.rest(t))
			require.Equal(t, []string{"ping again"}, l.stdout.rest(t))
		})
	}
}

// TestListenInsecure: a TLS listener without -ca makes a certificate that
// a client accepts with -insecure.
func TestListenInsecure(t *testing.T) {
	l := start(t, "-v", "-l", "-tls", "127.0.0.1:0")
	l.stderr.expect(t, `^tcat: self-signed certificate \(SHA-256 [0-9a-f]{16}\.\.\.\): dial with -tls -insecure$`)
	addr := l.stderr.expect(t, `^tcat: listening on (\S+) \(tls\)$`)[1]
	c := start(t, "-tls", "-insecure", addr)
	c.write(t, "hello\n")
	l.stdout.expect(t, "^hello$")
	hangUp(t, l, c)
}

// TestUntrusted: a server whose certificate does not verify is a
// permanent error; tcat gives up at once.
func TestUntrusted(t *testing.T) {
	tc, _ := certs(t)
	_, otherCA := certs(t)
	srv := transporttest.StartServer(t, transporttest.Transport{Name: "tls",
		Listen: func(_ testing.TB, addr string) (transporttest.Listener, error) {
			return listenTLS("127.0.0.1:0", tc)
		}}, transporttest.Echo)
	p := start(t, "-tls", "-ca", otherCA, srv.Addr())
	require.ErrorContains(t, p.end(t), "certificate signed by unknown authority")
}

// TestUsage: a bad command line is a usage error, reported on stderr.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"a:1", "b:2"}, {"-tls", "-quic", "a:1"}, {"-ca", "x", "a:1"}, {"-l", "-tls", "-insecure", ":1"},
		{"-tls", "-ca", "x", "-insecure", "a:1"}, {"-w", "-1s", "a:1"}, {"nohostport"}, {"-nosuchflag", "a:1"},
		{"-l", "-w", "1s", ":1"}, {"-l", "-session", "-to", "127.0.0.1:1", "-w", "1s", ":1"},
	} {
		var stderr strings.Builder
		err := run(context.Background(), args, strings.NewReader(""), io.Discard, &stderr)
		require.ErrorIs(t, err, errUsage, "run(%q)", args)
		require.Contains(t, stderr.String(), "usage: tcat", "run(%q)", args)
	}
}

// TestFlagsAfterAddress: flags may follow the address, as in the relay
// command of the package doc (flag parsing alone stops at the first
// argument that is not a flag); both orders mean the same, and "--" ends
// the flags.
func TestFlagsAfterAddress(t *testing.T) {
	want := config{listen: true, session: true, to: "127.0.0.1:6379", wait: time.Minute, addr: ":9000"}
	for _, args := range [][]string{
		{"-l", "-session", ":9000", "-to", "127.0.0.1:6379"},
		{"-l", "-session", "-to", "127.0.0.1:6379", ":9000"},
		{":9000", "-l", "-session", "-to", "127.0.0.1:6379"},
		{"-l", "-session", "-to", "127.0.0.1:6379", "--", ":9000"},
	} {
		var stderr strings.Builder
		got, err := parseFlags(args, &stderr)
		require.NoError(t, err, "parseFlags(%q); stderr:\n%s", args, &stderr)
		require.Equal(t, want, got, "parseFlags(%q)", args)
	}
	for _, args := range [][]string{
		{":9000", "-l", "-nosuchflag"}, {":9000", "-l", ":9001"}, {"-l", "--", ":9000", "-v"},
	} {
		_, err := parseFlags(args, io.Discard)
		require.ErrorIs(t, err, errUsage, "parseFlags(%q)", args)
	}
}

// TestListenPeerLost: the listener's peer is lost with a clean close (FIN)
// while its stdin is open, and the chunks the listener writes before the
// client comes back reach the client on its next connection, in order.
// The first goes into the dead connection (TCP takes it) and the peer's
// reset comes back: then a second Write fails, or, if there is none, the
// connection is found reset when the client's next one replaces it.
// Before the fix, the listener took the EOF for the peer's end and lost
// them.
func TestListenPeerLost(t *testing.T) {
	for _, lost := range [][]string{{"one", "two"}, {"one"}} {
		t.Run(fmt.Sprint(len(lost)), func(t *testing.T) {
			l, addr := startListener(t, "-v", "-l", "127.0.0.1:0")
			p, err := faultproxy.New(addr, 1)
			require.NoError(t, err)
			defer p.Close()
			c := start(t, "-v", p.Addr())
			c.write(t, "ping\n")
			l.stdout.expect(t, "^ping$")

			require.NoError(t, p.SetMode(faultproxy.ModeRefuse)) // the client cannot come back yet
			p.CloseAll()
			l.stderr.expect(t, `the peer has finished$`)
			for _, s := range lost {
				l.write(t, s+"\n")
				time.Sleep(100 * time.Millisecond) // the dead peer's reset comes back
			}
			if len(lost) > 1 {
				l.stderr.expect(t, `connection from \S+: .*(reset|broken pipe)`)
			}
			require.NoError(t, p.SetMode(faultproxy.ModeForward))
			c.stderr.expect(t, `msg="tether reconnected"`)
			l.write(t, "three\n")
			c.stdout.expect(t, "^three$")

			hangUp(t, l, c)
			require.Equal(t, append(lost, "three"), c.stdout.rest(t))
		})
	}
}

// TestListenNoReplayOfDelivered: what the listener wrote after a peer's
// end (its CloseWrite) and that peer read is not sent again to the next
// peer, once the first has gone without a failed write.
func TestListenNoReplayOfDelivered(t *testing.T) {
	l, addr := startListener(t, "-v", "-l", "127.0.0.1:0")
	a, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, a.(*net.TCPConn).CloseWrite()) // its stdin was /dev/null
	l.stderr.expect(t, `the peer has finished$`)
	l.write(t, "line1\n")
	a.SetReadDeadline(time.Now().Add(wait))
	got, err := bufio.NewReader(a).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "line1\n", got)
	require.NoError(t, a.Close())

	b, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer b.Close()
	l.stderr.expect(t, `connection from \S+ replaced`)
	l.write(t, "line2\n")
	b.SetReadDeadline(time.Now().Add(wait))
	got, err = bufio.NewReader(b).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "line2\n", got, "the second peer first received a line that the first had read")
}

// TestSession: tcat -session on both ends, through a proxy that resets the
// connection again and again while lines flow both ways: every line
// arrives, once, in order.
func TestSession(t *testing.T) {
	t.Parallel()
	for _, tt := range transports(t) {
		if tt.tr.Name == "quic" {
			continue // the fault proxy is TCP
		}
		t.Run(tt.tr.Name, func(t *testing.T) {
			ca := filepath.Join(t.TempDir(), "tcat.pem")
			lflags := []string{"-v", "-l", "-session"}
			cflags := []string{"-v", "-session"}
			if tt.tr.Name != "tcp" {
				lflags = append(lflags, "-"+tt.tr.Name, "-ca", ca)
				cflags = append(cflags, "-"+tt.tr.Name, "-ca", ca)
			}
			l := start(t, append(lflags, "127.0.0.1:0")...)
			addr := l.stderr.expect(t, `^tcat: listening on (\S+) \(`+tt.tr.Name+`\)$`)[1]
			p, err := faultproxy.New(addr, 1)
			require.NoError(t, err)
			defer p.Close()
			c := start(t, append(cflags, p.Addr())...)

			var want []string
			for i := range 200 {
				up, down := fmt.Sprintf("up %d", i), fmt.Sprintf("down %d", i)
				c.write(t, up+"\n")
				l.write(t, down+"\n")
				want = append(want, up)
				if i%40 == 20 {
					require.Equal(t, 1, p.ResetAll())
					c.stderr.expect(t, `msg="tether reconnected"`)
				}
			}
			l.stdout.expect(t, "^up 199$")
			c.stdout.expect(t, "^down 199$")

			require.NoError(t, c.stdin.Close())
			require.NoError(t, l.stdin.Close())
			require.NoError(t, l.end(t))
			require.NoError(t, c.end(t))
			require.Equal(t, want, l.stdout.rest(t))
			for i, line := range c.stdout.rest(t) {
				require.Equal(t, fmt.Sprintf("down %d", i), line)
			}
		})
	}
}

// TestSessionEndsCleanly: both ends of a -session pipe exit 0 at once
// when the stdins end, whichever end sends last, over every transport.
// Over QUIC the end that closed its session last used to close its QUIC
// connection with its last frames unsent (the ack of the peer's bytes),
// and the peer's Close waited out its 5 s linger and failed: each end's
// Close now waits for the peer's answer to its close frame, and the
// listener for the client to close the connection.
func TestSessionEndsCleanly(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{"tcp", "tls", "quic", "quic", "quic", "quic"} { // QUIC's failed one run in three
		for _, last := range []string{"client", "listener"} {
			t.Run(tr+"/"+last+" sends last", func(t *testing.T) {
				ca := filepath.Join(t.TempDir(), "tcat.pem")
				var fl []string
				if tr != "tcp" {
					fl = []string{"-" + tr, "-ca", ca}
				}
				l := start(t, append(append([]string{"-l", "-session"}, fl...), "127.0.0.1:0")...)
				addr := l.stderr.expect(t, `^tcat: listening on (\S+) \(`)[1]
				c := start(t, append(append([]string{"-session"}, fl...), addr)...)
				sender, other := c, l
				if last == "listener" {
					sender, other = l, c
				}
				c.write(t, "hello\n") // the session is up before one end ends
				l.stdout.expect(t, "^hello$")
				require.NoError(t, other.stdin.Close())
				line := strings.Repeat("x", 199) + "\n"
				for range 2000 {
					sender.write(t, line)
				}
				start := time.Now()
				require.NoError(t, sender.stdin.Close())
				require.NoError(t, c.end(t))
				require.NoError(t, l.end(t))
				require.Less(t, time.Since(start), 3*time.Second, "the ends waited out a linger")
				got := 0
				for _, l := range other.stdout.rest(t) {
					if l+"\n" == line {
						got++
					}
				}
				require.Equal(t, 2000, got, "lines received")
			})
		}
	}
}

// TestSessionRefusesSecondClient: the listener serves one session; a
// second client is refused at the handshake, retries until its -w, and
// fails, rather than have its bytes acknowledged and dropped and exit 0.
// The first session goes on.
func TestSessionRefusesSecondClient(t *testing.T) {
	t.Parallel()
	l, addr := startListener(t, "-v", "-l", "-session", "127.0.0.1:0")
	c1 := start(t, "-session", addr)
	c1.write(t, "first\n")
	l.stdout.expect(t, "^first$")

	c2 := start(t, "-session", "-w", "1s", addr)
	go io.WriteString(c2.stdin, "second\n") // read only once connected: it fails when c2 ends
	require.ErrorContains(t, c2.end(t), "too many sessions")

	c1.write(t, "third\n")
	l.stdout.expect(t, "^third$")
	require.NoError(t, c1.stdin.Close())
	require.NoError(t, l.stdin.Close())
	require.NoError(t, l.end(t))
	require.NoError(t, c1.end(t))
	require.Equal(t, []string{"first", "third"}, l.stdout.rest(t))
}

// TestSessionInterruptStdinOpen: a session whose peer has finished (its
// CloseWrite) while stdin is still open (a terminal) ends when tcat is
// interrupted, although stdin's Read cannot be woken.
func TestSessionInterruptStdinOpen(t *testing.T) {
	l, addr := startListener(t, "-v", "-l", "-session", "127.0.0.1:0")
	c := start(t, "-v", "-session", addr)
	c.write(t, "hello\n")
	l.stdout.expect(t, "^hello$")
	require.NoError(t, l.stdin.Close())
	c.stderr.expect(t, `^tcat: session to \S+: the peer has finished$`)
	c.cancel()
	require.ErrorIs(t, c.end(t), context.Canceled)
}

// TestSessionPeerClosedStdinOpen: when the peer closes the whole session
// (it was interrupted) while stdin is still open, tcat ends at once, with
// an error: what stdin has left will reach nobody.
func TestSessionPeerClosedStdinOpen(t *testing.T) {
	l, addr := startListener(t, "-v", "-l", "-session", "127.0.0.1:0")
	c := start(t, "-session", addr)
	c.write(t, "hello\n")
	l.stdout.expect(t, "^hello$")
	l.cancel()
	require.ErrorIs(t, l.end(t), context.Canceled)
	// The listener's Close and its Listener's race to end the session.
	err := c.end(t)
	require.True(t, errors.Is(err, session.ErrPeerClosed) || errors.Is(err, session.ErrSessionLost),
		"tcat -session = %v, want an error of the ended session", err)
	require.True(t, strings.HasPrefix(err.Error(), "session to "+addr+": "), "the error names the session first: %v", err)
}

// TestSessionRelay: the relay pair carries a TCP service (an echo server)
// over a session, and a client of the service keeps its connection through
// resets between the two relays.
func TestSessionRelay(t *testing.T) {
	t.Parallel()
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
	l, addr := startListener(t, "-v", "-l", "-session", "-to", srv.Addr(), "127.0.0.1:0")
	p, err := faultproxy.New(addr, 1)
	require.NoError(t, err)
	defer p.Close()
	c := start(t, "-v", "-session", "-L", "127.0.0.1:0", p.Addr())
	local := c.stderr.expect(t, `^tcat: relaying (\S+) to \S+ over sessions \(tcp\)$`)[1]

	conn, err := net.Dial("tcp", local)
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	r := bufio.NewReader(conn)
	for i := range 50 {
		line := fmt.Sprintf("line %d\n", i)
		_, err := io.WriteString(conn, line)
		require.NoError(t, err)
		if i%10 == 5 {
			require.Equal(t, 1, p.ResetAll())
			c.stderr.expect(t, `msg="tether reconnected"`)
		}
		got, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, line, got)
	}
	// The end of the client's stream goes through to the server, whose
	// end comes back.
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	_, err = r.ReadString('\n')
	require.ErrorIs(t, err, io.EOF)
	l.stderr.expect(t, `session from \S+: ended$`)
	c.stderr.expect(t, `connection from \S+: ended$`)
}

// emfileListener fails its first n Accepts with EMFILE, as the Accept of a
// process out of file descriptors does.
type emfileListener struct {
	net.Listener
	n int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestRelaySurvivesEMFILE: a passing shortage of file descriptors does not
// end a relay's accept loop (it ended -L for good): it accepts again after
// a pause, as net/http does.
func TestRelaySurvivesEMFILE(t *testing.T) {
	up := transporttest.StartServer(t, transporttest.TCP, transporttest.Echo)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &emfileListener{Listener: inner, n: 3}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		ended <- relayEach(ctx, config{}, io.Discard, ln, "connection", up.Addr(), func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", up.Addr())
		})
	}()
	c, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	_, err = c.Write([]byte("hi"))
	require.NoError(t, err)
	got := make([]byte, 2)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err, "the relay stopped accepting")
	require.Equal(t, "hi", string(got))
	cancel()
	inner.Close() // as relayLocal's AfterFunc does
	c.Close()
	require.ErrorIs(t, <-ended, context.Canceled)
}

// lostConn is a session that carries part of a reply, then is lost.
type lostConn struct {
	net.Conn
	sent bool
}

func (c *lostConn) Read(p []byte) (int, error) {
	if !c.sent {
		c.sent = true
		return copy(p, "partial re"), nil
	}
	return 0, errors.New("tether/session: session lost")
}

func (c *lostConn) Write(p []byte) (int, error) { return len(p), nil }

// TestRelayResetsOnLoss: when the session breaks, the relay resets the
// local TCP connection, so that its application sees an error rather than
// an end of stream that would pass the cut reply for a whole one.
func TestRelayResetsOnLoss(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	app, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer app.Close()
	local, err := ln.Accept()
	require.NoError(t, err)
	pa, pb := net.Pipe()
	defer pb.Close()
	done := make(chan struct{})
	var broken error
	go func() { broken = relay(local, &lostConn{Conn: pa}); close(done) }()
	app.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(app)
	require.Equal(t, "partial re", string(got))
	require.Error(t, err, "the application must not see a clean end") // a reset
	app.Close()
	<-done
	require.ErrorContains(t, broken, "session lost", "relay returns the break, for tcat to say")
}

// TestSessionWaitBoundsHandshake: -w bounds a session's handshake with a
// server that takes the connection and says nothing, not only the
// outage: tcat gives up after about -w, not the 10 s handshake timeout.
func TestSessionWaitBoundsHandshake(t *testing.T) {
	t.Parallel()
	srv := transporttest.StartServer(t, transporttest.TCP, transporttest.Silent)
	begun := time.Now()
	c := start(t, "-session", "-w", "500ms", srv.Addr())
	err := c.end(t)
	require.ErrorContains(t, err, "no answer within the handshake timeout (500ms)")
	require.Less(t, time.Since(begun), 5*time.Second, "the session's own handshake timeout is 10 s")
}

// TestSessionListenerLogsRefusals: with -v, a session listener says why it
// refused a handshake: a client that forgot -session, here.
func TestSessionListenerLogsRefusals(t *testing.T) {
	t.Parallel()
	l, addr := startListener(t, "-v", "-l", "-session", "127.0.0.1:0")
	plain, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.Write([]byte("hello\n"))
	require.NoError(t, err)
	l.stderr.expect(t, `msg="tether/session: handshake failed" remote=\S+ err=".*does not speak tether-session.*it sent \\"hello\\\\n\\""`)
}

// TestRelayDialFailureSaid: a relay whose session cannot be set up says
// so on stderr without -v: its application sees only a reset.
func TestRelayDialFailureSaid(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there
	c := start(t, "-session", "-w", "300ms", "-L", "127.0.0.1:0", addr)
	local := c.stderr.expect(t, `^tcat: relaying (\S+) to \S+ over sessions \(tcp\)$`)[1]
	app, err := net.Dial("tcp", local)
	require.NoError(t, err)
	defer app.Close()
	c.stderr.expect(t, `^tcat: connection from \S+: .*connection refused`)
	app.SetReadDeadline(time.Now().Add(wait))
	_, err = io.ReadAll(app)
	require.Error(t, err, "a reset")
}

// TestListenPeerStopsReading: a peer that stops reading (dead without a
// word: its socket buffers fill) does not hold the listener: a reconnecting
// peer replaces it, and an interrupt ends tcat. (The listen loop blocked in
// its Write to the first, until the kernel gave up on it.)
func TestListenPeerStopsReading(t *testing.T) {
	t.Parallel()
	l, addr := startListener(t, "-l", "127.0.0.1:0")
	stalled, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer stalled.Close()
	go func() {
		chunk := strings.Repeat("x", 32<<10) + "\n"
		for {
			if _, err := io.WriteString(l.stdin, chunk); err != nil {
				return
			}
		}
	}()
	time.Sleep(time.Second) // the buffers fill: the Write blocks
	peer, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer peer.Close()
	_, err = peer.Write([]byte("hello\n"))
	require.NoError(t, err)
	l.stdout.expect(t, "^hello$")
	l.cancel()
	require.ErrorIs(t, l.end(t), context.Canceled)
}

// TestListenTLSStrayConnection: with -tls, a connection that never sends a
// TLS handshake (a port scan, a plain-TCP client by mistake) does not hold
// the listener: the next TLS client replaces it and is served.
func TestListenTLSStrayConnection(t *testing.T) {
	l := start(t, "-l", "-tls", "127.0.0.1:0")
	addr := l.stderr.expect(t, `^tcat: listening on (\S+) \(tls\)$`)[1]
	go func() {
		for {
			if _, err := io.WriteString(l.stdin, "tick\n"); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	stray, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer stray.Close()
	time.Sleep(300 * time.Millisecond) // a tick goes to the stray: its handshake waits
	peer, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	defer peer.Close()
	_, err = peer.Write([]byte("hello\n"))
	require.NoError(t, err)
	l.stdout.expect(t, "^hello$")
}

// TestRelayPassesResetOn: the service behind -to sends part of a reply and
// resets its connection; the relay pair passes the reset on, so that the
// client sees an error, as it would talking to the service directly, not a
// cut reply that ends cleanly.
func TestRelayPassesResetOn(t *testing.T) {
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer svc.Close()
	// The service resets once the client has the partial reply: Abort
	// sends its close frame ahead of bytes not sent yet (a reset cuts
	// them), so a reset that came first would cut this one too.
	cut := make(chan struct{})
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Read(make([]byte, 64)) // the request
				c.Write([]byte("partial re"))
				<-cut
				c.(*net.TCPConn).SetLinger(0)
				c.Close() // a reset: the reply is cut
			}()
		}
	}()
	_, addr := startListener(t, "-l", "-session", "-to", svc.Addr().String(), "127.0.0.1:0")
	c := start(t, "-session", "-L", "127.0.0.1:0", addr)
	local := c.stderr.expect(t, `^tcat: relaying (\S+) to \S+ over sessions \(tcp\)$`)[1]
	conn, err := net.Dial("tcp", local)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET\n"))
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len("partial re"))
	_, err = io.ReadFull(conn, got)
	require.NoError(t, err)
	require.Equal(t, "partial re", string(got))
	close(cut)
	rest, err := io.ReadAll(conn)
	require.Empty(t, rest)
	require.ErrorIs(t, err, syscall.ECONNRESET, "the relay's client after the service's reset")
}

// A service that the -to side cannot reach is a reset for the application
// too, not a clean and empty reply.
func TestRelayServiceDown(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := dead.Addr().String()
	dead.Close() // dials to down are refused
	l, addr := startListener(t, "-v", "-l", "-session", "-to", down, "127.0.0.1:0")
	c := start(t, "-session", "-L", "127.0.0.1:0", addr)
	local := c.stderr.expect(t, `^tcat: relaying (\S+) to \S+ over sessions \(tcp\)$`)[1]
	conn, err := net.Dial("tcp", local)
	if err == nil { // else the reset came before the dial returned
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(wait))
		_, err = conn.Read(make([]byte, 1))
	}
	require.ErrorIs(t, err, syscall.ECONNRESET, "the application, when the service is down")
	l.stderr.expect(t, `connection refused$`)
}
