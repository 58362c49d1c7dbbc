// Package faultproxy puts a proxy on the loopback interface between a client
// and a real server, and breaks the connections on command: the faults a
// reconnecting client meets in production, made on demand in a test. This
// project tests its own Tethers and sessions with it.
//
// # Using it
//
// Start the server, put a [Proxy] in front of it with [New], and make the
// code under test dial [Proxy.Addr] instead of the server. Then, between
// the client's reads and writes, inject a fault and check that the client
// comes back:
//
//	p, err := faultproxy.New(server.Addr().String(), 1)
//	...
//	defer p.Close()
//	client := dialMyService(p.Addr()) // the code under test
//	...
//	p.ResetAll()                      // every live connection gets a RST
//	... // the client's next call must reconnect and succeed
//
// # TCP faults
//
// A Proxy forwards each TCP connection it accepts to its upstream address.
// It injects:
//
//   - on the live connections: [Proxy.ResetAll] (RST, through SO_LINGER 0),
//     [Proxy.CloseAll] (a clean close, FIN), [Proxy.Strand] (they stay open
//     and forward nothing, as a peer that vanished behind a middlebox);
//   - on new connections, with [Proxy.SetMode]: refuse them (the proxy stops
//     listening and later comes back on the same port), hold them (the dial
//     hangs: the kernel drops the SYNs; Linux only), accept then close or
//     reset them at once;
//   - on everything, until [Proxy.Heal]: [Proxy.Blackhole] (keep every
//     connection open and forward nothing), and a [Shape] (delay each chunk,
//     slice writes into tiny pieces, cut each connection after N bytes).
//
// When the upstream server cannot be reached, the proxy resets the client's
// connection, as an L4 load balancer does: a server that restarts behind the
// proxy looks to the client like a clean close, then a few connections that
// are accepted and reset, then service.
//
// # Schedules
//
// For soak tests and fuzzing, [Schedule] draws a random list of [Step]s
// from a seed, [DecodeSchedule] makes one from a fuzzer's bytes, and
// [Proxy.Run] plays it. Every random choice (jitter, slice sizes, random
// schedules) comes from math/rand/v2 sources seeded from the Proxy's seed
// and the connection's number, so a run can be replayed from its seed.
//
// # UDP faults
//
// A [UDPRelay] does the same for datagrams (QUIC, typically): it forwards
// each client's datagrams to its upstream address from a socket of its own
// per client address, so that the server sees one peer per client, and
// injects:
//
//   - [UDPRelay.SetLoss] drops a fraction of the datagrams in each
//     direction until the loss is changed; [UDPRelay.LoseFor] does it for a
//     while and then heals by itself (a loss of 1 drops everything);
//   - [UDPRelay.Blackhole] drops every datagram, both ways and new clients'
//     too, until it is turned off;
//   - [UDPRelay.SetUpstream] forwards to another address from now on: a
//     server that restarted on another port still looks to its clients
//     like the same server at the same address.
//
// Whether a datagram is lost is a pure function of the relay's seed, the
// client's number (in the order of their first datagram), the direction,
// the datagram's rank in that client's direction, and the loss rate when it
// passes: the same datagrams meet the same losses in every run with the same
// seed. The relay knows nothing of QUIC.
//
// Both listen on 127.0.0.1 only, and use the standard library alone: they
// are for tests on one machine.
package faultproxy
