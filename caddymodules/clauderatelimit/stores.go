package clauderatelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ulule/limiter/v3"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/ratelimit"
)

// memoryStores holds the memory stores by zone name and rate. A reload
// provisions the new config before cleaning up the old one, so a zone that
// keeps its name and rate keeps its counters.
var memoryStores = caddy.NewUsagePool()

// sqlStores holds one SQL store, with its sweeper and health, per database.
var sqlStores = caddy.NewUsagePool()

// syncedStores holds the synced SQL stores by database and sync interval, so
// their counters survive reloads like the memory stores'.
var syncedStores = caddy.NewUsagePool()

// redisStores holds one Redis store, with its health, per Redis URL.
var redisStores = caddy.NewUsagePool()

// healthWindow is how long a failed hit keeps the store reported as failing
// even when a fresh probe succeeds.
const healthWindow = 10 * time.Second

type memoryStore struct{ limiter.Store }

func (memoryStore) Destruct() error { return nil }

func memoryKey(zone string, rate limiter.Rate) string {
	return zone + "|" + rate.Formatted
}

func acquireMemory(key string) (limiter.Store, error) {
	v, _, err := memoryStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		return memoryStore{ratelimit.NewMemoryStore(limiter.DefaultCleanUpInterval)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	return v.(memoryStore).Store, nil
}

func releaseMemory(key string) { memoryStores.Delete(key) }

// syncedStore is a pooled synced store. On a database, it holds its own
// reference to the database pool, so that its last sync, when it is
// destructed at shutdown, still finds the pool open; on Redis, every handler
// that holds it holds the Redis store too, and releases that after it.
type syncedStore struct {
	*ratelimit.SyncedStore
	// setting is the database's setting, "" for Redis.
	setting string
}

// Destruct stops the syncing, sends what was not sent yet and releases the
// database pool.
func (s syncedStore) Destruct() error {
	err := s.Close()
	if s.setting == "" {
		return err
	}
	if rerr := claude.ReleaseDB(s.setting); err == nil {
		err = rerr
	}
	return err
}

func syncedRedisKey(url string, interval time.Duration) string {
	return "redis|" + url + "|" + interval.String()
}

// acquireSyncedRedis returns the synced store of key on the Redis store
// shared, syncing every interval.
func acquireSyncedRedis(key string, shared *ratelimit.RedisStore, interval, timeout time.Duration) (*ratelimit.SyncedStore, error) {
	v, _, err := syncedStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s := ratelimit.NewSyncedStore(shared, interval, timeout)
		s.Start()
		return syncedStore{SyncedStore: s}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("synced redis store: %w", err)
	}
	return v.(syncedStore).SyncedStore, nil
}

func syncedKey(db *database.DB, interval time.Duration) string {
	return db.Redacted + "|" + interval.String()
}

// acquireSynced returns the synced store of key on the SQL store of the
// database setting, syncing every interval.
func acquireSynced(ctx context.Context, key, setting string, shared *ratelimit.SQLStore, interval, timeout time.Duration) (*ratelimit.SyncedStore, error) {
	v, _, err := syncedStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		if _, _, err := claude.AcquireDB(ctx, setting); err != nil {
			return nil, err
		}
		s := ratelimit.NewSyncedStore(shared, interval, timeout)
		s.Start()
		return syncedStore{SyncedStore: s, setting: setting}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("synced sql store: %w", err)
	}
	return v.(syncedStore).SyncedStore, nil
}

func releaseSynced(key string) { syncedStores.Delete(key) }

// sqlShared is the SQL store of one database, shared by every zone and config
// that uses it, with the sweeper of its expired counters.
type sqlShared struct {
	store   *ratelimit.SQLStore
	health  *ratelimit.StoreHealth
	sweeper *ratelimit.Sweeper
}

func acquireSQL(db *database.DB, logger *zap.Logger) (*sqlShared, error) {
	v, _, err := sqlStores.LoadOrNew(db.Redacted, func() (caddy.Destructor, error) {
		store := ratelimit.NewSQLStore(db)
		s := &sqlShared{store: store, health: new(ratelimit.StoreHealth),
			sweeper: ratelimit.NewSweeper(store, ratelimit.DefaultSweepInterval, logger)}
		s.sweeper.Start(context.Background())
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("sql store: %w", err)
	}
	return v.(*sqlShared), nil
}

func releaseSQL(key string) { sqlStores.Delete(key) }

// check is the "rate_limit_store" health check: the counters table must
// answer, and the most recent hit must not have failed in the last moments.
func (s *sqlShared) check(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	return s.health.Err(healthWindow)
}

// Destruct stops the sweeper.
func (s *sqlShared) Destruct() error {
	s.sweeper.Stop()
	return nil
}

// redisShared is the Redis store of one server, shared by every zone and
// config that uses it.
type redisShared struct {
	store  *ratelimit.RedisStore
	health *ratelimit.StoreHealth
}

func acquireRedis(url string) (*redisShared, error) {
	v, _, err := redisStores.LoadOrNew(url, func() (caddy.Destructor, error) {
		st, err := ratelimit.NewRedisStore(url, "claude")
		if err != nil {
			return nil, err
		}
		return &redisShared{store: st, health: new(ratelimit.StoreHealth)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	return v.(*redisShared), nil
}

func releaseRedis(url string) { redisStores.Delete(url) }

// check is the "rate_limit_redis" health check: the server must answer, and
// the most recent hit must not have failed in the last moments.
func (s *redisShared) check(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	return s.health.Err(healthWindow)
}

// Destruct closes the client.
func (s *redisShared) Destruct() error { return s.store.Close() }
