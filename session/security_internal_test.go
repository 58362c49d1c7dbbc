package session

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/io-tether/tether"
	tetherquic "github.com/io-tether/tether/quic"
	tethertcp "github.com/io-tether/tether/tcp"
	"github.com/io-tether/tether/tethertest"
	tethertls "github.com/io-tether/tether/tls"
)

// sessionOver dials a session over d to sl, and accepts it; both close as
// the test ends.
func sessionOver(t *testing.T, sl *Listener, d tether.Dialer) (c, s *Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, d, sl.Addr().String(), nil, WithLinger(0))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	s, err = sl.AcceptSession()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return c, s
}

// rawTLS opens a TLS connection to addr and reads the server's preface.
func rawTLS(t *testing.T, addr string) *tls.Conn {
	raw, err := tls.Dial("tcp", addr, tethertest.TLSClientConfig())
	require.NoError(t, err)
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	return raw
}

func readReply(t *testing.T, raw net.Conn) reply {
	require.NoError(t, readPreface(raw, roleServer))
	buf := make([]byte, acceptLen)
	_, err := io.ReadFull(raw, buf[:1])
	require.NoError(t, err)
	n := replyLen(buf[0])
	require.NotZero(t, n)
	_, err = io.ReadFull(raw, buf[1:n])
	require.NoError(t, err)
	r, err := decodeReply(buf[:n])
	require.NoError(t, err)
	return r
}

// SESSIONS.md, security: "a recorded resume cannot be replayed (attempt
// counter; exporter binding on TLS/QUIC)". A resume MACed for the client's
// own TLS connection, never read by the server (so its attempt is fresh),
// played on another TLS connection, is refused (code 1); one without the
// exporter flag on TLS is refused (code 4). And the client did bind.
func TestResumeBoundToTLSConnection(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the session's cleanups
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(tls.NewListener(ln, tethertest.TLSServerConfig()))
	t.Cleanup(func() { sl.Close() })
	c, s := sessionOver(t, sl, &tethertls.Dialer{Config: tethertest.TLSClientConfig()})

	c.mu.Lock()
	own, err := exporter(c.tconn)
	h := hello{typ: msgResume, flags: flagExporter, id: c.id, attempt: c.attempt + 1, recv: c.rRecv}
	key := c.key
	c.mu.Unlock()
	require.NoError(t, err)
	require.NotNil(t, own, "the client's TLS transport exposes no exporter")
	h.nonce[0] = 1
	h.mac = resumeMAC(key, &h, own) // what the client would send on its own connection

	raw := rawTLS(t, sl.Addr().String())
	_, err = raw.Write(h.append(putPreface(nil, roleClient)))
	require.NoError(t, err)
	r := readReply(t, raw)
	raw.Close()
	require.Equal(t, reply{typ: msgReject, code: rejectLost}, r, "a resume recorded on another TLS connection was accepted")

	h2 := h
	h2.flags = 0
	h2.mac = resumeMAC(key, &h2, nil)
	raw = rawTLS(t, sl.Addr().String())
	_, err = raw.Write(h2.append(putPreface(nil, roleClient)))
	require.NoError(t, err)
	r = readReply(t, raw)
	raw.Close()
	require.Equal(t, reply{typ: msgReject, code: rejectBad}, r, "an unbound resume on TLS")
	require.Equal(t, tether.Ready, s.State())
}

// SESSIONS.md: "a lost session ... and a preface mismatch end the session
// whatever the handler says". A handler that always reconnects, against a
// plain echo server.
func TestPrefaceMismatchWhateverTheHandler(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after serveEach's cleanup
	addr := serveEach(t, func(c net.Conn) { io.Copy(c, c) })
	err := dialAlwaysReconnecting(addr)
	require.ErrorIs(t, err, ErrNotSession)
}

// serveEach serves each connection to a loopback listener with serve, in
// a goroutine of its own, until the test ends; it returns the address.
func serveEach(t *testing.T, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// dialAlwaysReconnecting dials addr with a handler that always reconnects:
// Dial must fail within a second all the same.
func dialAlwaysReconnecting(addr string) error {
	always := tether.DisconnectHandlerFunc(func(context.Context, *tether.Event) tether.Action { return tether.Reconnect })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := Dial(ctx, &tethertcp.Dialer{}, addr, always)
	return err
}

// PROTOCOL.md 3.2: the client checks the RESUMED MAC (mutual proof) and
// fails the transport otherwise; and the ACCEPT key confirmation.
func TestClientChecksServerProofs(t *testing.T) {
	serve := func(in int, out []byte) net.Conn {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			io.ReadFull(b, make([]byte, in))
			b.Write(append(putPreface(nil, roleServer), out...))
		}()
		return a
	}
	c := newConn(newConfig(nil), true)
	c.key = make([]byte, 32)
	c.id[0] = 9
	bad := reply{typ: msgResumed, recv: 0}
	bad.mac[0] = 1
	raw := serve(prefaceLen+resumeLen, bad.append(nil))
	err := c.resume(raw, 0, nil)
	raw.Close()
	require.ErrorIs(t, err, errBadReply, "a RESUMED with a bad MAC was accepted")

	c2 := newConn(newConfig(nil), true)
	priv, _ := newKeyPair()
	acc := reply{typ: msgAccept, window: 1 << 20, lifetime: 1000}
	copy(acc.pub[:], priv.PublicKey().Bytes())
	acc.mac[0] = 1 // not the key confirmation
	raw = serve(prefaceLen+newLen, acc.append(nil))
	err = c2.open(raw, 0, nil)
	raw.Close()
	require.Error(t, err, "an ACCEPT with a bad key confirmation was accepted")
}

