// Package sessioncache keeps a TLS client's session across a handshake that
// failed for want of an answer, for the tls and quic dialers.
//
// crypto/tls drops the session it offered from the client's cache when a
// handshake fails, whatever the reason (it must: a server aborts on a
// corrupted ticket, and the client would offer it for ever). But when the
// server never answered (it was down, a dial timed out, the connection was
// reset mid handshake), the session is as good as before, and dropping it
// costs the redial that succeeds a full handshake (and 0-RTT). A Guard puts
// it back in that case.
package sessioncache

import "crypto/tls"

// A Guard remembers the session that a cache held for one server before a
// handshake.
type Guard struct {
	cache tls.ClientSessionCache
	key   string
	prev  *tls.ClientSessionState
}

// Note returns a Guard for the session that cache holds under key (the
// server name: crypto/tls's and quic-go's cache key) before a handshake. A
// nil cache or an empty key makes a Guard that does nothing.
func Note(cache tls.ClientSessionCache, key string) Guard {
	if cache == nil || key == "" {
		return Guard{}
	}
	prev, _ := cache.Get(key)
	return Guard{cache, key, prev}
}

// Restore puts the noted session back if the failed handshake dropped it and
// no other handshake has stored a newer one meanwhile. Call it only after a
// handshake that failed without the server's word: not after a TLS alert.
func (g Guard) Restore() {
	if g.prev == nil {
		return
	}
	if cur, ok := g.cache.Get(g.key); ok && cur != nil {
		return
	}
	g.cache.Put(g.key, g.prev)
}
