package session

// ring is a byte FIFO that grows by doubling up to the bound its caller
// keeps; it allocates nothing until the first byte.
type ring struct {
	buf  []byte
	head int // index of the first byte
	n    int // bytes held
}

const minRing = 4 << 10

// write appends p, growing the buffer as needed. Bytes read into the
// space that tail returned are appended in place, without a copy.
func (r *ring) write(p []byte) {
	if len(p) == 0 {
		return
	}
	if r.n+len(p) > len(r.buf) {
		r.grow(r.n + len(p))
	}
	tail := (r.head + r.n) % len(r.buf)
	if &r.buf[tail] != &p[0] {
		k := copy(r.buf[tail:], p)
		copy(r.buf, p[k:])
	}
	r.n += len(p)
}

// tail returns free space after the bytes held, in one piece of at most
// max bytes, after growing the buffer so that need bytes are free: a
// reader reads into it, and write appends what it read there. Until that
// write, no other write may come, but reads, discards and a release may
// (write then copies).
func (r *ring) tail(need, max int) []byte {
	if r.n+need > len(r.buf) {
		r.grow(r.n + need)
	}
	if r.n == len(r.buf) {
		return nil
	}
	t := (r.head + r.n) % len(r.buf)
	end := len(r.buf)
	if t < r.head {
		end = r.head
	}
	return r.buf[t:min(end, t+max)]
}

func (r *ring) grow(need int) {
	size := max(2*len(r.buf), minRing)
	for size < need {
		size *= 2
	}
	b := make([]byte, size)
	r.peek(0, b[:r.n])
	r.buf, r.head = b, 0
}

// peek copies into p the bytes from offset off (off+len(p) <= n).
func (r *ring) peek(off int, p []byte) {
	if len(p) == 0 {
		return
	}
	i := (r.head + off) % len(r.buf)
	k := copy(p, r.buf[i:])
	copy(p[k:], r.buf)
}

// discard drops the first k bytes.
func (r *ring) discard(k int) {
	if k > 0 {
		r.n -= k
		r.head = (r.head + k) % len(r.buf)
	}
}

// read moves up to len(p) bytes into p.
func (r *ring) read(p []byte) int {
	k := min(len(p), r.n)
	r.peek(0, p[:k])
	r.discard(k)
	return k
}

// release frees an empty buffer (an idle session keeps none).
func (r *ring) release() {
	if r.n == 0 {
		r.buf, r.head = nil, 0
	}
}
