package auth

import (
	"context"
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

// RegulationStore counts login failures per key (a username, a client
// address) and bans keys that fail too often. MemoryRegulator keeps the
// counts in the process; SQLRegulator in the database, shared by replicas.
type RegulationStore interface {
	// Banned returns how long the longest ban among keys still lasts, 0 if none is banned.
	Banned(ctx context.Context, now time.Time, keys ...string) (time.Duration, error)
	// Fail records a failure for each key, banning those that reach the limit.
	Fail(ctx context.Context, now time.Time, keys ...string) error
	// Reset forgets the failures of a key that is not banned (after a successful login).
	Reset(ctx context.Context, now time.Time, key string) error
	// SetPolicy replaces the policy; recorded failures and bans are kept.
	SetPolicy(policy RegulationPolicy)
}

// banState replays failures (oldest first) under policy, the way both stores
// count: a window of FindTime, a ban of BanTime once MaxRetries fall in it,
// and a fresh count after a ban (failures during a ban are never recorded).
// It returns when the last ban ends and the failures still counting.
func banState(policy RegulationPolicy, fails []time.Time) (bannedUntil time.Time, window []time.Time) {
	for _, t := range fails {
		if t.Before(bannedUntil) {
			continue
		}
		window = append(trimBefore(window, t.Add(-policy.FindTime)), t)
		if len(window) >= policy.MaxRetries {
			bannedUntil = t.Add(policy.BanTime)
			window = nil
		}
	}
	return bannedUntil, window
}

func trimBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return ts[i:]
}

// maxRegulated bounds the keys a MemoryRegulator keeps; past it, stale keys
// are pruned on the next failure.
const maxRegulated = 100_000

// MemoryRegulator is a RegulationStore in the process's memory: bans hold on
// this replica only.
type MemoryRegulator struct {
	mu      sync.Mutex
	policy  RegulationPolicy
	entries map[string]*regEntry
}

type regEntry struct {
	fails       []time.Time // within FindTime, oldest first
	bannedUntil time.Time
}

// NewMemoryRegulator returns a MemoryRegulator with policy (zero fields take the defaults).
func NewMemoryRegulator(policy RegulationPolicy) *MemoryRegulator {
	return &MemoryRegulator{policy: policy.withDefaults(), entries: map[string]*regEntry{}}
}

// SetPolicy implements RegulationStore.
func (r *MemoryRegulator) SetPolicy(policy RegulationPolicy) {
	r.mu.Lock()
	r.policy = policy.withDefaults()
	r.mu.Unlock()
}

// Banned implements RegulationStore.
func (r *MemoryRegulator) Banned(_ context.Context, now time.Time, keys ...string) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		if e, ok := r.entries[k]; ok && now.Before(e.bannedUntil) {
			longest = max(longest, e.bannedUntil.Sub(now))
		}
	}
	return longest, nil
}

// Fail implements RegulationStore.
func (r *MemoryRegulator) Fail(_ context.Context, now time.Time, keys ...string) error {
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
	return nil
}

// Reset implements RegulationStore.
func (r *MemoryRegulator) Reset(_ context.Context, now time.Time, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[key]; ok && !now.Before(e.bannedUntil) {
		delete(r.entries, key)
	}
	return nil
}

// Prune drops keys with no recent failure and no running ban.
func (r *MemoryRegulator) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
}

func (r *MemoryRegulator) pruneLocked(now time.Time) {
	for k, e := range r.entries {
		e.fails = trimBefore(e.fails, now.Add(-r.policy.FindTime))
		if len(e.fails) == 0 && !now.Before(e.bannedUntil) {
			delete(r.entries, k)
		}
	}
}

// Interface guard
var _ RegulationStore = (*MemoryRegulator)(nil)
