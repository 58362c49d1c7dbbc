package quic

import (
	"context"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// qconn is one QUIC connection of a Dialer, with what the Dialer needs to
// decide whether a new stream may go on it: how many Conns use it, and when
// it last heard from the server.
//
// quic-go does not say when a connection last received a packet, only how
// many it has received; a timer samples that count every half keep-alive
// interval, so heard is known to within that. A live connection hears at
// least once per keep-alive interval (the server acknowledges the PING), so
// one that has heard nothing for two intervals and a few round trips, while
// it sent at least two packets (keep-alives, retransmissions) that went
// unanswered, is taken for dead: no new stream goes on it, and the Dialer
// dials a new connection. (The packets sent keep a process that was not
// scheduled for a while, as on a loaded machine, from taking its own
// silence for the server's.)
type qconn struct {
	qc   *quic.Conn
	d    *Dialer
	addr string
	ka   time.Duration // the keep-alive interval in effect; 0: none (no sampling)

	mu       sync.Mutex
	refs     int         // Conns handed out and not closed
	retired  bool        // no new stream goes on it; closed with its last Conn
	count    uint64      // packets received
	sent     uint64      // packets sent
	sampled  time.Time   // when count was read
	heard    time.Time   // a time before which the last packet was not received
	sentThen uint64      // packets sent when a change of count was seen
	doubt    bool        // a Conn timed out: the next stream needs a packet received since
	doubtAt  uint64      // count when the doubt arose
	timer    *time.Timer // the sampler; nil once the connection is gone
	stopped  bool
	// unanswered, for a 0-RTT connection, puts back the TLS session that
	// crypto/tls dropped when the handshake failed, unless the server
	// sent an alert (the error that ended the connection); nil: none.
	unanswered func(error)
}

func newQConn(d *Dialer, addr string, qc *quic.Conn) *qconn {
	now := time.Now()
	st := qc.ConnectionStats()
	q := &qconn{qc: qc, d: d, addr: addr, ka: d.keepAlive, count: st.PacketsReceived,
		sent: st.PacketsSent, sentThen: st.PacketsSent, sampled: now, heard: now}
	if q.ka > 0 {
		q.mu.Lock()
		q.timer = time.AfterFunc(q.ka/2, q.sample)
		q.mu.Unlock()
	}
	return q
}

// sample reads the packet count; it is the timer's function.
func (q *qconn) sample() {
	if q.qc.Context().Err() != nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	q.readLocked(time.Now())
	q.timer.Reset(q.ka / 2)
}

// readLocked reads the packet count at now: when it moved since the last
// read, a packet arrived after that read.
func (q *qconn) readLocked(now time.Time) {
	st := q.qc.ConnectionStats()
	if st.PacketsReceived != q.count {
		q.count = st.PacketsReceived
		q.heard = q.sampled
		q.sentThen = st.PacketsSent
	}
	q.sent = st.PacketsSent
	q.sampled = now
}

// stop ends the sampling, once the connection is gone.
func (q *qconn) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	if q.timer != nil {
		q.timer.Stop()
	}
}

// quiet is how long a live connection may go without hearing from the
// server: two keep-alive intervals, the sampling period, and three probe
// timeouts (RFC 9002) for the round trips.
func (q *qconn) quiet() time.Duration {
	st := q.qc.ConnectionStats()
	pto := st.SmoothedRTT + max(4*st.MeanDeviation, time.Millisecond) + 25*time.Millisecond
	return 2*q.ka + q.ka/2 + 3*pto
}

// acquire takes q for a new Conn, unless it is gone, retired, or looks dead;
// a connection that looks dead is retired.
func (q *qconn) acquire(now time.Time) bool {
	if q.qc.Context().Err() != nil {
		return false
	}
	q.mu.Lock()
	if q.retired {
		q.mu.Unlock()
		return false
	}
	q.readLocked(now)
	dead := false
	switch {
	case q.doubt && q.count == q.doubtAt:
		dead = true // nothing since a stream on it timed out
	case q.ka > 0 && now.Sub(q.heard) > q.quiet() && q.sent-q.sentThen >= 2:
		dead = true // not even the keep-alives are answered
	}
	q.doubt = false
	if !dead {
		q.refs++
		q.mu.Unlock()
		return true
	}
	q.mu.Unlock()
	q.retire()
	return false
}

// release returns q from a Conn; doubt reports that the Conn gave up on it
// after a timeout, with no word from the server.
func (q *qconn) release(doubt bool) {
	q.mu.Lock()
	q.refs--
	if doubt && !q.doubt {
		q.readLocked(time.Now())
		q.doubt, q.doubtAt = true, q.count
	}
	last := q.retired && q.refs == 0
	q.mu.Unlock()
	if last {
		q.close()
	}
}

// retire stops handing out streams on q: the Dialer forgets it, and it is
// closed once its last Conn is (at once if it has none). The streams still
// on it carry on, or fail with it.
func (q *qconn) retire() {
	q.mu.Lock()
	if q.retired {
		q.mu.Unlock()
		return
	}
	q.retired = true
	last := q.refs == 0
	q.mu.Unlock()
	q.d.unlist(q)
	if last {
		q.close()
	}
}

func (q *qconn) close() {
	q.qc.CloseWithError(q.d.ConnErrorCode, "") // returns once it has ended
	if q.unanswered != nil {
		// A 0-RTT handshake that this close ended: its session goes back
		// now, before a Dial that retired q dials again (the Context's
		// own call comes later).
		q.unanswered(context.Cause(q.qc.Context()))
	}
}