// PROTOCOL.md 2: another version is refused, code 3, by the server; and a
// server preface of another version fails Dial at once, permanently,
// whatever the handler.
func TestVersionMismatch(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after serveEach's cleanup
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln)
	defer sl.Close()
	pre := putPreface(nil, roleClient)
	pre[len(magic)] = 2
	h := hello{typ: msgNew, window: 1 << 20}
	r, raw := send(t, sl.Addr().String(), h.append(pre))
	raw.Close()
	require.Equal(t, reply{typ: msgReject, code: rejectVersion}, r)

	fake := serveEach(t, func(c net.Conn) {
		p := putPreface(nil, roleServer)
		p[len(magic)] = 2
		c.Write(p)
		io.Copy(io.Discard, c)
	})
	err = dialAlwaysReconnecting(fake)
	require.ErrorIs(t, err, errVersion)
	require.True(t, tether.IsPermanent(err))
}

// SESSIONS.md: the server "rejects an attempt counter not above the last
// one it accepted, and only then detaches the old transport". A replayed
// (stale) resume leaves the live transport alone.
func TestStaleResumeLeavesTransport(t *testing.T) {
	p := newPair(t)
	p.roundTrip(t, "before")
	rec := p.resumeBytes(0, 0, false) // attempt 0: not above the last accepted (0)
	p.s.mu.Lock()
	tr := p.s.tr
	p.s.mu.Unlock()
	gen := p.c.t.Generation()
	r, raw := send(t, p.sl.Addr().String(), rec)
	raw.Close()
	require.Equal(t, reply{typ: msgReject, code: rejectStale}, r)
	time.Sleep(100 * time.Millisecond)
	p.s.mu.Lock()
	same := p.s.tr == tr
	p.s.mu.Unlock()
	require.True(t, same, "a stale resume detached the live transport")
	require.Equal(t, gen, p.c.t.Generation(), "the client had to reconnect")
	p.roundTrip(t, "after")
}

// PROTOCOL.md 4.4: an end that does not ping itself keeps its transport
// up by answering the peer's pings; an idle session is not dropped.
func TestIdleSessionStaysUp(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln, WithKeepAlive(50*time.Millisecond, 100*time.Millisecond))
	defer sl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, &tethertcp.Dialer{}, sl.Addr().String(), nil, WithKeepAlive(time.Hour, time.Hour), WithLinger(0))
	require.NoError(t, err)
	defer c.Close()
	s, err := sl.AcceptSession()
	require.NoError(t, err)
	defer s.Close()
	gen := c.t.Generation()
	time.Sleep(time.Second)
	require.Equal(t, gen, c.t.Generation(), "an idle session lost its transport")
}

// newBytes returns a client's preface and a NEW message with a fresh key.
func newBytes(t *testing.T) []byte {
	h := newHello(t)
	return h.append(putPreface(nil, roleClient))
}

// newHello returns a client's NEW message with a fresh key.
func newHello(t *testing.T) hello {
	priv, err := newKeyPair()
	require.NoError(t, err)
	h := hello{typ: msgNew, window: 1 << 20}
	copy(h.pub[:], priv.PublicKey().Bytes())
	return h
}

// PROTOCOL.md 4.2 and the PONG's row in 4: an end answers every PING with
// a PONG of the PING's value, sent with (before) its ACK. (The pong was
// never sent, and no test saw it: the ACK alone keeps this package's own
// peer alive, but the protocol promises the PONG.)
func TestPingAnsweredWithPong(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln)
	defer sl.Close()
	r, raw := send(t, sl.Addr().String(), newBytes(t))
	defer raw.Close()
	require.Equal(t, byte(msgAccept), r.typ)

	_, err = raw.Write(appendU64Frame(nil, framePing, 0x1234))
	require.NoError(t, err)
	var (
		rec recorder
		d   decoder
	)
	buf := make([]byte, 256)
	for !strings.Contains(rec.out.String(), "\npong 4660\nack") { // (an ACK of the window may go first)
		n, err := raw.Read(buf)
		require.NoError(t, d.feed(buf[:n], &rec))
		require.NoError(t, err, "no PONG 4660 and ACK; frames received: %q", rec.out.String())
	}
}

