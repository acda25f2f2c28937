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

// incrementScript adds ARGV[1] hits to the counter KEYS[1] and, when the
// counter has no expiry yet (it was just made), starts its window of ARGV[2]
// milliseconds; it returns the counter's total and the milliseconds left in
// its window. The counter is the one the limiter's own store keeps for the
// key, so replicas that sync and replicas that count every hit share it.
var incrementScript = redis.NewScript(`
local total = redis.call("INCRBY", KEYS[1], ARGV[1])
local left = redis.call("PTTL", KEYS[1])
if left < 0 then
	redis.call("PEXPIRE", KEYS[1], ARGV[2])
	left = tonumber(ARGV[2])
end
return {total, left}
`)

// IncrementAll adds each Count's hits to its key's counter and fills in its
// Total and Expires, all in one pipelined round trip; with SyncedStore,
// the Redis server sees one call per active key per interval instead of one
// per hit.
func (s *RedisStore) IncrementAll(ctx context.Context, counts []Count) error {
	if len(counts) == 0 {
		return nil
	}
	if err := incrementScript.Load(ctx, s.client).Err(); err != nil {
		return fmt.Errorf("rate limit store: redis: loading the counting script: %w", err)
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.Cmd, len(counts))
	for i, c := range counts {
		cmds[i] = incrementScript.EvalSha(ctx, pipe, []string{s.prefix + ":" + c.Key}, c.Hits, c.Rate.Period.Milliseconds())
	}
	now := time.Now()
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("rate limit store: redis: counting hits of %d keys: %w", len(counts), err)
	}
	for i, cmd := range cmds {
		vals, err := cmd.Int64Slice()
		if err != nil {
			return fmt.Errorf("rate limit store: redis: counting hits of %s: %w", counts[i].Key, err)
		}
		if len(vals) != 2 {
			return fmt.Errorf("rate limit store: redis: counting hits of %s: answer %v, want total and time left", counts[i].Key, vals)
		}
		counts[i].Total = vals[0]
		counts[i].Expires = now.Add(time.Duration(vals[1]) * time.Millisecond)
	}
	return nil
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
var _ SharedStore = (*RedisStore)(nil)
