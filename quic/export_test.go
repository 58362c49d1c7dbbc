package quic

// SetReplayHook makes f run as each replay of rejected 0-RTT data begins,
// with the write lock held, until restore is called.
func SetReplayHook(f func()) (restore func()) {
	testHookReplay = f
	return func() { testHookReplay = nil }
}
