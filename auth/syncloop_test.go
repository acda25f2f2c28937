package auth

import (
	"context"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// eventually polls cond every 10ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

func rows(t *testing.T, db *database.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSyncLoopReadsRevocationsOfOtherReplicas: a session revoked through
// another replica's list after Start is refused here once the loop has read
// it; after Stop nothing is read any more.
func TestSyncLoopReadsRevocationsOfOtherReplicas(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		here, there := NewRevocations(db), NewRevocations(db)
		if err := here.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		loop := NewSyncLoop(here, nil, nil, nil, 20*time.Millisecond, nil)
		loop.Start(ctx)
		if err := there.RevokeSession(ctx, "sid-late"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the revocation written by another replica after Start is still unknown here",
			func() bool { return here.SessionRevoked("sid-late") })
		loop.Stop()
		if err := there.RevokeSession(ctx, "sid-after-stop"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // five intervals
		if here.SessionRevoked("sid-after-stop") {
			t.Fatal("a stopped loop still read revocations")
		}
	})
}

// TestSyncLoopDeletesExpiredRows: the first pass deletes the expired
// refresh tokens, revocations and login failures, and prunes the in-memory
// regulator; live rows stay.
func TestSyncLoopDeletesExpiredRows(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		policy := RegulationPolicy{MaxRetries: 2, FindTime: time.Minute, BanTime: time.Minute}
		long := time.Now().Add(-time.Hour)

		refresh := NewRefreshTokens(db, time.Hour)
		if _, _, err := refresh.Issue(ctx, "u-live"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := NewRefreshTokens(db, time.Millisecond).Issue(ctx, "u-expired"); err != nil {
			t.Fatal(err)
		}
		rev := NewRevocations(db)
		if err := rev.RevokeSession(ctx, "sid-live"); err != nil {
			t.Fatal(err)
		}
		if err := rev.revoke(ctx, jtiKey("jti-expired"), long.Add(-2*MaxLeeway)); err != nil {
			t.Fatal(err)
		}
		sqlReg := NewSQLRegulator(db, policy)
		if err := sqlReg.Fail(ctx, long, "user:old"); err != nil {
			t.Fatal(err)
		}
		if err := sqlReg.Fail(ctx, time.Now(), "user:recent"); err != nil {
			t.Fatal(err)
		}
		memReg := NewMemoryRegulator(policy)
		memReg.Fail(ctx, long, "user:old")
		time.Sleep(5 * time.Millisecond) // the short refresh token expires

		loop := NewSyncLoop(rev, refresh, memReg, sqlReg, 20*time.Millisecond, nil)
		loop.Start(ctx)
		eventually(t, "expired rows are left", func() bool {
			return rows(t, db, "refresh_tokens") == 1 && rows(t, db, "token_revocations") == 1 && rows(t, db, "login_failures") == 1
		})
		loop.Stop()
		if !rev.SessionRevoked("sid-live") {
			t.Fatal("the live revocation was dropped")
		}
		if d, _ := sqlReg.Banned(ctx, time.Now(), "user:recent"); d != 0 {
			t.Fatalf("one recent failure banned: %s", d)
		}
		if n := len(memReg.entries); n != 0 {
			t.Fatalf("%d in-memory regulator entries left, want the old one pruned", n)
		}
	})
}

// TestSyncLoopEndsWithItsContext: cancelling Start's context ends the loop;
// Stop then returns at once, and Stop of a loop never started too.
func TestSyncLoopEndsWithItsContext(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	loop := NewSyncLoop(NewRevocations(db), nil, nil, nil, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	loop.Start(ctx)
	cancel()
	select {
	case <-loop.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop still runs 5s after its context ended")
	}
	loop.Stop()
	NewSyncLoop(NewRevocations(db), nil, nil, nil, 0, nil).Stop()
}

// TestSyncLoopCheck: the "revocations" health check fails before the first
// read and once the last successful read is older than 30 intervals (at
// least a minute).
func TestSyncLoopCheck(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	rev := NewRevocations(db)
	loop := NewSyncLoop(rev, nil, nil, nil, time.Second, nil)
	if loop.Interval() != time.Second || NewSyncLoop(rev, nil, nil, nil, 0, nil).Interval() != DefaultRevocationSync {
		t.Fatal("interval not kept, or no default for 0")
	}
	if err := loop.Check(context.Background()); err == nil {
		t.Fatal("healthy before the list was ever read")
	}
	if err := rev.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := loop.Check(context.Background()); err != nil {
		t.Fatalf("unhealthy right after a read: %v", err)
	}
	db.Close() // the database goes away: reads fail, the copy ages
	if err := rev.Sync(context.Background()); err == nil {
		t.Fatal("sync on a closed database succeeded")
	}
	loop.SetInterval(time.Millisecond) // bound: max(30 ms, 1 min) = 1 min, not reached yet
	if err := loop.Check(context.Background()); err != nil {
		t.Fatalf("unhealthy within the bound: %v", err)
	}
	loop.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	if err := loop.Check(context.Background()); err == nil {
		t.Fatal("healthy with a revocation list 61s old")
	}
}
