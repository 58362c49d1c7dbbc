package sessioncache

import (
	"crypto/tls"
	"testing"
)

func TestRestore(t *testing.T) {
	cache := tls.NewLRUClientSessionCache(4)
	s := &tls.ClientSessionState{}
	cache.Put("k", s)

	g := Note(cache, "k")
	cache.Put("k", nil) // what crypto/tls does after a failed handshake
	g.Restore()
	if got, _ := cache.Get("k"); got != s {
		t.Errorf("Get after Restore = %v, want the noted session", got)
	}

	g = Note(cache, "k")
	newer := &tls.ClientSessionState{}
	cache.Put("k", newer) // another dial succeeded meanwhile
	g.Restore()
	if got, _ := cache.Get("k"); got != newer {
		t.Errorf("Get = %v, want the newer session kept", got)
	}

	g = Note(cache, "none") // nothing to restore
	g.Restore()
	if _, ok := cache.Get("none"); ok {
		t.Errorf("Restore made a session out of nothing")
	}
	Note(nil, "k").Restore() // no panic
}
