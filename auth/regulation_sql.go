package auth

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
)

// SQLRegulator is a RegulationStore in the database (table login_failures):
// every replica sees every failure, so a ban holds on all of them.
type SQLRegulator struct {
	db     *database.DB
	policy atomic.Pointer[RegulationPolicy]
}

// NewSQLRegulator returns a SQLRegulator over db with policy (zero fields take the defaults).
func NewSQLRegulator(db *database.DB, policy RegulationPolicy) *SQLRegulator {
	r := &SQLRegulator{db: db}
	r.SetPolicy(policy)
	return r
}

// SetPolicy implements RegulationStore.
func (r *SQLRegulator) SetPolicy(policy RegulationPolicy) {
	p := policy.withDefaults()
	r.policy.Store(&p)
}

// state replays the failures of key that can still matter at now.
func (r *SQLRegulator) state(ctx context.Context, now time.Time, key string) (time.Time, error) {
	p := *r.policy.Load()
	rows, err := r.db.QueryContext(ctx,
		"SELECT failed_at FROM login_failures WHERE reg_key = ? AND failed_at > ? ORDER BY failed_at, id",
		key, now.Add(-p.FindTime-p.BanTime).UnixMilli())
	if err != nil {
		return time.Time{}, fmt.Errorf("reading login failures: %w", err)
	}
	defer rows.Close()
	var fails []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return time.Time{}, fmt.Errorf("reading login failures: %w", err)
		}
		fails = append(fails, time.UnixMilli(ms))
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, fmt.Errorf("reading login failures: %w", err)
	}
	until, _ := banState(p, fails)
	return until, nil
}

// Banned implements RegulationStore.
func (r *SQLRegulator) Banned(ctx context.Context, now time.Time, keys ...string) (time.Duration, error) {
	var longest time.Duration
	for _, k := range keys {
		until, err := r.state(ctx, now, k)
		if err != nil {
			return 0, err
		}
		if now.Before(until) {
			longest = max(longest, until.Sub(now))
		}
	}
	return longest, nil
}

// Fail implements RegulationStore.
func (r *SQLRegulator) Fail(ctx context.Context, now time.Time, keys ...string) error {
	for _, k := range keys {
		if !keyBytesOK(k) {
			return fmt.Errorf("regulation key of %d bytes is too long", len(k))
		}
		if _, err := r.db.ExecContext(ctx, "INSERT INTO login_failures (reg_key, failed_at) VALUES (?, ?)", k, now.UnixMilli()); err != nil {
			return fmt.Errorf("recording a login failure: %w", err)
		}
	}
	return nil
}

// Reset implements RegulationStore.
func (r *SQLRegulator) Reset(ctx context.Context, now time.Time, key string) error {
	until, err := r.state(ctx, now, key)
	if err != nil || now.Before(until) {
		return err
	}
	if _, err := r.db.ExecContext(ctx, "DELETE FROM login_failures WHERE reg_key = ?", key); err != nil {
		return fmt.Errorf("resetting login failures: %w", err)
	}
	return nil
}

// DeleteExpired removes failures too old to count any more at now.
func (r *SQLRegulator) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	p := *r.policy.Load()
	res, err := r.db.ExecContext(ctx, "DELETE FROM login_failures WHERE failed_at < ?", now.Add(-p.FindTime-p.BanTime).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("deleting old login failures: %w", err)
	}
	return res.RowsAffected()
}

// Interface guard
var _ RegulationStore = (*SQLRegulator)(nil)
