package session

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The wire format of tether-session/1; PROTOCOL.md is its specification.

const (
	// magic begins every preface; a version byte and a role byte follow.
	magic      = "tether-session"
	version    = 1
	prefaceLen = len(magic) + 2
	roleClient = 'C'
	roleServer = 'S'
)

// Handshake message types.
const (
	msgNew     = 0x10 // client: a new session
	msgResume  = 0x11 // client: resume a session
	msgAccept  = 0x20 // server: the new session's id and parameters
	msgResumed = 0x21 // server: the resume is accepted
	msgReject  = 0x22 // server: no
)

// Handshake message sizes, the type byte included.
const (
	newLen     = 1 + 1 + 32 + 4
	resumeLen  = 1 + 1 + 16 + 8 + 8 + 16 + 32
	acceptLen  = 1 + 16 + 32 + 4 + 4 + 32
	resumedLen = 1 + 8 + 32
	rejectLen  = 1 + 1
)

// Reject codes.
const (
	rejectLost     = 1 // unknown session, bad MAC, or expired: the same answer
	rejectBusy     = 2 // too many sessions: try again later
	rejectVersion  = 3 // unsupported version, or not a session client
	rejectBad      = 4 // malformed request, or the exporter binding does not match
	rejectStale    = 5 // an attempt counter not above the last accepted
	rejectShutdown = 6 // the listener is closing
)

// flagExporter, in the client's flags, says that the key and MACs mix in
// the TLS exporter of the transport connection.
const flagExporter = 0x01

// Frame types.
const (
	frameData  = 0x01
	frameAck   = 0x02
	framePing  = 0x03
	framePong  = 0x04
	frameFin   = 0x05
	frameClose = 0x06
)

// Frame header sizes, the type byte included. A data frame's payload
// follows its header.
const (
	dataHdrLen  = 1 + 8 + 4
	ackLen      = 1 + 1 + 8 + 8
	pingLen     = 1 + 8
	finLen      = 1 + 8
	closeLen    = 1 + 1
	maxFrameHdr = ackLen
	// maxPayload is the largest payload of a data frame.
	maxPayload = 64 << 10
)

// ackFin, in an ack's flags, says that the final frame was received and
// every byte before it.
const ackFin = 0x01

// Close reasons.
const (
	closeNormal  = 0 // the session is over after the final frame
	closeLost    = 1 // the peer ended the session (listener closed, expired)
	closeAborted = 2 // the peer aborted the session (Abort): its stream is cut
)

