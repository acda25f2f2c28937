package auth

import "sync"

// keyLock serializes work per key (a username's login attempts), so that
// checking for a ban and recording a failure cannot interleave with another
// attempt at the same key: parallel guesses count as if sent one after the
// other. Keys nobody holds take no memory.
type keyLock struct {
	mu    sync.Mutex
	locks map[string]*keyLockEntry
}

type keyLockEntry struct {
	mu      sync.Mutex
	holders int // goroutines holding or waiting for mu
}

// lock waits for key and returns the function that releases it.
func (k *keyLock) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLockEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = new(keyLockEntry)
		k.locks[key] = e
	}
	e.holders++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.holders--; e.holders == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
