package auth

import (
	"sync"
	"time"
)

// Regulation defaults, in the spirit of Authelia's: 5 failures within 2
// minutes ban the username (or the client address) for 5 minutes.
const (
	DefaultMaxRetries = 5
	DefaultFindTime   = 2 * time.Minute
	DefaultBanTime    = 5 * time.Minute
)

// RegulationPolicy says when repeated login failures lead to a ban.
type RegulationPolicy struct {
	// MaxRetries failures of one key within FindTime ban it.
	MaxRetries int
	// FindTime is the window failures are counted in.
	FindTime time.Duration
	// BanTime is how long a ban lasts.
	BanTime time.Duration
}

func (p RegulationPolicy) withDefaults() RegulationPolicy {
	if p.MaxRetries <= 0 {
		p.MaxRetries = DefaultMaxRetries
	}
	if p.FindTime <= 0 {
		p.FindTime = DefaultFindTime
	}
	if p.BanTime <= 0 {
		p.BanTime = DefaultBanTime
	}
	return p
}

// maxRegulated bounds the keys kept in memory; past it, stale keys are pruned
// on the next failure.
const maxRegulated = 100_000

// Regulator counts login failures per key (a username, a client address) and
// bans keys that fail too often. It lives in memory, per process.
type Regulator struct {
	mu      sync.Mutex
	policy  RegulationPolicy
	entries map[string]*regEntry
}

type regEntry struct {
	fails       []time.Time // within FindTime, oldest first
	bannedUntil time.Time
}

// NewRegulator returns a Regulator with policy (zero fields take the defaults).
func NewRegulator(policy RegulationPolicy) *Regulator {
	return &Regulator{policy: policy.withDefaults(), entries: map[string]*regEntry{}}
}

// SetPolicy replaces the policy; counts and bans are kept.
func (r *Regulator) SetPolicy(policy RegulationPolicy) {
	r.mu.Lock()
	r.policy = policy.withDefaults()
	r.mu.Unlock()
}

// Banned returns how long the longest ban among keys still lasts, 0 if none is banned.
func (r *Regulator) Banned(now time.Time, keys ...string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		if e, ok := r.entries[k]; ok && now.Before(e.bannedUntil) {
			longest = max(longest, e.bannedUntil.Sub(now))
		}
	}
	return longest
}

// Fail records a failure for each key, banning those that reach MaxRetries.
func (r *Regulator) Fail(now time.Time, keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) >= maxRegulated {
		r.pruneLocked(now)
	}
	for _, k := range keys {
		e, ok := r.entries[k]
		if !ok {
			e = &regEntry{}
			r.entries[k] = e
		}
		e.fails = append(trimBefore(e.fails, now.Add(-r.policy.FindTime)), now)
		if len(e.fails) >= r.policy.MaxRetries {
			e.bannedUntil = now.Add(r.policy.BanTime)
			e.fails = e.fails[:0]
		}
	}
}

// Reset forgets the failures of key (after a successful login of that username).
func (r *Regulator) Reset(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[key]; ok && e.bannedUntil.IsZero() {
		delete(r.entries, key)
	} else if ok {
		e.fails = e.fails[:0]
	}
}

// Prune drops keys with no recent failure and no running ban.
func (r *Regulator) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
}

func (r *Regulator) pruneLocked(now time.Time) {
	for k, e := range r.entries {
		e.fails = trimBefore(e.fails, now.Add(-r.policy.FindTime))
		if len(e.fails) == 0 && !now.Before(e.bannedUntil) {
			delete(r.entries, k)
		}
	}
}

func trimBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return ts[i:]
}
