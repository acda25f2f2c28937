package ratelimit

import (
	"context"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/common"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

// MemoryStore is a limiter.Store in this process's memory: ulule's memory
// counters, counted as ulule's memory store counts them, under the keys as
// given. A Zone's keys already name the zone and its rate, so a hit builds
// no key of its own (ulule's store prefixes each one, two allocations).
type MemoryStore struct {
	cache *memory.CacheWrapper
}

// NewMemoryStore returns an empty MemoryStore that removes expired counters
// every cleanUp (never when it is zero).
func NewMemoryStore(cleanUp time.Duration) *MemoryStore {
	return &MemoryStore{cache: memory.NewCache(cleanUp)}
}

// Get counts one hit of key and returns its state.
func (s *MemoryStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.Increment(ctx, key, 1, rate)
}

// Increment counts count hits of key and returns its state.
func (s *MemoryStore) Increment(_ context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	n, exp := s.cache.Increment(key, count, rate.Period)
	return common.GetContextFromState(time.Now(), rate, exp, n), nil
}

// Peek returns the state of key without counting a hit.
func (s *MemoryStore) Peek(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	n, exp := s.cache.Get(key, rate.Period)
	return common.GetContextFromState(time.Now(), rate, exp, n), nil
}

// Reset forgets the hits of key.
func (s *MemoryStore) Reset(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	n, exp := s.cache.Reset(key, rate.Period)
	return common.GetContextFromState(time.Now(), rate, exp, n), nil
}

// Interface guard
var _ limiter.Store = (*MemoryStore)(nil)