var errProtocol = errors.New("tether/session: protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

func putPreface(b []byte, role byte) []byte {
	b = append(b, magic...)
	return append(b, version, role)
}

// checkPreface checks the peer's preface: want is the role the peer must
// have.
func checkPreface(p []byte, want byte) error {
	if len(p) != prefaceLen || string(p[:len(magic)]) != magic {
		return ErrNotSession
	}
	if p[len(magic)] != version {
		return fmt.Errorf("%w (peer speaks tether-session/%d, this end /%d)", errVersion, p[len(magic)], version)
	}
	if p[len(magic)+1] != want {
		return fmt.Errorf("%w: it sent this end's own preface back (an echo server?)", ErrNotSession)
	}
	return nil
}

// hello is a client's handshake message (msgNew or msgResume).
type hello struct {
	typ     byte
	flags   byte
	pub     [32]byte // msgNew
	window  uint32   // msgNew
	id      [16]byte // msgResume
	attempt uint64
	recv    uint64
	nonce   [16]byte
	mac     [32]byte
}

// helloLen returns the size of the client message whose type is typ, or 0.
func helloLen(typ byte) int {
	switch typ {
	case msgNew:
		return newLen
	case msgResume:
		return resumeLen
	}
	return 0
}

func (h *hello) append(b []byte) []byte {
	b = append(b, h.typ, h.flags)
	switch h.typ {
	case msgNew:
		b = append(b, h.pub[:]...)
		b = binary.BigEndian.AppendUint32(b, h.window)
	case msgResume:
		b = append(b, h.id[:]...)
		b = binary.BigEndian.AppendUint64(b, h.attempt)
		b = binary.BigEndian.AppendUint64(b, h.recv)
		b = append(b, h.nonce[:]...)
		b = append(b, h.mac[:]...)
	}
	return b
}

// decodeHello decodes a whole client message.
func decodeHello(p []byte) (hello, error) {
	var h hello
	if len(p) == 0 || helloLen(p[0]) == 0 {
		return h, protoErr("unknown handshake message")
	}
	if len(p) != helloLen(p[0]) {
		return h, protoErr("handshake message of %d bytes, want %d", len(p), helloLen(p[0]))
	}
	h.typ, h.flags = p[0], p[1]
	if h.flags&^flagExporter != 0 {
		return h, protoErr("unknown flags %#x", h.flags)
	}
	p = p[2:]
	switch h.typ {
	case msgNew:
		copy(h.pub[:], p)
		h.window = binary.BigEndian.Uint32(p[32:])
		if h.window < minWindow {
			return h, protoErr("window %d below %d", h.window, minWindow)
		}
	case msgResume:
		copy(h.id[:], p)
		h.attempt = binary.BigEndian.Uint64(p[16:])
		h.recv = binary.BigEndian.Uint64(p[24:])
		copy(h.nonce[:], p[32:])
		copy(h.mac[:], p[48:])
	}
	return h, nil
}

// reply is a server's handshake message.
type reply struct {
	typ      byte
	id       [16]byte // msgAccept
	pub      [32]byte
	window   uint32
	lifetime uint32   // milliseconds
	recv     uint64   // msgResumed
	mac      [32]byte // msgAccept, msgResumed
	code     byte     // msgReject
}

func replyLen(typ byte) int {
	switch typ {
	case msgAccept:
		return acceptLen
	case msgResumed:
		return resumedLen
	case msgReject:
		return rejectLen
	}
	return 0
}

func (r *reply) append(b []byte) []byte {
	b = append(b, r.typ)
	switch r.typ {
	case msgAccept:
		b = append(b, r.id[:]...)
		b = append(b, r.pub[:]...)
		b = binary.BigEndian.AppendUint32(b, r.window)
		b = binary.BigEndian.AppendUint32(b, r.lifetime)
		b = append(b, r.mac[:]...)
	case msgResumed:
		b = binary.BigEndian.AppendUint64(b, r.recv)
		b = append(b, r.mac[:]...)
	case msgReject:
		b = append(b, r.code)
	}
	return b
}

// decodeReply decodes a whole server message.
func decodeReply(p []byte) (reply, error) {
	var r reply
	if len(p) == 0 || replyLen(p[0]) == 0 {
		return r, protoErr("unknown handshake reply")
	}
	if len(p) != replyLen(p[0]) {
		return r, protoErr("handshake reply of %d bytes, want %d", len(p), replyLen(p[0]))
	}
	r.typ = p[0]
	p = p[1:]
	switch r.typ {
	case msgAccept:
		copy(r.id[:], p)
		copy(r.pub[:], p[16:])
		r.window = binary.BigEndian.Uint32(p[48:])
		r.lifetime = binary.BigEndian.Uint32(p[52:])
		copy(r.mac[:], p[56:])
		if r.window < minWindow {
			return r, protoErr("window %d below %d", r.window, minWindow)
		}
	case msgResumed:
		r.recv = binary.BigEndian.Uint64(p)
		copy(r.mac[:], p[8:])
	case msgReject:
		r.code = p[0]
	}
	return r, nil
}

// frameHandler receives the frames a decoder decodes. A data frame's
// payload may come in pieces: off is the stream position of p[0].
type frameHandler interface {
	onData(off uint64, p []byte) error
	onAck(flags byte, recv, limit uint64) error
	onPing(v uint64)
	onPong(v uint64)
	onFin(off uint64) error
	onClose(reason byte) error
}

// decoder decodes a stream of frames fed to it in pieces of any size. It
// hands a data frame's payload on as it arrives, without buffering it.
type decoder struct {
	hdr  [maxFrameHdr]byte
	hn   int    // bytes of hdr filled
	left int    // payload bytes still to come in the current data frame
	off  uint64 // stream position of the next payload byte
	size int    // the payload size of the last data frame begun
}

// reset forgets a partial frame (the connection it came from is gone).
func (d *decoder) reset() { d.hn, d.left = 0, 0 }

// frameHdrLen returns the header size of a frame of type typ, or 0.
func frameHdrLen(typ byte) int {
	switch typ {
	case frameData:
		return dataHdrLen
	case frameAck:
		return ackLen
	case framePing, framePong:
		return pingLen
	case frameFin:
		return finLen
	case frameClose:
		return closeLen
	}
	return 0
}

// feed decodes p, calling h for each frame or piece of payload. After an
// error the decoder must not be fed again.
func (d *decoder) feed(p []byte, h frameHandler) error {
	for len(p) > 0 {
		if d.left > 0 {
			n := min(d.left, len(p))
			if err := h.onData(d.off, p[:n]); err != nil {
				return err
			}
			d.off += uint64(n)
			d.left -= n
			p = p[n:]
			continue
		}
		if d.hn == 0 && frameHdrLen(p[0]) == 0 {
			return protoErr("unknown frame type %#x", p[0])
		}
		need := frameHdrLen(d.hdr[0])
		if d.hn == 0 {
			need = frameHdrLen(p[0])
		}
		n := copy(d.hdr[d.hn:need], p)
		d.hn += n
		p = p[n:]
		if d.hn < need {
			return nil
		}
		d.hn = 0
		if err := d.frame(d.hdr[:need], h); err != nil {
			return err
		}
	}
	return nil
}

// frame handles one whole header.
func (d *decoder) frame(b []byte, h frameHandler) error {
	switch b[0] {
	case frameData:
		off := binary.BigEndian.Uint64(b[1:])
		n := binary.BigEndian.Uint32(b[9:])
		if n == 0 || n > maxPayload {
			return protoErr("data frame of %d bytes", n)
		}
		if off > maxPos-uint64(n) {
			return protoErr("data frame beyond the stream's end")
		}
		d.off, d.left, d.size = off, int(n), int(n)
	case frameAck:
		if b[1]&^ackFin != 0 {
			return protoErr("unknown ack flags %#x", b[1])
		}
		return h.onAck(b[1], binary.BigEndian.Uint64(b[2:]), binary.BigEndian.Uint64(b[10:]))
	case framePing:
		h.onPing(binary.BigEndian.Uint64(b[1:]))
	case framePong:
		h.onPong(binary.BigEndian.Uint64(b[1:]))
	case frameFin:
		off := binary.BigEndian.Uint64(b[1:])
		if off > maxPos {
			return protoErr("final frame beyond the stream's end")
		}
		return h.onFin(off)
	case frameClose:
		if b[1] > closeAborted {
			return protoErr("unknown close reason %d", b[1])
		}
		return h.onClose(b[1])
	}
	return nil
}

// maxPos bounds stream positions, so that sums of positions and sizes
// never overflow.
const maxPos = 1 << 62

// appendDataHdr appends the header of a data frame of n bytes at off; the
// payload follows.
func appendDataHdr(b []byte, off uint64, n int) []byte {
	b = append(b, frameData)
	b = binary.BigEndian.AppendUint64(b, off)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func appendAck(b []byte, flags byte, recv, limit uint64) []byte {
	b = append(b, frameAck, flags)
	b = binary.BigEndian.AppendUint64(b, recv)
	return binary.BigEndian.AppendUint64(b, limit)
}

func appendU64Frame(b []byte, typ byte, v uint64) []byte {
	b = append(b, typ)
	return binary.BigEndian.AppendUint64(b, v)
}

func appendClose(b []byte, reason byte) []byte { return append(b, frameClose, reason) }
