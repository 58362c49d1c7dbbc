package quic

import (
	"net"

	"github.com/quic-go/quic-go"
)

// NewServerConn returns a server's stream as a net.Conn, for tests that serve
// the streams of a quic-go Listener as net.Conns.
func NewServerConn(qc *quic.Conn, s *quic.Stream) net.Conn { return newPeerConn(qc, s) }
