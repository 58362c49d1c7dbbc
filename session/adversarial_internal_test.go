package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// pair is a session over loopback TCP: the client's and the server's end.
type pair struct {
	sl   *Listener
	c, s *Conn
}

// newPair returns a pair, closed when the test ends, which then checks that
// no goroutine is left behind.
func newPair(t *testing.T, opts ...Option) *pair {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil)
	require.NoError(t, err)
	s, err := sl.AcceptSession()
	require.NoError(t, err)
	p := &pair{sl, c, s}
	t.Cleanup(func() { p.close(t) })
	return p
}

func (p *pair) close(t *testing.T) {
	p.c.Close()
	p.s.Close()
	require.NoError(t, p.sl.Close())
}

// roundTrip checks that the session carries bytes both ways.
func (p *pair) roundTrip(t *testing.T, msg string) {
	t.Helper()
	for _, d := range [][2]*Conn{{p.c, p.s}, {p.s, p.c}} {
		_, err := d[0].Write([]byte(msg))
		require.NoError(t, err)
		got := make([]byte, len(msg))
		d[1].SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(d[1], got)
		require.NoError(t, err)
		require.Equal(t, msg, string(got))
	}
}

// resumeBytes returns a client's preface and resume message for p's
// session, MACed with its key unless forge.
func (p *pair) resumeBytes(attempt, recv uint64, forge bool) []byte {
	p.c.mu.Lock()
	h := hello{typ: msgResume, id: p.c.id, attempt: attempt, recv: recv}
	key := p.c.key
	p.c.mu.Unlock()
	h.nonce[0] = byte(attempt)
	h.mac = resumeMAC(key, &h, nil)
	if forge {
		h.mac[7] ^= 0x20
	}
	return h.append(putPreface(nil, roleClient))
}

// send writes b on a new connection to the listener and returns the
// server's reply (after its preface) and the connection.
func send(t *testing.T, addr string, b []byte) (reply, net.Conn) {
	t.Helper()
	r, raw, err := trySend(addr, b)
	if err != nil && raw != nil {
		raw.Close()
	}
	require.NoError(t, err)
	return r, raw
}

// trySend is send for any goroutine: it returns its error, and the
// connection once it has one.
func trySend(addr string, b []byte) (reply, net.Conn, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return reply{}, nil, err
	}
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Write(b); err != nil {
		return reply{}, raw, err
	}
	if err := readPreface(raw, roleServer); err != nil {
		return reply{}, raw, err
	}
	buf := make([]byte, 1, acceptLen)
	if _, err := io.ReadFull(raw, buf); err != nil {
		return reply{}, raw, err
	}
	if n := replyLen(buf[0]); n > 0 {
		buf = buf[:n]
		if _, err := io.ReadFull(raw, buf[1:]); err != nil {
			return reply{}, raw, err
		}
	}
	r, err := decodeReply(buf) // or the error of an unknown type
	return r, raw, err
}

func TestForgedResume(t *testing.T) {
	p := newPair(t)
	p.roundTrip(t, "before")
	addr := p.sl.Addr().String()

	// A bad MAC and an unknown id get the same answer.
	forged, raw := send(t, addr, p.resumeBytes(100, 0, true))
	raw.Close()
	unknown := p.resumeBytes(100, 0, false)
	unknown[prefaceLen+2] ^= 1 // the id
	gotUnknown, raw := send(t, addr, unknown)
	raw.Close()
	require.Equal(t, reply{typ: msgReject, code: rejectLost}, forged)
	require.Equal(t, forged, gotUnknown)

	// The session was not disturbed.
	require.Equal(t, tether.Ready, p.s.State())
	p.roundTrip(t, "after")
}

func TestReplayedResume(t *testing.T) {
	p := newPair(t)
	addr := p.sl.Addr().String()

	// A resume that the server accepts, as an eavesdropper records it...
	rec := p.resumeBytes(7, 0, false)
	r, first := send(t, addr, rec)
	require.Equal(t, byte(msgResumed), r.typ)
	first.Close()
	// ...cannot be played again: its attempt counter is not above the last.
	r, raw := send(t, addr, rec)
	raw.Close()
	require.Equal(t, reply{typ: msgReject, code: rejectStale}, r)

	// The client resumes with a higher attempt of its own, and goes on.
	p.c.mu.Lock()
	p.c.attempt = 7
	p.c.mu.Unlock()
	p.roundTrip(t, "after the replay")
}

