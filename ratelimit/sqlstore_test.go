package ratelimit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// stores returns a fresh SQL store per dialect, a synced store on each (never
// synced, so deciding alone) and ulule's memory store, for tests that every
// store must pass.
func stores(t *testing.T) map[string]limiter.Store {
	out := map[string]limiter.Store{"memory": memory.NewStore()}
	for name, setting := range testenv.Databases(t) {
		out[name] = NewSQLStore(testenv.OpenDB(t, setting))
		out["synced_"+name] = NewSyncedStore(NewSQLStore(testenv.OpenDB(t, setting)), time.Hour, 10*time.Second)
	}
	return out
}

func TestZoneExactBudget(t *testing.T) {
	rate, _ := ParseRate("5/min")
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			z := &Zone{Name: "api", Rate: rate, Store: st, Policy: FailOpen}
			for i := 1; i <= 8; i++ {
				d := z.Hit(context.Background(), "203.0.113.7")
				if d.StoreErr != nil {
					t.Fatal(d.StoreErr)
				}
				wantAllowed := i <= 5
				wantRemaining := int64(5 - i)
				if !wantAllowed {
					wantRemaining = 0
				}
				if d.Allowed != wantAllowed || d.Remaining != wantRemaining || d.Limit != 5 {
					t.Fatalf("hit %d: allowed=%v remaining=%d limit=%d, want %v %d 5", i, d.Allowed, d.Remaining, d.Limit, wantAllowed, wantRemaining)
				}
				if until := time.Until(d.Reset); until < 58*time.Second || until > 61*time.Second {
					t.Fatalf("hit %d: reset in %s, want about a minute", i, until)
				}
			}
			// Another key, and the same key in another zone, have their own budget.
			if d := z.Hit(context.Background(), "203.0.113.8"); !d.Allowed || d.Remaining != 4 {
				t.Fatalf("other key: %+v", d)
			}
			other := &Zone{Name: "login", Rate: rate, Store: st}
			if d := other.Hit(context.Background(), "203.0.113.7"); !d.Allowed || d.Remaining != 4 {
				t.Fatalf("other zone: %+v", d)
			}
		})
	}
}

func TestSQLStoreWindowRestarts(t *testing.T) {
	rate, _ := ParseRate("2/min")
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			s := NewSQLStore(testenv.OpenDB(t, setting))
			clock := time.Now()
			s.now = func() time.Time { return clock }
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				s.Get(ctx, "k", rate)
			}
			c, err := s.Peek(ctx, "k", rate)
			if err != nil || !c.Reached || c.Remaining != 0 {
				t.Fatalf("after 3 hits: %+v, %v", c, err)
			}
			firstReset := c.Reset
			clock = clock.Add(rate.Period) // the window has ended
			c, err = s.Get(ctx, "k", rate)
			if err != nil || c.Reached || c.Remaining != 1 {
				t.Fatalf("first hit of the next window: %+v, %v", c, err)
			}
			if c.Reset <= firstReset {
				t.Fatalf("next window resets at %d, not after the first (%d)", c.Reset, firstReset)
			}
			if _, err := s.Reset(ctx, "k", rate); err != nil {
				t.Fatal(err)
			}
			if c, _ := s.Peek(ctx, "k", rate); c.Remaining != 2 {
				t.Fatalf("after Reset: %+v", c)
			}
		})
	}
}

func TestSQLStoreConcurrentHitsAreExact(t *testing.T) {
	rate, _ := ParseRate("10/min")
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			z := &Zone{Name: "burst", Rate: rate, Store: NewSQLStore(testenv.OpenDB(t, setting)), Policy: FailClosed}
			var allowed, failed atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					d := z.Hit(context.Background(), "same-key")
					if d.StoreErr != nil {
						failed.Add(1)
						t.Error(d.StoreErr)
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if allowed.Load() != 10 || failed.Load() != 0 {
				t.Fatalf("%d of 100 concurrent hits allowed (%d store errors), want exactly 10", allowed.Load(), failed.Load())
			}
		})
	}
}

