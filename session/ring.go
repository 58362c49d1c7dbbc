package session

import "time"

// ring is a byte FIFO that grows by doubling up to the bound its caller
// keeps; it allocates nothing until the first byte.
type ring struct {
	buf   []byte
	head  int // index of the first byte
	n     int // bytes held
	limit int // the most its caller lets it hold (0: none): growth stops there
	peak  int // the most held since the last settle
	// settledAt: when settle last shrank the buffer, or looked at it.
	settledAt time.Time
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
	r.peak = max(r.peak, r.n)
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
	r.rewind()
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
	if r.limit > 0 {
		size = min(size, max(r.limit, need))
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

// front returns the first k bytes held (k <= n), in one or two pieces of
// the array: they stay put until discarded, whatever is written or grown
// meanwhile (grow copies them into a new array).
func (r *ring) front(k int) (a, b []byte) {
	if k == 0 {
		return nil, nil
	}
	i := r.head
	if j := len(r.buf) - i; j < k {
		return r.buf[i:], r.buf[:k-j]
	}
	return r.buf[i : i+k], nil
}

// reserve returns room for k more bytes after those held, in one or two
// pieces of the array, growing it as needed: a writer copies into them,
// then commits. Until then no other write or grow may come, nor a
// release; discards may (they leave the end of what is held in place).
func (r *ring) reserve(k int) (a, b []byte) {
	if k == 0 {
		return nil, nil
	}
	if r.n+k > len(r.buf) {
		r.grow(r.n + k)
	}
	t := (r.head + r.n) % len(r.buf)
	if j := len(r.buf) - t; j < k {
		return r.buf[t:], r.buf[:k-j]
	}
	return r.buf[t : t+k], nil
}

// commit appends the k bytes copied into the room reserve returned.
func (r *ring) commit(k int) {
	r.n += k
	r.peak = max(r.peak, r.n)
}

// discard drops the first k bytes.
func (r *ring) discard(k int) {
	if k > 0 {
		r.n -= k
		r.head = (r.head + k) % len(r.buf)
	}
}

// release frees an empty buffer (an idle session keeps none).
func (r *ring) release() {
	if r.n == 0 {
		r.buf, r.head = nil, 0
	}
}

// rewind moves an empty ring's start to the front of its array, so that
// a ring kept near empty reuses the same (cached) memory rather than
// cycling through all of it.
func (r *ring) rewind() {
	if r.n == 0 {
		r.head = 0
	}
}

// shrinkEvery is how often settle shrinks a ring.
const shrinkEvery = time.Second

// settle returns the buffer to the size in use once it grew (in an outage,
// or behind a reader that fell behind): to the most it held since the
// last look, or to floor if more, at most once every shrinkEvery. A
// buffer that followed every move of what it holds would be reallocated
// (and cleared) every few writes of a fast stream; one that kept the
// size it once reached would be cycled through in full, and stay in no
// cache.
func (r *ring) settle(floor int, now time.Time) {
	if now.Sub(r.settledAt) < shrinkEvery {
		return
	}
	r.settledAt = now
	r.shrink(max(floor, r.peak))
	r.peak = r.n
}

// shrink moves the bytes held into a smaller array, the least power of
// two of at least size, when the array is at least twice that and what it
// holds fits: a buffer that grew (in an outage) returns to the size in
// use, and stays in the caches.
func (r *ring) shrink(size int) {
	target := minRing
	for target < size {
		target *= 2
	}
	if len(r.buf) < 2*target || r.n > target {
		return
	}
	b := make([]byte, target)
	r.peek(0, b[:r.n])
	r.buf, r.head = b, 0
}
