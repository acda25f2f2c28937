package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
)

// FailurePolicy says what happens to a request when its zone's store fails.
type FailurePolicy string

// The failure policies.
const (
	// FailOpen lets the request through unlimited.
	FailOpen FailurePolicy = "fail_open"
	// FailClosed refuses the request.
	FailClosed FailurePolicy = "fail_closed"
)

// ParsePolicy reads "fail_open" or "fail_closed".
func ParsePolicy(s string) (FailurePolicy, error) {
	switch p := FailurePolicy(s); p {
	case FailOpen, FailClosed:
		return p, nil
	}
	return "", fmt.Errorf("on_failure %q: want fail_open or fail_closed", s)
}

// Zone limits the hits of each key to a rate, in a store, and applies a
// failure policy when the store fails. A zone's counters are identified by
// its name and rate, so two zones never share counters.
type Zone struct {
	// Name identifies the zone; it prefixes every key in the store.
	Name string
	// Rate is the number of hits allowed per period.
	Rate limiter.Rate
	// Store keeps the counters.
	Store limiter.Store
	// Policy is applied when Store fails.
	Policy FailurePolicy
}

// Decision is the outcome of one hit.
type Decision struct {
	// Allowed is true when the request may proceed.
	Allowed bool
	// Limit, Remaining and Reset are the zone's state after the hit; they are
	// zero when the store failed.
	Limit, Remaining int64
	// Reset is when the current window ends.
	Reset time.Time
	// StoreErr is the store's error, if it failed; Allowed then follows the policy.
	StoreErr error
}

// RetryAfter is how long a refused client should wait, in whole seconds
// rounded up, and never less than one.
func (d Decision) RetryAfter(now time.Time) int64 {
	// Reset is truncated to the second, so the window ends before Reset+1s.
	s := d.Reset.Unix() + 1 - now.Unix()
	if s < 1 {
		s = 1
	}
	return s
}

// Hit counts one request for key and decides whether it may proceed. The
// key may come in parts, which it is the concatenation of, so that a caller
// holding it in pieces builds no string of its own.
func (z *Zone) Hit(ctx context.Context, key ...string) Decision {
	c, err := z.Store.Get(ctx, z.storeKey(key), z.Rate)
	if err != nil {
		return Decision{Allowed: z.Policy != FailClosed, StoreErr: err}
	}
	return Decision{
		Allowed:   !c.Reached,
		Limit:     c.Limit,
		Remaining: c.Remaining,
		Reset:     time.Unix(c.Reset, 0),
	}
}

// storeKey is the counter's key in the store: the zone's name and rate,
// then the key, "<name>|<rate>|<key>", built in one allocation.
func (z *Zone) storeKey(key []string) string {
	n := len(z.Name) + len(z.Rate.Formatted) + 2
	for _, k := range key {
		n += len(k)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(z.Name)
	b.WriteByte('|')
	b.WriteString(z.Rate.Formatted)
	b.WriteByte('|')
	for _, k := range key {
		b.WriteString(k)
	}
	return b.String()
}

// StoreHealth remembers whether a store's most recent hit failed. It is safe
// for concurrent use.
type StoreHealth struct {
	mu       sync.Mutex
	lastErr  error
	failedAt time.Time
	failures int64
}

// Observe records the outcome of one store call. It reports a change: failing
// is true on the first failure after a success, recovered on the first
// success after a failure.
func (h *StoreHealth) Observe(err error) (failing, recovered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		failing = h.lastErr == nil
		h.lastErr, h.failedAt = err, time.Now()
		h.failures++
		return failing, false
	}
	recovered = h.lastErr != nil
	h.lastErr = nil
	return false, recovered
}

// Err returns the error of the most recent call if that call failed no
// longer than within ago, else nil; an older failure is left to a fresh probe.
func (h *StoreHealth) Err(within time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastErr == nil || time.Since(h.failedAt) > within {
		return nil
	}
	return fmt.Errorf("last hit failed %s ago: %w", time.Since(h.failedAt).Round(time.Millisecond), h.lastErr)
}

// Failures is the number of failed calls observed so far.
func (h *StoreHealth) Failures() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failures
}