func TestSQLStoreSweepAndLongKeys(t *testing.T) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			db := testenv.OpenDB(t, setting)
			s := NewSQLStore(db)
			ctx := context.Background()
			short, _ := ParseRate("5/s")
			long, _ := ParseRate("5/h")
			long1 := strings.Repeat("a", 300)
			long2 := strings.Repeat("a", 299) + "b"
			for _, k := range []string{"gone1", "gone2"} {
				if _, err := s.Get(ctx, k, short); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []string{long1, long2, long2} {
				if _, err := s.Get(ctx, k, long); err != nil {
					t.Fatal(err)
				}
			}
			// Keys longer than the column are hashed, and stay distinct.
			if c, _ := s.Peek(ctx, long1, long); c.Remaining != 4 {
				t.Fatalf("long key 1: %+v", c)
			}
			if c, _ := s.Peek(ctx, long2, long); c.Remaining != 3 {
				t.Fatalf("long key 2: %+v", c)
			}
			n, err := s.Sweep(ctx, time.Now().Add(2*time.Second))
			if err != nil || n != 2 {
				t.Fatalf("Sweep removed %d rows (%v), want the 2 expired ones", n, err)
			}
			var left int
			if err := db.QueryRow("SELECT COUNT(*) FROM rate_limit_counters").Scan(&left); err != nil || left != 2 {
				t.Fatalf("%d rows left (%v), want the 2 live ones", left, err)
			}
		})
	}
}

func TestZoneFailurePolicy(t *testing.T) {
	rate, _ := ParseRate("5/min")
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	st := NewSQLStore(db)
	db.Close() // every query now fails, as with a database that went away
	for _, tt := range []struct {
		policy  FailurePolicy
		allowed bool
	}{{FailOpen, true}, {FailClosed, false}} {
		z := &Zone{Name: "z", Rate: rate, Store: st, Policy: tt.policy}
		d := z.Hit(context.Background(), "k")
		if d.StoreErr == nil || d.Allowed != tt.allowed {
			t.Errorf("%s: allowed=%v err=%v, want allowed=%v and the store's error", tt.policy, d.Allowed, d.StoreErr, tt.allowed)
		}
	}
	if err := st.Ping(context.Background()); err == nil {
		t.Error("Ping on a closed database: want an error")
	}
}

func TestStoreHealth(t *testing.T) {
	var h StoreHealth
	if f, r := h.Observe(nil); f || r || h.Err(time.Minute) != nil {
		t.Fatal("a success on a fresh tracker changed state")
	}
	boom := context.DeadlineExceeded
	if f, _ := h.Observe(boom); !f {
		t.Fatal("first failure not reported")
	}
	if f, _ := h.Observe(boom); f {
		t.Fatal("second failure reported as a new one")
	}
	if err := h.Err(time.Minute); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Err = %v", err)
	}
	if h.Err(0) != nil {
		t.Fatal("a failure older than the window still reported")
	}
	if _, r := h.Observe(nil); !r || h.Err(time.Minute) != nil || h.Failures() != 2 {
		t.Fatal("recovery not reported")
	}
}

func TestDecisionRetryAfter(t *testing.T) {
	now := time.Unix(1000, 900_000_000)
	for _, tt := range []struct {
		reset int64
		want  int64
	}{{1000, 1}, {1001, 2}, {1030, 31}, {990, 1}} {
		if got := (Decision{Reset: time.Unix(tt.reset, 0)}).RetryAfter(now); got != tt.want {
			t.Errorf("reset %d: RetryAfter = %d, want %d", tt.reset, got, tt.want)
		}
	}
}

func TestSQLStoreResetPastYear2038(t *testing.T) {
	rate, _ := ParseRate("3/min")
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			s := NewSQLStore(testenv.OpenDB(t, setting))
			clock := time.Date(2100, 1, 2, 3, 4, 5, 0, time.UTC)
			s.now = func() time.Time { return clock }
			for i := int64(1); i <= 2; i++ {
				c, err := s.Get(context.Background(), "far", rate)
				if err != nil {
					t.Fatal(err)
				}
				if want := clock.Add(time.Minute).Unix(); c.Reset != want || c.Remaining != 3-i {
					t.Fatalf("hit %d: reset %d remaining %d, want %d and %d", i, c.Reset, c.Remaining, want, 3-i)
				}
			}
		})
	}
}