// PROTOCOL.md 3.5: the server refuses (code 4) a resume whose recv lies
// outside what it can replay: beyond the bytes it wrote, or below those
// the client acknowledged, which it discarded. The session goes on: its
// client resumes. (Without the check the server answered RESUMED and
// replayed from a position it no longer held, or never reached.)
func TestResumeRecvOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		recv uint64 // the server wrote and had acknowledged 5 bytes
	}{
		{"beyond written", 6},
		{"below acknowledged", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			_, err := p.s.Write([]byte("hello"))
			require.NoError(t, err)
			p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadFull(p.c, make([]byte, 5))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return acked(p.s) }, 10*time.Second, time.Millisecond)

			r, raw := send(t, p.sl.Addr().String(), p.resumeBytes(7, tc.recv, false))
			raw.Close()
			require.Equal(t, reply{typ: msgReject, code: rejectBad}, r, "resume with recv %d", tc.recv)

			p.c.mu.Lock()
			p.c.attempt = 7 // the refused resume's attempt counts: resume above it
			p.c.mu.Unlock()
			p.roundTrip(t, "after the refused resume")
		})
	}
}

func TestConcurrentResumes(t *testing.T) {
	p := newPair(t)
	addr := p.sl.Addr().String()
	// Many resumes of one session at once: they serialise, and the one
	// with the highest attempt holds the session in the end, whatever the
	// order they ran in.
	var wg sync.WaitGroup
	replies := make([]reply, 20)
	conns := make([]net.Conn, 20)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			replies[i], conns[i], err = trySend(addr, p.resumeBytes(uint64(10+i), 0, false))
			if err != nil {
				t.Errorf("resume %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	// A resume writes its Resumed reply before the server attaches the
	// transport, both under resumeMu: the replies say that every resume
	// has taken the lock, not that the last has let it go.
	p.s.resumeMu.Lock()
	p.s.resumeMu.Unlock()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	require.Equal(t, byte(msgResumed), replies[len(replies)-1].typ, "the highest attempt must win")
	p.s.mu.Lock()
	attempt, tr := p.s.attempt, p.s.tr
	p.s.mu.Unlock()
	require.Equal(t, uint64(10+len(replies)-1), attempt)
	require.NotNil(t, tr)
	require.Equal(t, conns[len(conns)-1].LocalAddr().String(), tr.RemoteAddr().String())
	for i, r := range replies {
		require.Contains(t, []byte{msgResumed, msgReject}, r.typ, "reply %d", i)
		if r.typ == msgReject {
			require.Equal(t, byte(rejectStale), r.code)
		}
	}
	// The client, whose transport was taken over, resumes above them all.
	p.c.mu.Lock()
	p.c.attempt = 100
	p.c.mu.Unlock()
	p.roundTrip(t, "after the resumes")
}

// A session sends one close frame at most: a Close after Listener.Close
// queued and sent one (and before the listener ended the session) queues no
// second one, whose sending would close closeSentCh twice.
func TestOneCloseFrame(t *testing.T) {
	p := newPair(t, WithLinger(100*time.Millisecond))
	p.roundTrip(t, "hi")
	p.s.mu.Lock()
	require.True(t, p.s.queueCloseLocked(closeLost), "the listener's close is queued")
	p.s.mu.Unlock()
	select {
	case <-p.s.closeSentCh:
	case <-time.After(10 * time.Second):
		t.Fatal("the close frame was not sent")
	}
	p.s.mu.Lock()
	require.False(t, p.s.queueCloseLocked(closeNormal), "a second close is not queued")
	p.s.mu.Unlock()
	p.s.Close() // would queue one too
	select {
	case <-p.s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the session")
	}
}

// acked reports whether the peer has acknowledged every byte c wrote.
func acked(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sAcked == c.sWritten
}

// An ack falls due ackDelay after the first byte received, even when the
// receiver's sender sleeps until its next ping (5 s off): a few bytes are
// acknowledged well within a second.
func TestAckDueWakesIdleSender(t *testing.T) {
	p := newPair(t)
	p.roundTrip(t, "hi")
	require.Eventually(t, func() bool { return acked(p.c) && acked(p.s) }, 3*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // both senders asleep, until their pings
	_, err := p.c.Write([]byte("hello"))
	require.NoError(t, err)
	start := time.Now()
	require.Eventually(t, func() bool { return acked(p.c) }, 4*time.Second, time.Millisecond,
		"the server did not acknowledge 5 bytes (it does not read them) before its ping")
	require.Less(t, time.Since(start), time.Second)
}

// CloseWrite returns at once, as a TCP connection's does, when a Write
// waits on a full buffer: the Write returns what it buffered and an error,
// and the peer reads exactly those bytes, then io.EOF.
func TestCloseWriteDuringBlockedWrite(t *testing.T) {
	p := newPair(t, WithLinger(0))
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		n, err := p.c.Write(make([]byte, 16<<20)) // the server does not read: its window and the client's buffer fill
		wrote <- result{n, err}
	}()
	require.Eventually(t, func() bool {
		p.c.mu.Lock()
		defer p.c.mu.Unlock()
		return p.c.snd.n == p.c.cfg.bufSize
	}, 10*time.Second, time.Millisecond, "the Write did not fill the buffer")
	done := make(chan error, 1)
	go func() { done <- p.c.CloseWrite() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		p.c.SetWriteDeadline(time.Now())
		t.Fatal("CloseWrite waited for the blocked Write")
	}
	w := <-wrote
	require.ErrorIs(t, w.err, net.ErrClosed)
	require.Less(t, w.n, 16<<20)
	p.s.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.Copy(io.Discard, p.s)
	require.NoError(t, err, "io.EOF after the bytes the Write buffered")
	require.Equal(t, int64(w.n), got)
}

// With a linger of 0, Close returns nil when the peer has acknowledged
// every byte: only the final frame's acknowledgement is missing, and no
// byte is at risk.
func TestCloseLingerZeroAllAcked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln)
	defer sl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil, WithLinger(0))
	require.NoError(t, err)
	s, err := sl.AcceptSession()
	require.NoError(t, err)
	defer s.Close()
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return acked(c) }, 5*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
}

