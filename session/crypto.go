package session

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
)

// exporterLabel is the TLS exporter label (RFC 5705, RFC 8446 7.5) under
// which a session binds its key and resumes to the transport connection.
const exporterLabel = "EXPORTER-tether-session/1"

// exporter returns 32 bytes of keying material exported from c's TLS (or
// QUIC) connection, or nil when c exposes none.
func exporter(c net.Conn) ([]byte, error) {
	switch x := c.(type) {
	case interface {
		ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error)
	}:
		return x.ExportKeyingMaterial(exporterLabel, nil, 32)
	case interface{ ConnectionState() tls.ConnectionState }:
		cs := x.ConnectionState()
		if !cs.HandshakeComplete {
			return nil, errors.New("tether/session: TLS handshake not complete")
		}
		return cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	}
	return nil, nil
}

// deriveKey derives the session key from the X25519 shared secret, the
// first connection's exporter (salt; nil on plain transports) and the
// handshake's public values.
func deriveKey(shared, salt []byte, clientPub, serverPub []byte, id [16]byte) ([]byte, error) {
	info := make([]byte, 0, 96)
	info = append(info, "tether-session/1 key"...)
	info = append(info, clientPub...)
	info = append(info, serverPub...)
	info = append(info, id[:]...)
	return hkdf.Key(sha256.New, shared, salt, string(info), 32)
}

// resumeMAC is the client's proof in msgResume.
func resumeMAC(key []byte, h *hello, exp []byte) [32]byte {
	return mac(key, "tether-session/1 resume", []byte{h.flags}, h.id[:], counts(h.attempt, h.recv), h.nonce[:], exp)
}

// resumedMAC is the server's proof in msgResumed: over the client's
// request (its nonce among it) and the server's received count.
func resumedMAC(key []byte, h *hello, recv uint64, exp []byte) [32]byte {
	return mac(key, "tether-session/1 resumed", h.id[:], counts(h.attempt, recv), h.nonce[:], exp)
}

// counts encodes two counters as the MACs cover them.
func counts(a, b uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), a), b)
}

// mac is HMAC-SHA256 under key of label followed by parts.
func mac(key []byte, label string, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// newKeyPair returns an ephemeral X25519 key.
func newKeyPair() (*ecdh.PrivateKey, error) { return ecdh.X25519().GenerateKey(nil) }

// sharedSecret is the X25519 exchange with the peer's public key.
func sharedSecret(priv *ecdh.PrivateKey, peer [32]byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return nil, err
	}
	return priv.ECDH(pub)
}

// acceptMAC is the server's key confirmation in msgAccept: a client whose
// key differs (a TLS exporter that differs, behind a TLS-terminating proxy)
// learns it at once.
func acceptMAC(key []byte, clientPub, serverPub []byte, id [16]byte) [32]byte {
	return mac(key, "tether-session/1 accept", clientPub, serverPub, id[:])
}
