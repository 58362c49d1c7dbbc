// Package faultmatrix holds no code, only tests: the fault matrix of package
// tether over real loopback sockets.
//
// Each test injects one fault with internal/faultproxy between a Tether and
// a real server, over each transport (tcp, and tls through the same proxy):
// a server restart on the same port, a reset mid-stream (with a reader, a
// writer, both), a clean close by the server, refused connections that come
// back, accept-and-close flapping under the default policy, a blackholed
// peer (detected by tether.WithReadIdleTimeout), a dial slower than the
// per-attempt timeout, a name that stops resolving and comes back, and Close
// during each. Then:
//
//   - TestStorm: many Tethers reconnect after a server restart; all come
//     back, no goroutine is left, and the dials are spread by the default
//     policy's jitter. -storm=N sets how many (1000 by default).
//   - TestIntegritySoak: sequence-numbered, checksummed records flow both
//     ways through a Tether while the proxy injects random faults from a
//     seed; no record is corrupted, reordered or duplicated, every record
//     reported written arrives or was in flight on a connection that died,
//     and the stream recovers. -soak=60s runs it longer; -seed picks the
//     faults.
//   - FuzzFaultSchedule and FuzzConcurrentOps: fuzz targets for the
//     integrity invariant under a fault schedule, and for concurrent
//     Read/Write/SetDeadline/Close sequences over tethertest.Dialer.
package faultmatrix