// A handshake the server rejected as malformed reads as such, permanent,
// not as an exporter mismatch alone: a newer client's unknown flags get
// the same code.
func TestRejectBadError(t *testing.T) {
	err := rejectErr(rejectBad)
	require.True(t, tether.IsPermanent(err))
	require.ErrorContains(t, err, "rejected the handshake as malformed")
}

// Close reports bytes that a lost session will never deliver: the client
// wrote during an outage, the server restarted (it forgot the session),
// and Close's resume learns the session is lost. Close returned nil.
func TestCloseReportsBytesLostWithSession(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	sl := NewListener(ln)
	slow := tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected || ev.Kind == tether.Unreachable {
			ev.Delay = 500 * time.Millisecond
		}
		return tether.Reconnect
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, &tethertcp.Dialer{}, addr, slow, WithLinger(3*time.Second))
	require.NoError(t, err)
	s, err := sl.AcceptSession()
	require.NoError(t, err)
	_, err = c.Write([]byte("delivered"))
	require.NoError(t, err)
	_, err = io.ReadFull(s, make([]byte, 9))
	require.NoError(t, err)
	s.mu.Lock()
	tr := s.tr
	s.mu.Unlock()
	closeHard(tr)
	require.Eventually(t, func() bool { return c.State() != tether.Ready }, 5*time.Second, time.Millisecond)
	_, err = c.Write([]byte("never delivered"))
	require.NoError(t, err)
	require.NoError(t, sl.Close()) // the server restarts: it forgets the session
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	sl2 := NewListener(ln2)
	defer sl2.Close()
	// The first 9 bytes count too unless their ack came before the loss:
	// the server acks them 100 ms after they came, which a loaded machine
	// may let pass before this test kills the transport.
	c.mu.Lock()
	unacked := c.sWritten - c.sAcked
	c.mu.Unlock()
	require.Contains(t, []uint64{15, 24}, unacked)
	err = c.Close()
	require.ErrorIs(t, err, errLingered)
	require.ErrorIs(t, err, ErrSessionLost)
	require.ErrorContains(t, err, fmt.Sprintf("%d bytes unacknowledged", unacked))
}

// hookConn runs hook on its first Write, before it writes.
type hookConn struct {
	net.Conn
	hook func()
}

func (h *hookConn) Write(b []byte) (int, error) {
	if f := h.hook; f != nil {
		h.hook = nil
		f()
	}
	return h.Conn.Write(b)
}

