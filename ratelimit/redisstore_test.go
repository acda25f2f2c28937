package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// Two replicas syncing with one Redis server (IncrementAll) and a third
// counting every hit through the limiter's own Redis store share one counter
// per key: the synced replicas together let through the limit plus at most
// what each counted between syncs, and once the budget is spent, every
// replica refuses after its next sync, the per-hit one at once.
func TestRedisSyncedReplicasShareCounters(t *testing.T) {
	url := testenv.RedisServer(t)
	prefix := "test-" + testenv.RandomHex(6)
	rate, _ := ParseRate("30/h")
	ctx := context.Background()
	newStore := func() *RedisStore {
		s, err := NewRedisStore(url, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	const k = 4
	var replicas [2]*Zone
	for i := range replicas {
		replicas[i] = &Zone{Name: "z", Rate: rate, Store: NewSyncedStore(newStore(), time.Hour, 10*time.Second), Policy: FailClosed}
	}
	perHit := &Zone{Name: "z", Rate: rate, Store: newStore(), Policy: FailClosed}
	var allowed int64
	for round := 0; round < 10; round++ {
		for j := 0; j < k; j++ {
			for _, z := range replicas {
				d := z.Hit(ctx, "ip")
				if d.StoreErr != nil {
					t.Fatal(d.StoreErr)
				}
				if d.Allowed {
					allowed++
				}
			}
		}
		for _, z := range replicas {
			if err := z.Store.(*SyncedStore).Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if bound := rate.Limit + 2*k; allowed < rate.Limit || allowed > bound {
		t.Fatalf("two synced replicas allowed %d hits, want from %d (the limit) to %d", allowed, rate.Limit, bound)
	}
	// The per-hit store reads the counter the synced replicas wrote: all 80 hits.
	d := perHit.Hit(ctx, "ip")
	if d.StoreErr != nil || d.Allowed {
		t.Fatalf("the per-hit replica after the synced ones spent the budget: %+v", d)
	}
	c, err := perHit.Store.Peek(ctx, "z|"+rate.Formatted+"|ip", rate)
	if err != nil || c.Remaining != 0 || !c.Reached {
		t.Fatalf("shared counter: %+v, %v", c, err)
	}
	counts := []Count{{Key: "z|" + rate.Formatted + "|ip", Hits: 0, Rate: rate}}
	if err := newStore().IncrementAll(ctx, counts); err != nil {
		t.Fatal(err)
	}
	if want := int64(2*10*k + 1); counts[0].Total != want {
		t.Fatalf("the counter holds %d hits, want the %d sent", counts[0].Total, want)
	}
	if left := time.Until(counts[0].Expires); left <= 0 || left > time.Hour {
		t.Fatalf("the window ends in %s, want within the hour", left)
	}
}
