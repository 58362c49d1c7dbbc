// Package faultmatrix holds no code, only tests: the fault matrix of package
// tether over real loopback sockets.
//
// Each test injects one fault with tethertest/faultproxy between a Tether and
// a real server, over each transport (tcp, and tls through the same proxy):
// a server restart on the same port, a reset mid-stream (with a reader, a
// writer, both), a clean close by the server, dials that fail for a while
// (refused, slower than the per-attempt timeout, a name that stops
// resolving), accept-and-close flapping under the default policy, a
// blackholed peer (detected by tether.WithReadIdleTimeout), and Close during
// each. Then:
//
//   - TestIntegritySoak: sequence-numbered, checksummed records
//     (tethertest/records) flow both ways through a Tether (WriteDrop,
//     WithReadIdleTimeout) while the proxy injects random faults drawn from
//     -seed; no record is corrupted, reordered or duplicated, every record
//     reported written arrives or was in flight on a connection that died
//     (those are counted, and their bytes bounded in all by what the
//     buffers of the connections that died hold: one gap may span several
//     deaths, so no bound applies to a gap alone), and the streams
//     recover. -soak=60s runs it longer; it prints a
//     summary.
//   - Over quic (quic_test.go), a Tether over tetherquic reaches a quic-go
//     server through a faultproxy.UDPRelay: crash and restart with and without
//     the same stateless reset key, 100 % loss longer and shorter than the
//     idle timeout, 30 % loss, a stream reset, and Close during each.
//   - FuzzFaultSchedule: the integrity invariant under a fault schedule
//     decoded from the input.
//   - FuzzConcurrentOps: Read, Write, SetDeadline and Close from three
//     goroutines, with faults in between, over tethertest.Dialer in
//     testing/synctest: no panic, no deadlock, no leak.
//
// For example:
//
//	go test -race ./e2e/faultmatrix
//	go test -run TestIntegritySoak -v ./e2e/faultmatrix -soak=60s -seed=7
//	go test -run '^$' -fuzz '^FuzzFaultSchedule$' -fuzztime 30s -fuzzminimizetime 1x ./e2e/faultmatrix
//	go test -run '^$' -fuzz '^FuzzConcurrentOps$' -fuzztime 30s ./e2e/faultmatrix
package faultmatrix