// A resume of a new session that comes while the server still sets it up
// (its client got the accept, lost that connection at once and resumed)
// waits for the setup: the session ends on the resume's transport, not on
// the one its client abandoned, which open attached after the resume's.
func TestResumeWaitsForOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := NewListener(ln)
	defer l.Close()
	a1, b1 := net.Pipe()
	a2, b2 := net.Pipe()
	defer a1.Close()
	defer a2.Close()
	go io.Copy(io.Discard, a1)
	go io.Copy(io.Discard, a2)
	resumed := make(chan error, 1)
	raw1 := &hookConn{Conn: b1}
	var c *Conn
	raw1.hook = func() { // as open writes its accept: the session is known
		l.mu.Lock()
		for _, s := range l.sessions {
			c = s
		}
		l.mu.Unlock()
		go func() {
			h := hello{typ: msgResume, id: c.id, attempt: 1}
			h.mac = resumeMAC(c.key, &h, nil)
			_, err := l.resume(b2, &h, nil)
			resumed <- err
		}()
		time.Sleep(100 * time.Millisecond) // the resume runs now, or waits for open
	}
	h := newHello(t)
	got, _, err := l.open(raw1, &h, nil)
	require.NoError(t, err)
	require.Same(t, c, got)
	require.NoError(t, <-resumed)
	c.mu.Lock()
	tr := c.tr
	c.mu.Unlock()
	require.True(t, tr == net.Conn(b2), "the session's transport is the one its client abandoned")
}

// idleListener is a net.Listener that accepts nothing until it is closed,
// for a Listener whose handshakes a test runs itself, in a synctest
// bubble (a loopback listener's Accept is not durably blocked).
type idleListener struct {
	done chan struct{}
	once sync.Once
}

func newIdleListener() *idleListener { return &idleListener{done: make(chan struct{})} }

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// slowToStop is a transport whose Read, once the transport failed, returns
// only when release is closed: a Read still running when the transport is
// closed (a TLS or QUIC Read copying what it had received into the
// caller's buffer, which for a session's reader is the receive buffer).
type slowToStop struct {
	net.Conn
	release chan struct{}
}

func (c *slowToStop) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		<-c.release
	}
	return n, err
}

// PROTOCOL.md 3.5: a resume detaches the old transport and waits until
// its reader has stopped before it answers RESUMED and the new epoch
// starts: a reader still in a Read into the receive buffer (a data
// frame's payload goes straight there) would race the new transport's
// reader, which writes the replay there. (A resume that did not wait
// passed every test.)
func TestResumeWaitsForOldReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewListener(newIdleListener())
		defer l.Close()
		c1, s1 := net.Pipe()
		c2, s2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		go io.Copy(io.Discard, c1) // the clients read nothing they are sent
		go io.Copy(io.Discard, c2)
		old := &slowToStop{Conn: s1, release: make(chan struct{})}
		release := sync.OnceFunc(func() { close(old.release) })
		defer release()

		hn := newHello(t)
		c, _, err := l.open(old, &hn, nil)
		require.NoError(t, err)

		resumed := make(chan error, 1)
		go func() {
			h := hello{typ: msgResume, id: c.id, attempt: 1}
			h.mac = resumeMAC(c.key, &h, nil)
			_, err := l.resume(s2, &h, nil)
			resumed <- err
		}()
		synctest.Wait() // the resume closed the old transport; its reader is still in Read
		select {
		case err := <-resumed:
			t.Fatalf("the resume ended (%v) while the old transport's reader was still reading", err)
		default:
		}
		require.Equal(t, tether.Connecting, c.State())

		release()
		require.NoError(t, <-resumed)
		require.Equal(t, tether.Ready, c.State())
		c.mu.Lock()
		tr := c.tr
		c.mu.Unlock()
		require.True(t, tr == net.Conn(s2), "the session is not on the resume's transport")
	})
}

// A final frame beyond the largest stream position is a protocol error, as
// the protocol says (it was taken, and the reader never reached EOF).
func TestFinBeyondMaxPosition(t *testing.T) {
	cfg := newConfig(nil)
	c := newConn(cfg, false)
	var d decoder
	c.mu.Lock()
	err := c.feedLocked(&d, appendU64Frame(nil, frameFin, 1<<63), time.Now())
	c.mu.Unlock()
	require.ErrorContains(t, err, "beyond the stream's end")
}

