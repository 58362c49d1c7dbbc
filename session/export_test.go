package session

// What the tests of package session_test may look at inside a Conn.

// FinAcked reports whether the peer has acknowledged c's final frame.
func FinAcked(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finAcked
}

// SenderBlocked reports whether c's sender has no transport to write to: its
// last write failed, and only a new transport (a resume) unblocks it.
func SenderBlocked(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked
}

// Acked reports whether the peer has acknowledged every byte written to c.
func Acked(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sAcked == c.sWritten
}

// InitialWindow is a session's receive window until it grows.
const InitialWindow = initialWindow
