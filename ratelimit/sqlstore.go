package ratelimit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/ulule/limiter/v3"

	"github.com/claude-gateway/claude-gateway/database"
)

// maxIDLen is the longest counter id stored as is; longer ids are hashed to
// fit the VARCHAR(191) key.
const maxIDLen = 191

// SQLStore is a limiter.Store on the gateway's database. Each hit is one
// atomic statement, on SQLite and on MySQL/MariaDB alike, so
// concurrent requests, on one gateway or on replicas sharing MySQL, never
// count the same hit twice or lose one. A window starts at the first hit of
// a key and lasts the rate's period, as in ulule's memory database.
type SQLStore struct {
	db *database.DB
	// now is the clock; tests may replace it.
	now func() time.Time
}

// NewSQLStore returns a store on db, whose schema has the rate_limit_counters
// table (migration 2).
func NewSQLStore(db *database.DB) *SQLStore {
	return &SQLStore{db: db, now: time.Now}
}

// counterID maps a limiter key to the row id.
func counterID(key string) string {
	if len(key) <= maxIDLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Get counts one hit for key and returns the resulting state.
func (s *SQLStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.Increment(ctx, key, 1, rate)
}

// Increment counts count hits for key and returns the resulting state. An
// expired window is restarted by the same statement.
func (s *SQLStore) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	hits, expires, err := s.increment(ctx, s.db.DB, key, count, rate, s.now())
	if err != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: counting a hit: %w", err)
	}
	return stateOf(rate, hits, expires), nil
}

// Count is the number of hits to add to one key, and the key's shared
// counter once they are added.
type Count struct {
	// Key is the limiter key.
	Key string
	// Hits is the number of hits to add.
	Hits int64
	// Rate is the key's rate.
	Rate limiter.Rate
	// Total is filled in by IncrementAll: the hits counted in the key's
	// current window, Hits included.
	Total int64
	// Expires is filled in by IncrementAll: when the key's window ends.
	Expires time.Time
}

// batchSize is the most keys one IncrementAll transaction holds.
const batchSize = 500

// IncrementAll adds the hits of many keys and reads back each key's shared
// state: one statement per key, and one commit per batchSize keys. Keys are
// counted in the order of their row id, so two replicas flushing at once take
// the rows' locks in the same order and never deadlock each other. A batch
// InnoDB picks as a deadlock victim anyway (a first hit racing a synchronous
// replica) is run again.
func (s *SQLStore) IncrementAll(ctx context.Context, counts []Count) error {
	order := make([]int, len(counts))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return counterID(counts[order[a]].Key) < counterID(counts[order[b]].Key) })
	for len(order) > 0 {
		n := min(len(order), batchSize)
		if err := s.incrementBatch(ctx, counts, order[:n]); err != nil {
			return fmt.Errorf("rate limit store: counting hits of %d keys: %w", len(counts), err)
		}
		order = order[n:]
	}
	return nil
}

