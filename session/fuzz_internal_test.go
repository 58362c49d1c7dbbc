package session

import (
	"bytes"
	"fmt"
	"testing"
)

// recorder is a frameHandler that describes what it receives, data
// payloads merged by position.
type recorder struct {
	out  bytes.Buffer
	next uint64 // the position after the last data piece
}

func (r *recorder) onData(off uint64, p []byte) error {
	if off != r.next || r.out.Len() == 0 {
		fmt.Fprintf(&r.out, "\ndata@%d:", off)
	}
	r.out.Write(p)
	r.next = off + uint64(len(p))
	return nil
}

func (r *recorder) onAck(flags byte, recv, limit uint64) error {
	fmt.Fprintf(&r.out, "\nack %d %d %d", flags, recv, limit)
	r.next = ^uint64(0)
	return nil
}
func (r *recorder) onPing(v uint64) { fmt.Fprintf(&r.out, "\nping %d", v); r.next = ^uint64(0) }
func (r *recorder) onPong(v uint64) { fmt.Fprintf(&r.out, "\npong %d", v); r.next = ^uint64(0) }
func (r *recorder) onFin(o uint64) error {
	fmt.Fprintf(&r.out, "\nfin %d", o)
	r.next = ^uint64(0)
	return nil
}
func (r *recorder) onClose(b byte) error {
	fmt.Fprintf(&r.out, "\nclose %d", b)
	r.next = ^uint64(0)
	return nil
}

// FuzzFrames feeds arbitrary bytes to the frame decoder, whole and in
// pieces of sizes drawn from the input: it never panics, and the pieces
// decode to what the whole does, error included.
func FuzzFrames(f *testing.F) {
	var b []byte
	b = appendDataHdr(b, 0, 5)
	b = append(b, "hello"...)
	b = appendAck(b, ackFin, 5, 1<<20)
	b = appendU64Frame(b, framePing, 7)
	b = appendU64Frame(b, framePong, 7)
	b = appendU64Frame(b, frameFin, 5)
	b = appendClose(b, closeNormal)
	f.Add(b, uint8(3))
	f.Add([]byte{frameData, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, uint8(1))
	f.Add([]byte{0xff}, uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		var whole, pieces recorder
		var d1, d2 decoder
		err1 := d1.feed(in, &whole)
		var err2 error
		n := int(step%17) + 1
		for p := in; len(p) > 0 && err2 == nil; {
			k := min(n, len(p))
			err2 = d2.feed(p[:k], &pieces)
			p = p[k:]
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v, in pieces of %d: %v", err1, n, err2)
		}
		if err1 == nil && whole.out.String() != pieces.out.String() {
			t.Fatalf("whole:%s\npieces of %d:%s", whole.out.String(), n, pieces.out.String())
		}
	})
}

// FuzzHandshake decodes arbitrary client and server handshake messages
// and prefaces: no panic, and what decodes encodes back to the same bytes.
func FuzzHandshake(f *testing.F) {
	h := hello{typ: msgNew, flags: flagExporter, window: 1 << 20}
	f.Add(h.append(nil))
	h = hello{typ: msgResume, attempt: 3, recv: 99}
	f.Add(h.append(nil))
	r := reply{typ: msgAccept, window: 1 << 20, lifetime: 1000}
	f.Add(r.append(nil))
	r = reply{typ: msgResumed, recv: 5}
	f.Add(r.append(nil))
	f.Add(putPreface(nil, roleClient))
	f.Add([]byte{msgReject, rejectLost})
	f.Fuzz(func(t *testing.T, in []byte) {
		if h, err := decodeHello(in); err == nil {
			if out := h.append(nil); !bytes.Equal(out, in) {
				t.Fatalf("hello %x re-encodes to %x", in, out)
			}
		}
		if r, err := decodeReply(in); err == nil {
			if out := r.append(nil); !bytes.Equal(out, in) {
				t.Fatalf("reply %x re-encodes to %x", in, out)
			}
		}
		if len(in) >= prefaceLen {
			checkPreface(in[:prefaceLen], roleServer)
		}
		readPreface(bytes.NewReader(in), roleClient)
	})
}

// FuzzRing runs a program of ring operations drawn from the input against
// a plain slice: appends by copy and in place (into the space tail gave,
// with reads, discards and releases in between, as the session's Read and
// sender do while a transport reader reads), reads and releases. The ring
// holds what the slice does, in order.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 200, 1, 50, 2, 30, 3, 0, 1, 255, 4, 0})
	f.Add([]byte{1, 255, 1, 255, 2, 255, 1, 100, 5, 1, 3, 0})
	f.Add([]byte{6, 100, 0, 50, 6, 255, 2, 20, 7, 10, 6, 30, 2, 255, 7, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		var (
			r     ring
			model []byte
			next  byte // the next byte value written
			out   = make([]byte, 1<<16)
		)
		read := func(p []byte) int {
			a, b := r.front(min(len(p), r.n))
			m := copy(p, a)
			m += copy(p[m:], b)
			r.discard(m)
			return m
		}
		fill := func(p []byte) []byte {
			for i := range p {
				p[i] = next
				next++
			}
			return p
		}
		for ; len(prog) >= 2; prog = prog[2:] {
			k := int(prog[1]) * 37
			switch prog[0] % 8 {
			case 0: // append by copy
				p := fill(make([]byte, k))
				r.write(p)
				model = append(model, p...)
			case 1, 5: // read into tail, then append in place; op 5 reads and releases meanwhile
				p := r.tail(k, k+int(prog[0]))
				if p == nil {
					continue
				}
				fill(p)
				if prog[0]%6 == 5 {
					m := read(out[:min(len(out), k/2)])
					model = model[m:]
					r.release()
				}
				r.write(p)
				model = append(model, p...)
			case 2: // read
				m := read(out[:min(len(out), k)])
				if !bytes.Equal(out[:m], model[:m]) {
					t.Fatalf("read %x, want %x", out[:m], model[:m])
				}
				model = model[m:]
			case 3:
				r.release()
			case 4: // discard
				m := min(k, r.n)
				r.discard(m)
				model = model[m:]
			case 6: // reserve, discard meanwhile, commit
				r.rewind()
				a, b := r.reserve(k)
				if len(a)+len(b) != k {
					t.Fatalf("reserved %d+%d bytes, want %d", len(a), len(b), k)
				}
				m := min(k/3, r.n)
				r.discard(m)
				model = model[m:]
				fill(a)
				fill(b)
				r.commit(k)
				model = append(append(model, a...), b...)
			case 7:
				r.shrink(k)
				r.rewind()
			}
			if r.n != len(model) {
				t.Fatalf("ring holds %d bytes, want %d", r.n, len(model))
			}
		}
		got := make([]byte, r.n)
		r.peek(0, got)
		if !bytes.Equal(got, model) {
			t.Fatalf("ring holds %x, want %x", got, model)
		}
	})
}
