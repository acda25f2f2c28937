package auth

import (
	"sync"
	"time"
)

// verifiedCacheSize bounds the verified-token cache; when full it starts over.
const verifiedCacheSize = 8192

// verifiedCache remembers tokens that passed Verify, keyed by their exact
// text, so a token presented again costs a map lookup instead of a signature
// check and a JSON decode. Only verified tokens enter it, and an entry is
// honoured only until the token's exp (plus leeway): a forged or altered
// token is never found. Revocation is checked on every request regardless.
type verifiedCache struct {
	mu      sync.RWMutex
	entries map[string]*Claims
}

func (vc *verifiedCache) get(token string, now time.Time, leeway time.Duration) (*Claims, bool) {
	vc.mu.RLock()
	c, ok := vc.entries[token]
	vc.mu.RUnlock()
	if !ok || !now.Before(c.ExpiresAt.Add(leeway)) {
		return nil, false
	}
	return c, true
}

func (vc *verifiedCache) put(token string, c *Claims) {
	vc.mu.Lock()
	if vc.entries == nil || len(vc.entries) >= verifiedCacheSize {
		vc.entries = make(map[string]*Claims, 256)
	}
	vc.entries[token] = c
	vc.mu.Unlock()
}