// An end that read what its peer wrote, then closed, acknowledged those
// bytes before its close frame, though no ack was due yet: the peer's
// Close then reports nothing unacknowledged. (Its close frame went out with
// the ack still pending, and the peer's Close reported the bytes as
// perhaps lost.)
func TestCloseAcksWhatArrived(t *testing.T) {
	for _, closer := range []string{"server", "client"} {
		t.Run(closer, func(t *testing.T) {
			p := newPair(t)
			from, to := p.c, p.s
			if closer == "client" {
				from, to = p.s, p.c
			}
			_, err := from.Write([]byte("hello"))
			require.NoError(t, err)
			got := make([]byte, 5)
			to.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadFull(to, got)
			require.NoError(t, err)
			require.NoError(t, to.Close(), "the closer: everything it wrote was acknowledged")
			from.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = from.Read(got)
			require.ErrorIs(t, err, io.EOF, "the peer's final frame, then its close")
			require.NoError(t, from.Close(), "the other end: its 5 bytes arrived, and were read")
		})
	}
}

// A session that ends as lost (Listener.Close) sends no more DATA once its
// close frame is queued, before it or after: the peer would never have the
// rest of the stream, and the frame does not wait behind a window of data on
// a slow path, so that the client is told before the listener tears its
// transport down. (The first version held the DATA back only until the
// frame was written.)
func TestNoDataAfterLostClose(t *testing.T) {
	c := newConn(newConfig(nil), false)
	p1, p2 := net.Pipe()
	defer p2.Close()
	c.mu.Lock()
	c.tr = p1
	c.snd.write(make([]byte, 64<<10))
	c.sWritten, c.peerLimit = 64<<10, 1<<20
	c.lastRecv = time.Now().Add(time.Hour) // no ping due
	c.queueCloseLocked(closeLost)
	c.wg.Add(1)
	go c.sendLoop()
	c.mu.Unlock()

	var r recorder
	var d decoder
	buf := make([]byte, 256<<10)
	p2.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		n, err := p2.Read(buf)
		require.NoError(t, d.feed(buf[:n], &r))
		if err != nil {
			break
		}
	}
	stopSender(c, p1)
	got := r.out.String()
	require.Contains(t, got, fmt.Sprintf("\nclose %d", closeLost))
	if strings.Contains(got, "data") {
		t.Fatalf("DATA with the CLOSE of reason 1: %.80q", got)
	}
}

// stopSender ends the sender of c, a Conn of no Listener, on transport tr.
func stopSender(c *Conn, tr net.Conn) {
	c.mu.Lock()
	c.ended = true
	close(c.done)
	c.mu.Unlock()
	tr.Close()
	c.wg.Wait()
}

// failingWrite is a transport whose Writes wait for fail, then fail.
type failingWrite struct {
	net.Conn
	fail    chan struct{}
	writing chan struct{}
}

func (f *failingWrite) Write(p []byte) (int, error) {
	select {
	case f.writing <- struct{}{}:
	default:
	}
	<-f.fail
	return 0, net.ErrClosed
}

// An end that answers the peer's close frame stops waiting for its own when
// a write fails before it (a batch of data in flight): the frame will not go
// out on this transport, and the transport's reader, which answers, does
// not wait out the linger time.
func TestAnswerCloseEndsWhenWriteFails(t *testing.T) {
	c := newConn(newConfig(nil), false)
	p1, p2 := net.Pipe()
	defer p2.Close()
	tr := &failingWrite{Conn: p1, fail: make(chan struct{}), writing: make(chan struct{}, 1)}
	c.mu.Lock()
	c.tr = tr
	c.snd.write(make([]byte, 1000))
	c.sWritten, c.peerLimit = 1000, 1<<20
	c.lastRecv = time.Now().Add(time.Hour)
	c.wg.Add(1)
	go c.sendLoop()
	c.mu.Unlock()
	<-tr.writing // the sender writes the data

	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		c.answerClose(closeNormal) // the peer's close frame arrived meanwhile
		done <- time.Since(start)
	}()
	time.Sleep(20 * time.Millisecond)
	close(tr.fail)
	took := <-done
	stopSender(c, p1)
	require.Less(t, took, time.Second, "answerClose waited after the write failed (linger %v)", c.cfg.linger)
}

