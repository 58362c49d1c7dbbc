package session

import "time"

// The transport readers: each reads frames from its transport and feeds
// them to the session (under c.mu). A data frame's payload is read
// straight into the receive buffer where that is where it goes, so that
// the only copy of a received byte is the one Read makes.

// directMin is the smallest read made straight into the receive buffer:
// below it, one read of many small frames into the reader's own buffer
// costs less than a read per frame.
const directMin = 2 << 10

// A frameReader is the state of one transport's reader.
type frameReader struct {
	dec   decoder
	buf   []byte // for headers and small frames
	small int    // reads in a row of control frames only (sizeReadBuf)
	full  bool   // the last read was into all of buf
}

// next returns where the reader's next read goes: while it is inside the
// payload of a data frame that carries the next bytes of the stream, the
// free space of the receive buffer (also room for the next frame's
// header, if it is there: the payload after it overwrites it); else its
// own buffer, only a little of it while data frames are large (the end
// of a payload, a header, the start of the next payload, which goes into
// the receive buffer once more). A read that waits in the middle of a
// payload holds the receive buffer: a peer that stops inside a frame
// keeps it allocated, which an idle session otherwise frees.
func (c *Conn) next(r *frameReader) []byte {
	r.full = false
	if d := &r.dec; d.left >= directMin {
		c.mu.Lock()
		var p []byte
		if limit := c.limitLocked(); d.off == c.rRecv && limit > c.rRecv {
			// What the peer may send. (A peer that sent beyond the
			// limit it was told, within what a larger window let this
			// end take, is past it once the window shrank: onData ends
			// the session at its next byte.)
			need := min(uint64(d.left), limit-c.rRecv)
			p = c.rcv.tail(int(need), d.left+maxFrameHdr)
		}
		c.mu.Unlock()
		if len(p) >= directMin {
			return p
		}
	}
	if r.buf == nil {
		r.buf = make([]byte, readBufMin)
	}
	if r.dec.size >= directMin {
		return r.buf[:min(len(r.buf), readBufMin)]
	}
	r.full = true
	return r.buf
}

// took feeds the bytes p that the reader read into the slice next gave
// it, from a transport of epoch (0: any). It returns false when the
// reader must stop: the session ended (of a bad frame, or a close frame),
// or epoch is over.
func (c *Conn) took(r *frameReader, p []byte, epoch uint64) bool {
	c.mu.Lock()
	if c.ended || epoch != 0 && c.epoch != epoch {
		c.mu.Unlock()
		return false
	}
	err := c.feedLocked(&r.dec, p, time.Now())
	reason := c.closeRecv
	c.mu.Unlock()
	switch {
	case err != nil:
		if c.l != nil {
			c.l.logf("tether/session: session ended", "id", c.id[:], "err", err)
		}
		c.finish(lost(err))
		return false
	case reason >= 0:
		c.answerClose(reason)
		c.finish(closeErr(reason))
		return false
	}
	if r.full {
		r.buf = sizeReadBuf(r.buf, len(p), &r.small)
	}
	return true
}

// sizeReadBuf returns the buffer for a transport reader's next read, after
// one that read n bytes into buf: twice as large when the read filled it
// (up to readBufMax), back to readBufMin after four reads in a row of
// control frames only (an idle session keeps no large buffer). small
// counts those reads.
func sizeReadBuf(buf []byte, n int, small *int) []byte {
	switch {
	case n == len(buf) && len(buf) < readBufMax:
		*small = 0
		return make([]byte, 2*len(buf))
	case n > 64 || len(buf) == readBufMin:
		*small = 0
	default:
		if *small++; *small >= 4 {
			*small = 0
			return make([]byte, readBufMin)
		}
	}
	return buf
}