// PROTOCOL.md 3.2: ACCEPT carries the server's detached lifetime in
// milliseconds (WithDetachedLifetime). (A server that announced another
// value, or none, passed every test: the client does not use it.)
func TestAcceptAnnouncesLifetime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := NewListener(ln, WithDetachedLifetime(90*time.Second+250*time.Millisecond))
	defer sl.Close()
	r, raw := send(t, sl.Addr().String(), newBytes(t))
	raw.Close()
	require.Equal(t, byte(msgAccept), r.typ)
	require.Equal(t, uint32(90250), r.lifetime, "ACCEPT's lifetime (ms)")
}

// PROTOCOL.md, every message and frame, byte for byte as its tables say.
func TestWireGolden(t *testing.T) {
	hx := func(s string) string { return strings.ReplaceAll(s, " ", "") }
	var id [16]byte
	for i := range id {
		id[i] = 0xA0 + byte(i)
	}
	var k32 [32]byte
	for i := range k32 {
		k32[i] = byte(i)
	}
	var n16 [16]byte
	for i := range n16 {
		n16[i] = 0xC0 + byte(i)
	}
	k := hex.EncodeToString(k32[:])
	ids := hex.EncodeToString(id[:])
	ns := hex.EncodeToString(n16[:])
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"preface C", putPreface(nil, roleClient), hex.EncodeToString([]byte("tether-session")) + "01 43"},
		{"NEW", (&hello{typ: msgNew, flags: 1, pub: k32, window: 0x01020304}).append(nil), "10 01" + k + "01020304"},
		{"RESUME", (&hello{typ: msgResume, flags: 1, id: id, attempt: 7, recv: 0x0102, nonce: n16, mac: k32}).append(nil),
			"11 01" + ids + "0000000000000007 0000000000000102" + ns + k},
		{"ACCEPT", (&reply{typ: msgAccept, id: id, pub: k32, window: 0x4000, lifetime: 300000, mac: k32}).append(nil),
			"20" + ids + k + "00004000 000493e0" + k},
		{"RESUMED", (&reply{typ: msgResumed, recv: 5, mac: k32}).append(nil), "21 0000000000000005" + k},
		{"REJECT", (&reply{typ: msgReject, code: 5}).append(nil), "22 05"},
		{"DATA", append(appendDataHdr(nil, 0x10, 3), "abc"...), "01 0000000000000010 00000003 616263"},
		{"ACK", appendAck(nil, ackFin, 5, 0x100), "02 01 0000000000000005 0000000000000100"},
		{"PING", appendU64Frame(nil, framePing, 9), "03 0000000000000009"},
		{"PONG", appendU64Frame(nil, framePong, 9), "04 0000000000000009"},
		{"FIN", appendU64Frame(nil, frameFin, 9), "05 0000000000000009"},
		{"CLOSE", appendClose(nil, closeAborted), "06 02"},
	}
	for _, tc := range cases {
		require.Equal(t, hx(tc.want), hex.EncodeToString(tc.got), tc.name)
	}
	// The decoder reads the ACK's fields in the documented order.
	var r recorder
	var d decoder
	b, _ := hex.DecodeString(hx("02 00 0000000000000005 0000000000000100"))
	require.NoError(t, d.feed(b, &r))
	require.Equal(t, "\nack 0 5 256", r.out.String())
	// Limits: DATA of 65537 bytes, unknown type, flag, reason.
	for _, bad := range []string{"01 0000000000000000 00010001", "07", "02 02 0000000000000000 0000000000000000", "06 03"} {
		var d decoder
		b, _ := hex.DecodeString(hx(bad))
		err := d.feed(b, &recorder{})
		require.True(t, errors.Is(err, errProtocol), "%s: %v", bad, err)
	}
}

// SESSIONS.md: on QUIC the key and resumes mix in the exporter, too.
func TestQUICBindsExporter(t *testing.T) {
	ln, err := tetherquic.Listen("127.0.0.1:0", tethertest.TLSServerConfig("tether-test"), nil)
	require.NoError(t, err)
	sl := NewListener(ln)
	t.Cleanup(func() { sl.Close() })
	d := &tetherquic.Dialer{TLSConfig: tethertest.TLSClientConfig("tether-test")}
	t.Cleanup(func() { d.Close() })
	c, s := sessionOver(t, sl, d)
	c.mu.Lock()
	ce, cerr := exporter(c.tconn)
	c.mu.Unlock()
	s.mu.Lock()
	se, serr := exporter(s.tr)
	s.mu.Unlock()
	require.NoError(t, cerr)
	require.NoError(t, serr)
	require.NotNil(t, ce, "the client's QUIC transport exposes no exporter")
	require.Equal(t, ce, se)
}
