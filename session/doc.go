// Package session gives a stream that loses nothing across reconnects,
// when both ends run this library.
//
// A [tether.Tether] alone cannot save the bytes a dead connection had
// accepted: the kernel took them, the peer never got them. A session can.
// Each end keeps what it sent until the peer acknowledges it, and after a
// reconnect the two ends tell each other how far they got and send the
// rest again. The stream survives any number of reconnects with no byte
// lost, duplicated or reordered.
//
// # Use
//
// The client dials as it would a Tether, with any dialer and handler of
// package tether (tcp, tls, unix, quic; middleware.Backoff, Logging, ...):
//
//	c, err := session.Dial(ctx, &tcp.Dialer{}, "db.example:7000", nil)
//	// c is a net.Conn: write and read as usual; reconnects are invisible.
//
// The server wraps a listener:
//
//	ln, err := net.Listen("tcp", ":7000")
//	sl := session.NewListener(ln)
//	for {
//		c, err := sl.Accept() // one net.Conn per session; resumes never reach Accept
//		...
//	}
//
// Over TLS the server wraps a tls.NewListener; over QUIC, a listener of
// QUIC streams. Conn.CloseWrite sends the end of the stream (the peer reads
// io.EOF after every byte); Conn.Close sends what is buffered and waits,
// at most the linger time, for the peer to acknowledge it all; Conn.Abort
// ends the session at once, as a reset ends a TCP connection (the peer
// reads what arrived, then ErrPeerAborted).
//
// # How it works
//
// The client is a Tether whose OnConnect hook runs the session's
// handshake on every new connection: a new session the first time (an
// X25519 exchange gives both ends a key that never crosses the wire), a
// resume afterwards (the session id, an attempt counter, the count of
// bytes received, a nonce, and an HMAC over them; the server answers with
// its own count and a MAC). The Tether drops a failed Write instead of
// resending it (the session replays, from the position the peer gave).
// One goroutine per session writes frames, and one reads them: data with
// its stream position, acknowledgements, pings, the end. PROTOCOL.md is
// the wire format.
//
// Over TCP and Unix sockets a frame's payload goes out with writev from
// the send buffer itself, and comes in straight into the receive buffer
// (all but the first bytes after each frame header): Write's copy into
// the send buffer and Read's copy out of the receive buffer are, for
// nearly every byte, the only copies outside the kernel. The Tether
// has no vectored Write, so the client writes to the connection its
// handshake ran on (Tether.Conn) directly; a failed write closes that
// connection, and the Tether reconnects as it would after its own failed
// Write. Over TLS and QUIC, frames are copied into a batch and written
// through the Tether.
//
// # Limits
//
// Write copies into a send buffer (WithBufferSize, 4 MiB by default,
// allocated as it fills) and returns; when the buffer is full it blocks
// until the peer acknowledges bytes, its deadline passes, or Close. The
// receiving end lets its peer send at most its window ahead of what its
// reader has read, and the window is at most the buffer, so a peer that
// never reads costs at most the two buffers. The window starts at 512 KiB
// and doubles, up to the buffer, only where a larger one carries more (a
// long path, which carries a window a round trip), probing as BBR does:
// after each doubling, if the rate of the bytes received has not risen by a
// quarter within two or three measures (of two round trips or 10 ms each,
// enough to span 30 ms), it halves back and tries again ten seconds later.
// A resume keeps the window and measures anew. A reader that lags never
// grows it. On loopback it stays at 512 KiB, where the whole buffer would
// cycle bytes through memory that no cache holds (32 KiB writes ran at
// about 0.95 of raw TCP with a window of 4 MiB, at about 1.07 with this
// one). While the peer acknowledges bytes, Write blocks sooner, at twice
// what the path carries in its least round trip (at least 256 KiB),
// measured from the acks as TCP's BBR measures it: more in flight would
// only wait in the kernels' queues, and a buffer cycled through in full
// stays in no cache (on loopback, 32 KiB writes ran at 0.6 of raw TCP with
// 4 MiB in flight, at 0.7 with 256 KiB). For the same reason a receive
// buffer that grew (a reader that fell behind, the start of a stream before
// the bound) returns to the size in use within three seconds, rather than
// being cycled through in full for the rest of the session. Over a long
// path the bound doubles with each round trip, up to the buffer's size.
// Every ten seconds the bound falls to 256 KiB until a round trip with no
// more in flight measures the path anew (BBR's PROBE_RTT), so that neither
// a route that grew longer nor the queues this end built hold it wrong.
// Once the acks stop (an outage, a peer that stopped reading) for four
// round trips or 10 ms, whichever is longer, Write may fill the whole
// buffer; once they flow again, it shrinks back within two seconds (not at
// every move of the bound, which would reallocate it all the time).
//
// A Listener caps its sessions (WithMaxSessions) and its
// handshakes in progress (WithMaxHandshakes), bounds each handshake in
// time (WithHandshakeTimeout: a connection that sends nothing costs a
// goroutine for at most that long), and forgets a session whose client
// has been away for its detached lifetime (WithDetachedLifetime).
// A ping after an idle interval, and a timeout (WithKeepAlive), tell a
// dead transport from a quiet one, a frozen peer included; the client's
// handler sees the drop as a Disconnected whose error matches
// tether.ErrIdleTimeout.
//
// # Failure
//
// When the server forgot the session (a restart, the detached lifetime
// passed) or ended it (Listener.Close), the client's Reads return every
// byte received before, then an error matching ErrSessionLost; Writes
// fail at once. The client never starts a new stream silently. A lost
// session and a server that does not speak the protocol (ErrNotSession)
// end the session whatever the handler says: no retry can mend them.
// The handler hears of a forgotten session, and of a server that does
// not speak the protocol, as an Unreachable whose error names the server;
// a session that the peer ended (its Close or Abort, Listener.Close)
// closes its Tether without an event, and only the operations' errors say
// so.
//
// # Security
//
// The session id is random, every resume is authenticated, and a recorded
// resume that the server processed cannot be played again (its attempt
// counter is spent). On TLS and QUIC the handshake also binds the key and
// each resume to the connection through its TLS exporter, so a resume is
// valid on its own connection only. On plain TCP, a resume that the server
// never read (its connection broke on the way, or the server shed it at
// its handshake cap) stays valid until the client's next resume succeeds:
// someone who recorded it on the path can play it in that window, and
// take over the session's server end.
//
// What the protocol does not protect against: on plain TCP, an active
// man-in-the-middle. Nothing but the handshake is authenticated there,
// and nothing is encrypted: an attacker on the path can read and change
// the stream, inject frames, or run the key exchange with each end in
// turn and hijack the session, as with any plain TCP stream. A passive
// eavesdropper cannot make a resume of its own (it lacks the key), but can
// read the stream, and play a recorded resume that the server never read
// (above). Closing that window needs a challenge from the server, a round
// trip more on every resume, which TLS makes needless. Use TLS (package tls of this module, and tls.NewListener on the
// server) for anything that crosses a network you do not control.
//
// # State
//
// Conn.State tells where a session stands, in the values of tether.State:
// the client's is its Tether's (Ready, Connecting, TransientFailure,
// Shutdown); the server's is Ready while a transport is attached,
// Connecting while it waits for the client to resume, and Shutdown at the
// end.
package session