// An end that aborts after CloseWrite, its final frame not written yet,
// sends no final frame: the peer's Reads end with ErrPeerAborted, not
// io.EOF (found in review: one run in five read a clean end).
func TestAbortSendsNoFin(t *testing.T) {
	c := newConn(newConfig(nil), false)
	c.mu.Lock()
	c.snd.write([]byte("partial re"))
	c.sWritten, c.sSent, c.peerLimit = 10, 10, 1<<20 // the data went out
	c.lastRecv = time.Now().Add(time.Hour)
	c.finWant = true // CloseWrite, its final frame not written yet
	c.queueCloseLocked(closeAborted)
	b := c.batchLocked(make([]byte, 0, 1024), time.Now(), false)
	c.mu.Unlock()
	var r recorder
	var d decoder
	require.NoError(t, d.feed(b, &r))
	require.NotContains(t, r.out.String(), "fin", "a final frame with the CLOSE of reason 2")
	require.Contains(t, r.out.String(), fmt.Sprintf("\nclose %d", closeAborted))
}

// A client's Write fails once its Tether has ended, before the reader has
// ended the session with it: State already says Shutdown. (The Write
// buffered its bytes into a session about to be lost and returned nil: a
// trial's tcat, which asks a Write why the session ended, said only "the
// session ended".)
func TestWriteFailsOnceTetherEnded(t *testing.T) {
	var d tethertest.Dialer
	tt := tethertest.Dial(t, &d, "a:1", tether.DisconnectHandlerFunc(func(_ context.Context, ev *tether.Event) tether.Action {
		if ev.Kind == tether.Disconnected {
			ev.Err = lost(errExpired)
			return tether.GiveUp
		}
		return tether.Reconnect
	}))
	d.Server(t).Close()
	_, err := tt.Read(make([]byte, 1)) // the loss: the handler gives up
	require.Error(t, err)
	<-tt.Done()
	c := newConn(newConfig(nil), true) // its reader has not run
	c.t = tt
	require.Equal(t, tether.Shutdown, c.State())
	_, err = c.Write([]byte("x"))
	require.ErrorIs(t, err, ErrSessionLost)
	require.ErrorIs(t, err, errExpired)
}

// A client whose send failed (the server aborted, then its end reset the
// write) still reads what had arrived before it drops the transport: the
// abort frame, so that its operations say ErrPeerAborted. Closing the
// transport at once threw the frame away, and the resume then found the
// session lost (ErrSessionLost instead, in 4 % of runs under load).
// Over TLS too, where the sender wrote through the Tether, which closed the
// transport at once.
func TestSendFailedReadsTheAbort(t *testing.T) {
	for _, via := range []string{"tcp", "tls"} {
		t.Run(via, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var d tether.Dialer = &tethertcp.Dialer{}
			if via == "tls" {
				ln = tls.NewListener(ln, tethertest.TLSServerConfig())
				d = &tethertls.Dialer{Config: tethertest.TLSClientConfig()}
			}
			sl := NewListener(ln)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, d, sl.Addr().String(), nil)
			require.NoError(t, err)
			s, err := sl.AcceptSession()
			require.NoError(t, err)
			p := &pair{sl, c, s}
			defer p.close(t)
			p.roundTrip(t, "before")
			c.mu.Lock()
			epoch, tconn := c.epoch, c.tconn
			w, _ := c.writerLocked()
			c.mu.Unlock()
			// The sender writes to the transport itself, not through the
			// Tether, which would close it on the failure.
			require.Equal(t, io.Writer(tconn), w)
			c.sendFailed(epoch, w, errors.New("write: broken pipe"))
			require.NoError(t, s.Abort())
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1))
			require.ErrorIs(t, err, ErrPeerAborted)
		})
	}
}

// When nothing ends the transport after a failed send, the read deadline
// does, and the handler's Disconnected says that the send failed, not that
// a read timed out.
func TestSendFailedDisconnectNamed(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln)
	defer sl.Close()
	rec := &tethertest.Recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), rec)
	require.NoError(t, err)
	defer c.Close()
	s, err := sl.AcceptSession()
	require.NoError(t, err)
	defer s.Close()
	c.mu.Lock()
	epoch, tconn := c.epoch, c.tconn
	c.mu.Unlock()
	c.sendFailed(epoch, tconn, errors.New("write: broken pipe"))
	ev := rec.WaitFor(t, tether.Disconnected, 1)
	require.ErrorContains(t, ev.Err, "tether/session: sending to the peer: write: broken pipe")
	require.NotErrorIs(t, ev.Err, os.ErrDeadlineExceeded)
	// The session resumes, and carries bytes.
	p := &pair{sl, c, s}
	p.roundTrip(t, "after")
}
