package quic

// SetReplayHook makes f run as each replay of rejected 0-RTT data begins,
// with the write lock held, until restore is called.
func SetReplayHook(f func()) (restore func()) {
	testHookReplay = f
	return func() { testHookReplay = nil }
}

// ZeroRTTCopies reports whether c still keeps a copy of each Write for a
// replay of rejected 0-RTT data, and how many bytes it keeps: memory that
// no API shows. It waits for a Write in progress.
func ZeroRTTCopies(c *Conn) (keeping bool, kept int) {
	if c.wlock == nil {
		return c.early.Load(), 0 // never opened in 0-RTT
	}
	c.wlock <- struct{}{}
	defer func() { <-c.wlock }()
	return c.early.Load(), len(c.sent)
}
