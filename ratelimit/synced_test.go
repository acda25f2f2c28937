package ratelimit

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// synced returns a SyncedStore on a fresh SQL store of setting; it is not
// started, so it syncs only when the test says so.
func synced(t testing.TB, setting string) (*SyncedStore, *SQLStore) {
	t.Helper()
	shared := NewSQLStore(testenv.OpenDB(t, setting))
	return NewSyncedStore(shared, time.Hour, 10*time.Second), shared
}

func TestSyncedStoreOneReplicaIsExact(t *testing.T) {
	rate, _ := ParseRate("10/min")
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			s, shared := synced(t, setting)
			z := &Zone{Name: "burst", Rate: rate, Store: s, Policy: FailClosed}
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if d := z.Hit(context.Background(), "k"); d.StoreErr != nil {
						t.Error(d.StoreErr)
					} else if d.Allowed {
						allowed.Add(1)
					}
					if i == 50 { // a sync in the middle of the burst loses nothing
						if err := s.Sync(context.Background()); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			if allowed.Load() != 10 {
				t.Fatalf("%d of 100 concurrent hits allowed, want exactly 10", allowed.Load())
			}
			if err := s.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Every hit reached the shared store, the refused ones too, as
			// with synchronous counting.
			c, err := shared.Peek(context.Background(), "burst|"+rate.Formatted+"|k", rate)
			if err != nil || !c.Reached {
				t.Fatalf("shared counter after the sync: %+v, %v", c, err)
			}
			if got := sharedHits(t, shared, "burst|"+rate.Formatted+"|k"); got != 100 {
				t.Fatalf("the shared store counted %d hits, want the 100 sent", got)
			}
		})
	}
}

