package session

// ring is a byte FIFO that grows by doubling up to the bound its caller
// keeps; it allocates nothing until the first byte.
type ring struct {
	buf  []byte
	head int // index of the first byte
	n    int // bytes held
}

const minRing = 4 << 10

// write appends p, growing the buffer as needed.
func (r *ring) write(p []byte) {
	if r.n+len(p) > len(r.buf) {
		r.grow(r.n + len(p))
	}
	tail := (r.head + r.n) % len(r.buf)
	k := copy(r.buf[tail:], p)
	copy(r.buf, p[k:])
	r.n += len(p)
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
	r.n -= k
	if r.n == 0 {
		r.head = 0
		return
	}
	r.head = (r.head + k) % len(r.buf)
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
