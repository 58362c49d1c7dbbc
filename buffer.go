package tether

import "fmt"

// writeBuffer holds the Writes made while the Tether is not Ready
// (WithWriteBuffer), whole and in order, until a connection takes them.
// Guarded by Tether.mu.
type writeBuffer struct {
	data    []byte // the buffered bytes, from head on
	head    int
	segs    []int // the lengths of the Writes still in data, in order
	dropped int64 // bytes of buffered Writes that no connection will get
	// flushing: the buffer is being written to a connection, and takes no
	// more Writes until it is empty (else a producer that keeps up with
	// the flush would keep it from ever ending).
	flushing bool
}

// size returns the count of bytes buffered (0 for a nil buffer).
func (b *writeBuffer) size() int {
	if b == nil {
		return 0
	}
	return len(b.data) - b.head
}

func (b *writeBuffer) empty() bool { return b == nil || len(b.segs) == 0 }

// free returns the room left in a buffer of n bytes for a Write.
func (b *writeBuffer) free(n int) int {
	if b == nil {
		return n
	}
	if b.flushing {
		return 0
	}
	return n - b.size()
}

// add buffers the Write p.
func (b *writeBuffer) add(p []byte) {
	if b.head > 0 && len(b.data)+len(p) > cap(b.data) {
		// Move what a cut flush left to the front rather than grow.
		b.data = append(b.data[:0], b.data[b.head:]...)
		b.head = 0
	}
	b.data = append(b.data, p...)
	b.segs = append(b.segs, len(p))
}

// first returns the bytes of the first buffered Write.
func (b *writeBuffer) first() []byte {
	return b.data[b.head : b.head+b.segs[0]]
}

// wrote accounts for a connection's Write of first(), which took n bytes
// and returned err; on a failure, the write policy says what becomes of
// the rest of that Write: it stays first (WriteResume, and WriteWhole when
// the connection took none of it) or is dropped.
func (b *writeBuffer) wrote(n int, err error, policy uint8) {
	p := WritePolicy(policy)
	b.head += n
	b.segs[0] -= n
	if err != nil && (p == WriteDrop || (p == WriteWhole && n > 0)) {
		b.dropped += int64(b.segs[0])
		b.head += b.segs[0]
		b.segs[0] = 0
	}
	if b.segs[0] == 0 {
		b.segs = b.segs[1:]
	}
	if len(b.segs) == 0 { // reuse the space
		b.data, b.head, b.segs = b.data[:0], 0, b.segs[:0]
	}
}

// buffer handles a Write p made while the current link c is down, when a
// write buffer or WithFailFast is set. It reports whether it handled the
// Write (buffered it, or failed it fast), with the Write's results; when it
// did not, the Write waits for a connection.
func (t *Tether) buffer(c *link, p []byte) (handled bool, n int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.err != nil:
		return true, 0, t.endErrLocked(dirWrite)
	case t.cur.Load() != c:
		return false, 0, nil // a connection came meanwhile
	}
	if t.rec == nil {
		t.startLocked(nil, nil) // Idle: this Write dials, whether it is buffered, fails fast or waits
	}
	if len(p) == 0 {
		// Nothing to keep: buffered, it would become a write of nothing
		// to the new connection, which waits for a reader on a
		// synchronous pipe (net.Pipe) and so holds the reconnect.
		return true, 0, nil
	}
	if len(p) <= t.bufLocked().free(t.cfg.buffer) {
		x := t.extraLocked()
		if x.buf == nil {
			x.buf = &writeBuffer{}
		}
		x.buf.add(p)
		return true, len(p), nil
	}
	if t.cfg.failFast {
		return true, 0, fmt.Errorf("%w (%d bytes, %d of %d free)", ErrBufferFull, len(p), t.bufLocked().free(t.cfg.buffer), t.cfg.buffer)
	}
	return false, 0, nil
}

// Buffered returns the count of bytes that Writes handed to the write
// buffer (WithWriteBuffer) and that no connection has taken yet. After
// Close or a give-up it stays at the count never sent.
func (t *Tether) Buffered() int {
	if !t.valid() {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bufLocked().size()
}

// Dropped returns the count of bytes that buffered Writes reported as
// accepted and that no connection will ever get: the rest of a Write that a
// connection's loss cut while the buffer was being written to it (as the
// write policy says), and, once the Tether is closed or gave up, the bytes
// still buffered. A Write that was not buffered reports its own loss.
func (t *Tether) Dropped() int64 {
	if !t.valid() {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bufLocked()
	if b == nil {
		return 0
	}
	n := b.dropped
	if t.err != nil {
		n += int64(b.size())
	}
	return n
}
