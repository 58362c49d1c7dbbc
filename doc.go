// Package tether provides connections that reconnect themselves.
//
// A [*Tether] is a [net.Conn] whose underlying connection (TCP, TLS, a QUIC
// stream, anything a [Dialer] makes) is re-dialed whenever a Read or a Write
// fails. Code that reads and writes it does not see the reconnect; what
// happens on each disconnect is decided by a [DisconnectHandler], which the
// application composes from [Middleware] as it composes net/http handlers.
//
//	t, err := tether.Dial(ctx, &tcp.Dialer{}, "127.0.0.1:8080",
//		tether.Chain(nil, middleware.Logging(slog.Default())))
//
// # Events and actions
//
// The handler sees an [Event] at each of four moments ([EventKind]): the first
// connection is up (Connected), an established connection failed
// (Disconnected; Err is io.EOF when the peer closed cleanly), a dial failed
// (Unreachable), a reconnect succeeded (Reconnected). It answers with an
// [Action]: [Reconnect], [GiveUp] or [Ignore]. It may run any blocking code,
// change the address of the next dial (Event.Addr) and set the delay the
// Tether waits before it (Event.Delay). Handler calls for one Tether come one
// at a time, from the goroutine that runs the reconnect.
//
// A nil handler is [DefaultHandler]: exponential backoff with jitter for
// ever on transient errors, and give up at once on the permanent ones that
// [IsPermanent] recognises.
//
// # Middleware, dialers and tests
//
// The policies live in package [github.com/io-tether/tether/middleware]
// (Logging, Backoff, Failover, Notify, MaxDowntime, CircuitBreaker, ...);
// the dialers in [github.com/io-tether/tether/tcp],
// [github.com/io-tether/tether/tls], [github.com/io-tether/tether/quic] and
// [github.com/io-tether/tether/dialers]. Package
// [github.com/io-tether/tether/tethertest] has an in-memory Dialer whose
// connections break on command, for tests of code that uses a Tether, and a
// conformance check for middleware.
//
// # States
//
// A Tether is in one [State] at a time; [Tether.State] reads it and
// [Tether.WaitForStateChange] waits for it to change:
//
//	            ┌──────────── Read, Write, Connect ────────────┐
//	            │                                              ▼
//	WithLazy ► Idle ◄──── Ignore on Unreachable ──────── Connecting ◄── Dial
//	                                                     │  ▲   │  ▲
//	            ┌───────── a Delay to wait ──────────────┘  │   │  │ loss, watchdog,
//	            ▼                                           │   │  │ Reconnect
//	     TransientFailure ──── delay over, ResetBackoff ────┘   │  │
//	                                           accepted, kept  ▼  │
//	                                                           Ready
//
//	Close, or a give-up, from any state ──► Shutdown (final)
//
// Connecting covers the handler's decision, the dial and OnConnect. States
// reflect what the Tether has seen: with nobody reading or writing, a dead
// connection is noticed by the next operation or the read watchdog.
// [Tether.Connect] dials an Idle Tether, [Tether.ResetBackoff] cuts a delay
// short, and [Tether.Reconnect] drops a Ready connection for a new one.
// [WithLazy] makes Dial return at once, Idle; [WithWriteBuffer] lets Writes
// made while not Ready return at once, buffered for the next connection.
//
// # Counting attempts
//
// Event.Attempt counts failed dials since the last stable connection; a
// connection counts as stable once it has been up for the stability period
// ([WithStabilityPeriod], 1 s by default). A connection that dies sooner
// counts as a failed dial, so a server that accepts and closes at once makes
// the count, and the backoff with it, grow; but a connection that ended
// with the peer's clean close after bytes went both ways ended an exchange
// (a server that answers one request per connection, or per QUIC stream),
// and resets the count as a stable one does.
//
// # Guarantees
//
//   - Transparent: Read and Write behave as on a plain net.Conn.
//   - One reconnect per loss, however many goroutines see it fail; an error
//     from a connection that was already replaced triggers nothing.
//   - Full duplex: a Read blocked on the connection never blocks a Write.
//   - Writes are whole or reported: Write returns len(p), nil or an error.
//     A Write the failed connection took none of goes whole to the next
//     one; a Write cut in the middle returns its count and an error
//     matching [ErrDropped], its rest sent nowhere ([WithWritePolicy] picks
//     otherwise).
//   - Deadlines apply across reconnects.
//   - Close returns at once, even during a backoff wait or a dial, and every
//     blocked operation returns net.ErrClosed.
//   - A healthy Tether costs no goroutine and no allocation per Read or Write.
//
// # What a reconnect cannot save
//
// Bytes that a connection accepted but that never reached the peer's
// application are lost with the connection (a reset also discards what the
// peer's kernel had received but not yet delivered): a Write into a socket
// whose peer just closed usually succeeds (the peer answers with a reset),
// and the kernel's send buffer of a dead connection is gone. Bytes the peer
// sent go with the connection too when a Write finds it lost before a Read
// has taken them: the reconnect closes the lost connection, so that a Read
// blocked on it wakes (a Read that meets the loss itself returns them
// first). Protocols that need every byte acknowledge them above the
// Tether; package [github.com/io-tether/tether/session] does it when both
// ends use it.
//
// Nothing notices a lost peer while nobody reads or writes: a write-only
// Tether learns of it at its next Write, and a Read on a peer that vanished
// without a word waits until TCP keep-alive (see package tcp) gives up, or
// the read watchdog ([WithReadIdleTimeout]) fires: it adds up the silence
// waited in Reads since the last byte, whatever read deadlines the
// application sets.
//
// # Framed and request/response protocols
//
// Resending the remainder of a half-written frame on a new connection, or
// splicing bytes read from two connections, corrupts a framed protocol, and
// a Read waiting for the reply to a request that died with its connection
// waits for ever on the new one. The default write policy ([WriteWhole])
// never sends half a Write to a new connection. [WithReconnectBoundary]
// makes the first Read and Write after a reconnect, and the operations
// the loss cut or left waiting, return a [*ReconnectedError]: a decoder
// resets, and a client resends or fails the requests written before the
// new connection (each direction meets a reconnect once). Without
// it, [Tether.ReadGeneration] tells which connection a Read's bytes came
// from. [WithOnConnect] runs a per-connection handshake.
package tether
