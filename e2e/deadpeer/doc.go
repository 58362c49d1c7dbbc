// Package deadpeer holds no code, only tests: dead-peer detection on a true
// blackhole, which the in-process fault proxy cannot give (through it, the
// client's kernel still talks to the proxy, so TCP keep-alive never fails).
//
// TestDeadPeer puts the servers in a network namespace of their own, joined
// to the test's by a veth pair on a /30 of 10.213.7.0/24 (10.213.7.1 ↔
// 10.213.7.2 unless another run holds that one), and blackholes a server's
// port with an nftables rule inside the namespace that drops every segment
// both ways: the peer sends neither a reset nor an ICMP error, and the
// client's kernel sees nothing. Then, over tcp and over tls:
//
//   - keepalive: tcp.Dialer.KeepAlive 1 s idle, 1 s interval, 3 probes, with
//     a Read waiting: Disconnected with ETIMEDOUT about 4 s after the last
//     byte received;
//   - usertimeout: tcp.Dialer.UserTimeout 2 s with written data that is never
//     acknowledged: Disconnected with ETIMEDOUT about 2.4 s after the Write
//     (the kernel checks the timeout at its retransmission timer);
//   - watchdog: tether.WithReadIdleTimeout 1 s on a heartbeat, keep-alive
//     off: Disconnected with ErrIdleTimeout about 1 s after the last tick.
//
// In each, a redial into the blackhole times out, and once the rule is
// removed the Tether reconnects and carries data again. The detection times
// are logged (go test -v).
//
// A socket belongs for life to the namespace it was made in, and the
// standard library cannot run a goroutine in another namespace: the test
// binary runs itself under ip netns exec to make the listeners there and
// passes them back over a Unix socket; the servers then run in the test
// process.
//
// The tests need root, ip (iproute2) and nft (nftables); without one of
// them they skip and say which is missing. They delete the namespace, the
// veth pair and the nftables table at the end, and first whatever a run that
// died left behind (the names carry the PID of the test process: a
// namespace tether-dp-PID, veths tdpPIDh and tdpPIDn, a table tetherdpPID).
//
//	sudo go test -v ./e2e/deadpeer
package deadpeer