// sharedHits reads a counter's hits straight from the table.
func sharedHits(t testing.TB, s *SQLStore, key string) int64 {
	t.Helper()
	var n int64
	if err := s.db.QueryRow("SELECT hits FROM rate_limit_counters WHERE id = ?", counterID(key)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSyncedStoresOvershootBound runs two replicas on one MariaDB database in
// rounds of one sync interval: each replica gets k hits per round, then both
// sync, one after the other. Over the window they must let through at least
// the limit and at most the limit plus replicas × k (replicas × interval ×
// request rate). Once the shared store holds a spent budget, each replica's
// next sync reads it: from the round after that, both refuse everything.
func TestSyncedStoresOvershootBound(t *testing.T) {
	rate, _ := ParseRate("50/h")
	const replicas, k = 2, 7
	setting := testenv.MySQLDatabase(t)
	var rs [replicas]*Zone
	for i := range rs {
		s, _ := synced(t, setting)
		rs[i] = &Zone{Name: "z", Rate: rate, Store: s, Policy: FailClosed}
	}
	ctx := context.Background()
	var allowed int64
	spentAt := -1
	for round := 0; round < 20; round++ {
		var roundAllowed int64
		for j := 0; j < k; j++ {
			for _, z := range rs {
				d := z.Hit(ctx, "ip")
				if d.StoreErr != nil {
					t.Fatal(d.StoreErr)
				}
				if d.Allowed {
					roundAllowed++
				}
			}
		}
		allowed += roundAllowed
		if spentAt >= 0 && round > spentAt+1 && roundAllowed != 0 {
			t.Fatalf("round %d: %d hits allowed, although the shared store held a spent budget after round %d and both replicas synced since",
				round, roundAllowed, spentAt)
		}
		for _, z := range rs {
			if err := z.Store.(*SyncedStore).Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if spentAt < 0 && allowed >= rate.Limit {
			spentAt = round
		}
	}
	if bound := rate.Limit + replicas*k; allowed < rate.Limit || allowed > bound {
		t.Fatalf("two replicas allowed %d hits, want from %d (the limit) to %d (limit + replicas × hits per interval)", allowed, rate.Limit, bound)
	}
	t.Logf("two replicas, %d hits each per interval, limit %d: %d allowed (bound %d)", k, rate.Limit, allowed, rate.Limit+replicas*k)
}

// TestSyncedStoreRefusalReachesOtherReplicaWithinOneInterval spends a key's
// budget on one replica and measures how long another, syncing on its own
// every interval, keeps allowing that key.
func TestSyncedStoreRefusalReachesOtherReplicaWithinOneInterval(t *testing.T) {
	rate, _ := ParseRate("20/h")
	const interval = 200 * time.Millisecond
	setting := testenv.MySQLDatabase(t)
	a, _ := synced(t, setting)
	shared := NewSQLStore(testenv.OpenDB(t, setting))
	b := NewSyncedStore(shared, interval, 10*time.Second)
	b.Start()
	t.Cleanup(func() { b.Close() })
	za := &Zone{Name: "z", Rate: rate, Store: a, Policy: FailClosed}
	zb := &Zone{Name: "z", Rate: rate, Store: b, Policy: FailClosed}
	ctx := context.Background()
	if d := zb.Hit(ctx, "ip"); !d.Allowed { // b knows the key, with budget left
		t.Fatalf("first hit on b: %+v", d)
	}
	time.Sleep(2 * interval) // b's hit is synced
	if d := za.Hit(ctx, "ip"); !d.Allowed {
		t.Fatalf("first hit on a: %+v", d)
	}
	if err := a.Sync(ctx); err != nil { // a sees b's hit
		t.Fatal(err)
	}
	for i := 0; i < 18; i++ {
		if d := za.Hit(ctx, "ip"); !d.Allowed {
			t.Fatalf("hit %d on a: %+v", i, d)
		}
	}
	if d := za.Hit(ctx, "ip"); d.Allowed {
		t.Fatal("a allowed a 21st hit")
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	spent := time.Now()
	var allowedOnB int
	for {
		d := zb.Hit(ctx, "ip")
		if !d.Allowed {
			break
		}
		allowedOnB++
		if time.Since(spent) > 10*interval {
			t.Fatalf("b still allowed the key %s after a spent its budget (%d hits), want refusals after one interval of %s", time.Since(spent), allowedOnB, interval)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("b refused %s after a spent the budget (interval %s), %d hits allowed meanwhile", time.Since(spent).Round(time.Millisecond), interval, allowedOnB)
}

func TestSyncedStoreWindowRestarts(t *testing.T) {
	rate, _ := ParseRate("2/min")
	s, shared := synced(t, testenv.SQLiteDatabase(t))
	clock := time.Now()
	s.now = func() time.Time { return clock }
	shared.now = s.now
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		s.Get(ctx, "k", rate)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Peek(ctx, "k", rate); !c.Reached {
		t.Fatalf("after 3 hits: %+v", c)
	}
	clock = clock.Add(rate.Period)
	c, err := s.Get(ctx, "k", rate)
	if err != nil || c.Reached || c.Remaining != 1 {
		t.Fatalf("first hit of the next window: %+v, %v", c, err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sharedHits(t, shared, "k"); got != 1 {
		t.Fatalf("shared counter of the new window: %d hits, want 1", got)
	}
	// A counter whose window ended with nothing to send is forgotten.
	clock = clock.Add(rate.Period)
	if err := s.Sync(ctx); err != nil || s.Keys() != 0 {
		t.Fatalf("after an idle window: %d keys held (%v), want 0", s.Keys(), err)
	}
}

// mariadbStatus reads a global status counter of a private server.
func mariadbStatus(t testing.TB, admin *sql.DB, name string) int64 {
	t.Helper()
	var n string
	var v int64
	if err := admin.QueryRow("SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSyncedStoreStatementsFollowKeysNotHits counts, on a private MariaDB, the
// INSERT statements (Com_insert) and commits (Com_commit) a sync costs: one
// statement per key and one commit per sync, however many hits each key got;
// the synchronous store costs one statement per hit. It then stops the server:
// hits fail once a sync failed, and count again after it is back.
func TestSyncedStoreStatementsFollowKeysNotHits(t *testing.T) {
	m := testenv.StartMariaDB(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(m.Setting, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	admin.SetMaxIdleConns(0)
	rate, _ := ParseRate("1000000/h")
	s, shared := synced(t, m.Setting)
	ctx := context.Background()

	measure := func(keys, hitsPerKey int, sync bool) (inserts, commits int64) {
		ins, com := mariadbStatus(t, admin, "Com_insert"), mariadbStatus(t, admin, "Com_commit")
		for h := 0; h < hitsPerKey; h++ {
			for k := 0; k < keys; k++ {
				key := "k" + strconv.Itoa(k)
				if sync {
					_, err = shared.Get(ctx, key, rate)
				} else {
					_, err = s.Get(ctx, key, rate)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if !sync {
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return mariadbStatus(t, admin, "Com_insert") - ins, mariadbStatus(t, admin, "Com_commit") - com
	}
	for _, tt := range []struct{ keys, hitsPerKey int }{{10, 10}, {10, 100}, {40, 10}, {40, 100}} {
		ins, com := measure(tt.keys, tt.hitsPerKey, false)
		t.Logf("synced: %d keys × %d hits → %d INSERT statements, %d commits", tt.keys, tt.hitsPerKey, ins, com)
		if ins != int64(tt.keys) || com != 1 {
			t.Errorf("synced: %d keys × %d hits cost %d INSERT statements and %d commits, want %d and 1",
				tt.keys, tt.hitsPerKey, ins, com, tt.keys)
		}
	}
	if ins, _ := measure(10, 10, true); ins != 100 {
		t.Errorf("synchronous: 10 keys × 10 hits cost %d INSERT statements, want 100", ins)
	}

	// The store goes away: hits are still decided here until a sync fails,
	// then they fail (the zone's policy applies) and are not counted.
	if _, err := s.Get(ctx, "k0", rate); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if _, err := s.Get(ctx, "k0", rate); err != nil {
		t.Fatalf("a hit before any sync failed: %v", err)
	}
	if err := s.Sync(ctx); err == nil {
		t.Fatal("a sync with the server stopped succeeded")
	}
	if _, err := s.Get(ctx, "k0", rate); err == nil || !strings.Contains(err.Error(), "last sync failed") {
		t.Fatalf("a hit after a failed sync: %v, want the sync's error", err)
	}
	m.Start()
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("a sync with the server back: %v", err)
	}
	if _, err := s.Get(ctx, "k0", rate); err != nil {
		t.Fatalf("a hit after the store came back: %v", err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// 10+100+10+100 synced, 10 synchronous, 2 before the outage (unsent,
	// then sent by the recovering sync), the one after it; none during it.
	if got, want := sharedHits(t, shared, "k0"), int64(10+100+10+100+10+2+1); got != want {
		t.Fatalf("k0 counted %d hits in the shared store, want %d", got, want)
	}
}
