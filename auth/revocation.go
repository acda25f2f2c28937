package auth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
)

// DefaultRevocationSync is how often the revocation cache reads new entries:
// the longest a revocation made by another process takes to be honoured here.
const DefaultRevocationSync = 2 * time.Second

// Revocation list keys: an access token by its jti, a login session (refresh
// family) by its id, and every token of a user issued up to a moment.
func jtiKey(jti string) string       { return "jti:" + jti }
func sessionKey(sid string) string   { return "sid:" + sid }
func userKey(userID string) string   { return "user:" + userID }
func keyBytesOK(key string) bool     { return len(key) <= 191 }
func millisToSeconds(ms int64) int64 { return ms / 1000 }

// Revocations is the token revocation list: rows in the database, shared by
// replicas, read into an in-memory snapshot that Sync refreshes. Lookups only
// read the snapshot, so they cost a map access, never a query.
type Revocations struct {
	db *database.DB

	snap atomic.Pointer[map[string]int64] // key → revoked_at (unix ms)

	mu       sync.Mutex // serializes Sync and local additions
	lastSync time.Time  // start of the last successful incremental read
	lastFull time.Time  // start of the last successful full read
	synced   atomic.Int64
}

// NewRevocations returns the list over db with an empty snapshot; call Sync
// to fill it, and again every few seconds to keep it fresh.
func NewRevocations(db *database.DB) *Revocations {
	r := &Revocations{db: db}
	empty := map[string]int64{}
	r.snap.Store(&empty)
	return r
}

// syncOverlap re-reads entries this much older than the last read, so rows
// written by a replica whose clock lags ours, or committed late, are not missed.
const syncOverlap = 2 * time.Minute

// fullSyncEvery re-reads the whole list, dropping expired entries from memory.
const fullSyncEvery = 5 * time.Minute

// Sync reads entries revoked since the last read (or all live entries, every
// few minutes and the first time) into the snapshot.
func (r *Revocations) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	full := r.lastFull.IsZero() || start.Sub(r.lastFull) >= fullSyncEvery
	var query string
	var arg int64
	if full {
		query, arg = "SELECT id, revoked_at FROM token_revocations WHERE expires_at > ?", start.UnixMilli()
	} else {
		query, arg = "SELECT id, revoked_at FROM token_revocations WHERE revoked_at >= ?", r.lastSync.Add(-syncOverlap).UnixMilli()
	}
	rows, err := r.db.QueryContext(ctx, query, arg)
	if err != nil {
		return fmt.Errorf("reading revocations: %w", err)
	}
	defer rows.Close()
	var next map[string]int64
	if full {
		next = map[string]int64{}
	} else {
		next = maps.Clone(*r.snap.Load())
	}
	changed := full
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return fmt.Errorf("reading revocations: %w", err)
		}
		if old, ok := next[id]; !ok || at > old {
			next[id] = at
			changed = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading revocations: %w", err)
	}
	if full {
		// Keep local additions that raced with this read.
		for k, v := range *r.snap.Load() {
			if v >= start.Add(-syncOverlap).UnixMilli() {
				if old, ok := next[k]; !ok || v > old {
					next[k] = v
				}
			}
		}
		r.lastFull = start
	}
	if changed {
		r.snap.Store(&next)
	}
	r.lastSync = start
	r.synced.Store(start.UnixMilli())
	return nil
}

// LastSync is when the snapshot was last read successfully (zero if never).
func (r *Revocations) LastSync() time.Time {
	ms := r.synced.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// revoke records key in the database until expiresAt (plus twice
// MaxLeeway: a token is honoured until exp+leeway) and in the local snapshot
// at once.
func (r *Revocations) revoke(ctx context.Context, key string, expiresAt time.Time) error {
	if !keyBytesOK(key) {
		return errors.New("revocation key too long")
	}
	expiresAt = expiresAt.Add(2 * MaxLeeway)
	now := time.Now().UnixMilli()
	var q string
	if r.db.Dialect == database.MySQL {
		q = "INSERT INTO token_revocations (id, revoked_at, expires_at) VALUES (?, ?, ?) " +
			"ON DUPLICATE KEY UPDATE revoked_at = VALUES(revoked_at), expires_at = GREATEST(expires_at, VALUES(expires_at))"
	} else {
		q = "INSERT INTO token_revocations (id, revoked_at, expires_at) VALUES (?, ?, ?) " +
			"ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at, expires_at = MAX(expires_at, excluded.expires_at)"
	}
	if _, err := r.db.ExecContext(ctx, q, key, now, expiresAt.UnixMilli()); err != nil {
		return fmt.Errorf("recording a revocation: %w", err)
	}
	r.mu.Lock()
	next := maps.Clone(*r.snap.Load())
	next[key] = now
	r.snap.Store(&next)
	r.mu.Unlock()
	return nil
}

// RevokeToken revokes one access token by its jti until it expires.
func (r *Revocations) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return r.revoke(ctx, jtiKey(jti), expiresAt)
}

// RevokeSession revokes every access token of a login session (refresh family).
func (r *Revocations) RevokeSession(ctx context.Context, sid string) error {
	return r.revoke(ctx, sessionKey(sid), time.Now().Add(MaxAccessTTL))
}

// RevokeUser revokes the access tokens issued to a user before the current
// second (iat has a one-second resolution; a login right after the
// revocation must not be caught by it). Tokens of a login session are revoked
// with their session: see the package-level RevokeUser.
func (r *Revocations) RevokeUser(ctx context.Context, userID string) error {
	return r.revoke(ctx, userKey(userID), time.Now().Add(MaxAccessTTL))
}

// Revoked reports whether the snapshot revokes c: its jti, its session, or
// its user in a second after its iat.
func (r *Revocations) Revoked(c *Claims) bool {
	m := *r.snap.Load()
	if len(m) == 0 {
		return false
	}
	if _, ok := m[jtiKey(c.ID)]; ok {
		return true
	}
	if c.SessionID != "" {
		if _, ok := m[sessionKey(c.SessionID)]; ok {
			return true
		}
	}
	if at, ok := m[userKey(c.Subject)]; ok && c.IssuedAt != nil && c.IssuedAt.Unix() < millisToSeconds(at) {
		return true
	}
	return false
}

// SessionRevoked reports whether the snapshot revokes the login session sid.
func (r *Revocations) SessionRevoked(sid string) bool {
	_, ok := (*r.snap.Load())[sessionKey(sid)]
	return ok
}

// DeleteExpired removes entries whose tokens have all expired before cutoff.
func (r *Revocations) DeleteExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := r.db.ExecContext(ctx, "DELETE FROM token_revocations WHERE expires_at < ?", cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("deleting expired revocations: %w", err)
	}
	return res.RowsAffected()
}
