package session

import (
	"errors"
	"net"
	"strings"

	"github.com/io-tether/tether"
)

var (
	// ErrSessionLost is matched by the errors of operations on a session
	// that can go on no more: the server forgot it (a restart, the
	// detached-session lifetime passed), ended it (Listener.Close), or the
	// client's handler gave up reconnecting. Read returns it once every
	// byte received before the loss has been read; Write at once.
	ErrSessionLost = errors.New("tether/session: session lost")

	// ErrPeerClosed is matched by the error of a Write after the peer
	// closed the session (its Close): nobody will read those bytes.
	ErrPeerClosed = errors.New("tether/session: peer closed the session")

	// ErrPeerAborted is matched by the errors of operations after the peer
	// aborted the session (its Abort), as a reset ends a TCP connection:
	// Read returns it once every byte that arrived has been read, in place
	// of io.EOF (unless the peer's CloseWrite had ended the stream before),
	// so that a stream cut short is not taken for a whole one; Write at
	// once.
	ErrPeerAborted = errors.New("tether/session: peer aborted the session")

	// ErrNotSession is matched by the error of a Dial whose server does
	// not speak tether-session (its preface does not match): a plain
	// server, say. It is permanent: no handler retries it.
	ErrNotSession = tether.Permanent(errors.New("tether/session: peer does not speak tether-session (preface mismatch)"))

	errVersion  = tether.Permanent(errors.New("tether/session: unsupported protocol version"))
	errBusy     = errors.New("tether/session: server has too many sessions")
	errShutdown = errors.New("tether/session: server is shutting down")
	errStale    = errors.New("tether/session: resume superseded by a later attempt")
	errBadReply = errors.New("tether/session: server's resume reply failed authentication")
	errExporter = tether.Permanent(errors.New("tether/session: the two ends disagree on binding the TLS exporter (is TLS terminated in between?)"))
	errRejected = tether.Permanent(errors.New("tether/session: server rejected the handshake as malformed (a newer client, or ends that disagree on binding the TLS exporter: is TLS terminated in between?)"))
	errExpired  = errors.New("tether/session: detached session expired")
	errUnknown  = errors.New("tether/session: the server does not know the session (it restarted, or the session expired or ended there)")
	errLingered = errors.New("tether/session: closed before the peer acknowledged the whole stream")
)

// lostError is ErrSessionLost with its cause; it is permanent for the
// Tether's classifier, so that no handler retries it.
type lostError struct{ cause error }

func (e *lostError) Error() string {
	if e.cause == nil {
		return ErrSessionLost.Error()
	}
	// "tether/session: session lost: server is shutting down", not the
	// package's prefix twice.
	return ErrSessionLost.Error() + ": " + strings.TrimPrefix(e.cause.Error(), "tether/session: ")
}

func (e *lostError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrSessionLost}
	}
	return []error{ErrSessionLost, e.cause}
}

// Permanent tells tether.IsPermanent that no retry mends a lost session.
func (e *lostError) Permanent() bool { return true }

func lost(cause error) error { return &lostError{cause} }

// asLost returns err as a session's end: itself if it matches
// ErrSessionLost, else ErrSessionLost with err as the cause.
func asLost(err error) error {
	if errors.Is(err, ErrSessionLost) {
		return err
	}
	return lost(err)
}

// handshakeError is a client's failed handshake with the server at addr
// (nil: a transport that does not say).
type handshakeError struct {
	addr net.Addr
	err  error
}

func (e *handshakeError) Error() string {
	with := ""
	if e.addr != nil {
		with = " with " + e.addr.String()
	}
	return "tether/session: handshake" + with + ": " + strings.TrimPrefix(e.err.Error(), "tether/session: ")
}

func (e *handshakeError) Unwrap() error { return e.err }

// OwnHook marks the error as the session's own OnConnect hook's: the Tether
// returns it without its "tether: OnConnect:" prefix (tetheropts).
func (e *handshakeError) OwnHook() {}

// byPeer reports whether err, a session's end, came from the peer's close
// frame: its Close, Abort, or Listener.Close.
func byPeer(err error) bool {
	return errors.Is(err, ErrPeerClosed) || errors.Is(err, ErrPeerAborted) || errors.Is(err, errShutdown)
}

// fatal reports whether err ends a session whatever the handler says: a
// lost session, or a peer that does not speak the protocol.
func fatal(err error) bool {
	return errors.Is(err, ErrSessionLost) || errors.Is(err, ErrNotSession) ||
		errors.Is(err, errVersion) || errors.Is(err, errExporter) || errors.Is(err, errProtocol)
}