// incrementBatch counts counts[i] for each i of order in one transaction.
func (s *SQLStore) incrementBatch(ctx context.Context, counts []Count, order []int) error {
	for attempt := 0; ; attempt++ {
		err := s.tryBatch(ctx, counts, order)
		if err == nil || attempt >= 5 || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *SQLStore) tryBatch(ctx context.Context, counts []Count, order []int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := s.now()
	for _, i := range order {
		c := &counts[i]
		var expMS int64
		if c.Total, expMS, err = s.increment(ctx, tx, c.Key, c.Hits, c.Rate, now); err != nil {
			return err
		}
		c.Expires = time.UnixMilli(expMS)
	}
	return tx.Commit()
}

// execer is what a counting statement runs on: the pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// increment counts count hits for key on ex at the time now and returns the
// hits of the key's window and the window's end in Unix milliseconds.
func (s *SQLStore) increment(ctx context.Context, ex execer, key string, count int64, rate limiter.Rate, now time.Time) (hits, expires int64, err error) {
	id := counterID(key)
	nowMS := now.UnixMilli()
	expMS := now.Add(rate.Period).UnixMilli()
	if s.db.Dialect == database.SQLite {
		err = ex.QueryRowContext(ctx, `INSERT INTO rate_limit_counters (id, hits, expires_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	hits = CASE WHEN rate_limit_counters.expires_at <= ? THEN excluded.hits ELSE rate_limit_counters.hits + excluded.hits END,
	expires_at = CASE WHEN rate_limit_counters.expires_at <= ? THEN excluded.expires_at ELSE rate_limit_counters.expires_at END
RETURNING hits, expires_at`, id, count, expMS, nowMS, nowMS).Scan(&hits, &expires)
		return hits, expires, err
	}
	return incrementMySQL(ctx, ex, id, count, nowMS, expMS)
}

// incrementMySQL counts the hit with one statement, so it costs one round
// trip and one implicit commit (outside a transaction). MySQL has no
// RETURNING, so the statement hands back the row's new state through
// LAST_INSERT_ID(expr), which the server reports in the statement's OK
// packet: the window's end in Unix seconds in the high 32 bits, the hits in
// the low 32 bits (the column keeps only the low half). Assignments run left
// to right, so hits is computed from the old expires_at before the second
// assignment replaces it. InnoDB may pick the statement as a deadlock victim
// when many first hits of a new key race; outside a transaction it is then
// retried.
func incrementMySQL(ctx context.Context, ex execer, id string, count, nowMS, expMS int64) (hits, expires int64, err error) {
	_, inTx := ex.(*sql.Tx)
	for attempt := 0; ; attempt++ {
		var res sql.Result
		res, err = ex.ExecContext(ctx, `INSERT INTO rate_limit_counters (id, hits, expires_at)
VALUES (?, LAST_INSERT_ID(CAST(? DIV 1000 AS UNSIGNED) * 4294967296 + ?) & 4294967295, ?)
ON DUPLICATE KEY UPDATE
	hits = LAST_INSERT_ID(
		CAST(IF(expires_at <= ?, ?, expires_at) DIV 1000 AS UNSIGNED) * 4294967296
		+ IF(expires_at <= ?, ?, LEAST(hits + ?, 4294967295))
	) & 4294967295,
	expires_at = IF(expires_at <= ?, ?, expires_at)`,
			id, expMS, count, expMS,
			nowMS, expMS, nowMS, count, count,
			nowMS, expMS)
		if err == nil {
			var packed int64
			if packed, err = res.LastInsertId(); err == nil {
				u := uint64(packed) // the driver hands the unsigned id over as int64
				return int64(u & 0xFFFFFFFF), int64(u>>32) * 1000, nil
			}
		}
		if inTx || attempt >= 5 || !retryable(err) || ctx.Err() != nil {
			return 0, 0, err
		}
	}
}

// retryable reports whether err is a MySQL deadlock or lock wait timeout.
func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// Peek returns the state of key without counting a hit.
func (s *SQLStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	now := s.now()
	var hits, expires int64
	err := s.db.QueryRowContext(ctx, "SELECT hits, expires_at FROM rate_limit_counters WHERE id = ? AND expires_at > ?",
		counterID(key), now.UnixMilli()).Scan(&hits, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return stateOf(rate, 0, now.Add(rate.Period).UnixMilli()), nil
	}
	if err != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: reading a counter: %w", err)
	}
	return stateOf(rate, hits, expires), nil
}

// Reset forgets the hits of key.
func (s *SQLStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM rate_limit_counters WHERE id = ?", counterID(key)); err != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: resetting a counter: %w", err)
	}
	return stateOf(rate, 0, s.now().Add(rate.Period).UnixMilli()), nil
}

// Sweep deletes the counters whose window ended before now and reports how
// many it removed. Expired rows are already ignored by hits; sweeping only
// keeps the table small.
func (s *SQLStore) Sweep(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM rate_limit_counters WHERE expires_at <= ?", now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("rate limit store: deleting expired counters: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Ping checks that the counters table answers.
func (s *SQLStore) Ping(ctx context.Context) error {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rate_limit_counters WHERE id = ''").Scan(&n); err != nil {
		return fmt.Errorf("rate limit store: %w", err)
	}
	return nil
}

// stateOf turns a counter into the limiter's view of it.
func stateOf(rate limiter.Rate, hits, expiresMS int64) limiter.Context {
	c := limiter.Context{Limit: rate.Limit, Reset: time.UnixMilli(expiresMS).Unix()}
	if hits <= rate.Limit {
		c.Remaining = rate.Limit - hits
	} else {
		c.Reached = true
	}
	return c
}

// Interface guard
var _ limiter.Store = (*SQLStore)(nil)
