package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// RedisStore is ulule/limiter's Redis store on a go-redis client: each hit is
// one atomic script call, so replicas sharing the server count exactly, and
// Redis expires the counters itself. The limiter's store loads its scripts
// into the server when it is made, so it is made on the first call that finds
// the server up: a gateway starts while Redis is down, and its zones apply
// their failure policy until Redis answers.
type RedisStore struct {
	client *redis.Client
	prefix string

	mu    sync.Mutex
	store limiter.Store
}

// Timeouts of a Redis client whose URL sets none: a server that does not
// answer must fail a hit well within the zone's store timeout.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = time.Second
)

// NewRedisStore returns a store on the Redis server at url
// ("redis://[:password@]host:port/db", or "rediss://" for TLS) whose keys
// start with prefix.
func NewRedisStore(url, prefix string) (*RedisStore, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = redisDialTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = redisIOTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = redisIOTimeout
	}
	return &RedisStore{client: redis.NewClient(opts), prefix: prefix}, nil
}

// limiterStore returns the limiter's store, making it on first success.
func (s *RedisStore) limiterStore() (limiter.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store != nil {
		return s.store, nil
	}
	st, err := sredis.NewStoreWithOptions(s.client, limiter.StoreOptions{Prefix: s.prefix, MaxRetry: limiter.DefaultMaxRetry})
	if err != nil {
		return nil, fmt.Errorf("rate limit store: redis: %w", err)
	}
	s.store = st
	return st, nil
}

// Get counts one hit for key and returns the resulting state.
func (s *RedisStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.Increment(ctx, key, 1, rate)
}

// Increment counts count hits for key and returns the resulting state.
func (s *RedisStore) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.limiterStore()
	if err != nil {
		return limiter.Context{}, err
	}
	c, err := st.Increment(ctx, key, count, rate)
	if err != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: redis: counting a hit: %w", err)
	}
	return c, nil
}

// Peek returns the state of key without counting a hit.
func (s *RedisStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.limiterStore()
	if err != nil {
		return limiter.Context{}, err
	}
	c, err := st.Peek(ctx, key, rate)
	if err != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: redis: reading a counter: %w", err)
	}
	return c, nil
}

// Reset forgets the hits of key.
func (s *RedisStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	st, err := s.limiterStore()
	if err != nil {
		return limiter.Context{}, err
	}
	c, err := st.Reset(ctx, key, rate)
	if err != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: redis: resetting a counter: %w", err)
	}
	return c, nil
}

// Ping checks that the server answers.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("rate limit store: redis: %w", err)
	}
	return nil
}

// Close closes the client's connections.
func (s *RedisStore) Close() error { return s.client.Close() }

// Interface guard
var _ limiter.Store = (*RedisStore)(nil)
