package auth

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Ban is a regulation key banned after repeated login failures.
type Ban struct {
	// Key is "user:<name>" or "addr:<ip>".
	Key string
	// Until is when the ban ends.
	Until time.Time
}

// BanList lists and lifts running bans; both regulation stores implement
// it, for the operator's console.
type BanList interface {
	// Bans returns the bans running at now, longest first.
	Bans(ctx context.Context, now time.Time) ([]Ban, error)
	// Lift ends the ban of key at once and forgets its failures.
	Lift(ctx context.Context, key string) error
}

func sortBans(bans []Ban) []Ban {
	sort.Slice(bans, func(i, j int) bool {
		if !bans[i].Until.Equal(bans[j].Until) {
			return bans[i].Until.After(bans[j].Until)
		}
		return bans[i].Key < bans[j].Key
	})
	return bans
}

// Bans implements BanList.
func (r *MemoryRegulator) Bans(_ context.Context, now time.Time) ([]Ban, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []Ban{}
	for k, e := range r.entries {
		if now.Before(e.bannedUntil) {
			out = append(out, Ban{Key: k, Until: e.bannedUntil})
		}
	}
	return sortBans(out), nil
}

// Lift implements BanList.
func (r *MemoryRegulator) Lift(_ context.Context, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, key)
	return nil
}

// Bans implements BanList: it replays the recent failures of every key
// that has any.
func (r *SQLRegulator) Bans(ctx context.Context, now time.Time) ([]Ban, error) {
	p := *r.policy.Load()
	rows, err := r.db.QueryContext(ctx,
		"SELECT reg_key, failed_at FROM login_failures WHERE failed_at > ? ORDER BY reg_key, failed_at, id",
		now.Add(-p.FindTime-p.BanTime).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("reading login failures: %w", err)
	}
	defer rows.Close()
	fails := map[string][]time.Time{}
	for rows.Next() {
		var k string
		var ms int64
		if err := rows.Scan(&k, &ms); err != nil {
			return nil, fmt.Errorf("reading login failures: %w", err)
		}
		fails[k] = append(fails[k], time.UnixMilli(ms))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading login failures: %w", err)
	}
	out := []Ban{}
	for k, f := range fails {
		if until, _ := banState(p, f); now.Before(until) {
			out = append(out, Ban{Key: k, Until: until})
		}
	}
	return sortBans(out), nil
}

// Lift implements BanList.
func (r *SQLRegulator) Lift(ctx context.Context, key string) error {
	if _, err := r.db.ExecContext(ctx, "DELETE FROM login_failures WHERE reg_key = ?", key); err != nil {
		return fmt.Errorf("lifting the ban of %s: %w", key, err)
	}
	return nil
}

// Interface guards
var (
	_ BanList = (*MemoryRegulator)(nil)
	_ BanList = (*SQLRegulator)(nil)
)
