package quic_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// The smallest HTTP/3 client the interop tests need: a GET as one HEADERS
// frame whose field section uses the QPACK static table and literals only
// (no dynamic table, no Huffman coding), and a response read as frames to
// the server's FIN. The client opens no control stream: the servers tested
// answer requests without the client's SETTINGS.

// h3Get returns the HEADERS frame of a GET for path at authority.
func h3Get(authority, path string) []byte {
	var fs []byte
	fs = append(fs, 0x00, 0x00)         // Required Insert Count 0, Delta Base 0
	fs = append(fs, 0xc0|17)            // indexed, static: :method GET
	fs = append(fs, 0xc0|23)            // indexed, static: :scheme https
	fs = qpackLiteral(fs, 0, authority) // literal with static name :authority
	fs = qpackLiteral(fs, 1, path)      // literal with static name :path
	return h3Frame(nil, 0x01, fs)
}

// qpackLiteral appends a literal field line with the static table's name
// idx and value v (RFC 9204, 4.5.4: 01NT then a 4-bit index).
func qpackLiteral(b []byte, idx int, v string) []byte {
	b = qpackInt(b, 0x50, 4, idx) // N=0, T=1 (static)
	b = qpackInt(b, 0x00, 7, len(v))
	return append(b, v...)
}

// qpackInt appends n as an HPACK/QPACK integer with an n-bit prefix, the
// first byte's high bits set to flags.
func qpackInt(b []byte, flags byte, prefix uint, n int) []byte {
	max := 1<<prefix - 1
	if n < max {
		return append(b, flags|byte(n))
	}
	b = append(b, flags|byte(max))
	for n -= max; n >= 128; n >>= 7 {
		b = append(b, byte(n%128)|0x80)
	}
	return append(b, byte(n))
}

// h3Frame appends a frame of type typ with payload p.
func h3Frame(b []byte, typ uint64, p []byte) []byte {
	b = appendVarint(b, typ)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

// appendVarint appends v as a QUIC variable-length integer.
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v))
	case v < 1<<30:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, byte(v>>56)|0xc0, byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func readVarint(r *bufio.Reader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	v := uint64(first & 0x3f)
	for range 1<<(first>>6) - 1 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		v = v<<8 | uint64(b)
	}
	return v, nil
}

// statusByIndex holds the :status entries of the QPACK static table.
var statusByIndex = map[int]int{24: 103, 25: 200, 26: 304, 27: 404, 28: 503,
	63: 100, 64: 204, 65: 206, 66: 302, 67: 400, 68: 403, 69: 421, 70: 425, 71: 500}

// readH3Response reads a response to the end of the stream: the status of
// its first HEADERS frame and the payload of its DATA frames.
func readH3Response(r io.Reader) (status int, body []byte, err error) {
	br := bufio.NewReader(r)
	for {
		typ, err := readVarint(br)
		if err == io.EOF {
			if status == 0 {
				return 0, body, errors.New("h3: the stream ended before a HEADERS frame")
			}
			return status, body, nil
		}
		if err != nil {
			return status, body, err
		}
		n, err := readVarint(br)
		if err != nil {
			return status, body, noEOF(err)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return status, body, noEOF(err)
		}
		switch typ {
		case 0x00: // DATA
			body = append(body, p...)
		case 0x01: // HEADERS
			if status == 0 {
				if status, err = h3Status(p); err != nil {
					return 0, body, err
				}
			}
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// h3Status decodes the :status of a field section: the first field line,
// which servers send as a static-table reference.
func h3Status(p []byte) (int, error) {
	if len(p) < 3 || p[0] != 0 || p[1]&0x7f != 0 {
		return 0, fmt.Errorf("h3: a field section that needs the dynamic table: % x", p[:min(len(p), 8)])
	}
	b := p[2]
	if b&0xc0 != 0xc0 {
		return 0, fmt.Errorf("h3: first field line %#x is not a static reference", b)
	}
	idx := int(b & 0x3f)
	if idx == 0x3f && len(p) > 3 {
		idx += int(p[3]) // the static table's :status entries need one more byte at most
	}
	s, ok := statusByIndex[idx]
	if !ok {
		return 0, fmt.Errorf("h3: first field line is static entry %d, not a :status", idx)
	}
	return s, nil
}
