package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// addExpired counts a hit for key whose window ended an hour ago.
func addExpired(t *testing.T, s *SQLStore, key string) {
	t.Helper()
	rate, _ := ParseRate("5/s")
	s.now = func() time.Time { return time.Now().Add(-time.Hour) }
	defer func() { s.now = time.Now }()
	if _, err := s.Get(context.Background(), key, rate); err != nil {
		t.Fatal(err)
	}
}

func counterRows(t *testing.T, db *database.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM rate_limit_counters").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSweeperDeletesExpiredUntilStopped(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			db := testenv.OpenDB(t, setting)
			s := NewSQLStore(db)
			live, _ := ParseRate("5/h")
			if _, err := s.Get(context.Background(), "live", live); err != nil {
				t.Fatal(err)
			}
			sw := NewSweeper(s, 20*time.Millisecond, nil)
			sw.Start(context.Background())
			addExpired(t, s, "gone") // written after Start: the loop, not a first pass, removes it
			deadline := time.Now().Add(10 * time.Second)
			for counterRows(t, db) != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("%d rows after 10s of sweeping every 20ms, want only the live one", counterRows(t, db))
				}
				time.Sleep(10 * time.Millisecond)
			}
			sw.Stop()
			addExpired(t, s, "after-stop")
			time.Sleep(100 * time.Millisecond) // five intervals
			if n := counterRows(t, db); n != 2 {
				t.Fatalf("%d rows 100ms after Stop, want 2: a stopped sweeper deleted rows", n)
			}
		})
	}
}

func TestSweeperEndsWithItsContext(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	sw := NewSweeper(NewSQLStore(db), time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sw.Start(ctx)
	cancel()
	select {
	case <-sw.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sweeper still runs 5s after its context ended")
	}
	sw.Stop()                                  // returns at once on an ended loop
	NewSweeper(NewSQLStore(db), 0, nil).Stop() // never started: nothing to wait for
}
