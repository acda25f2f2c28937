package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/identity"
)

// TestBansListAndLift: both regulation stores list the bans a run of failed
// logins caused, tell OnBan of each as it begins, and lift one so that its
// key may sign in again while the other stays banned.
func TestBansListAndLift(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		policy := RegulationPolicy{MaxRetries: 3, FindTime: time.Minute, BanTime: time.Minute}
		for name, reg := range map[string]interface {
			RegulationStore
			BanList
		}{"sql": NewSQLRegulator(db, policy), "memory": NewMemoryRegulator(policy)} {
			t.Run(name, func(t *testing.T) {
				s := newTestService(t, db)
				s.Regulator = reg
				var mu sync.Mutex
				began := map[string]time.Time{}
				s.OnBan = func(key string, until time.Time) {
					mu.Lock()
					began[key] = until
					mu.Unlock()
				}
				s.Users.Create(ctx, "carol-"+name, "carol's password", identity.RoleUser)
				for range 3 {
					s.Login(ctx, "carol-"+name, "wrong", "10.1.0.1")
				}
				if len(began) != 2 || began["user:carol-"+name].IsZero() || began["addr:10.1.0.1"].IsZero() {
					t.Fatalf("OnBan heard %v, want the user and the address once each", began)
				}
				bans, err := reg.Bans(ctx, time.Now())
				if err != nil || len(bans) != 2 {
					t.Fatalf("bans %v, %v; want 2", bans, err)
				}
				if err := reg.Lift(ctx, "user:carol-"+name); err != nil {
					t.Fatal(err)
				}
				// The user may sign in again from another address; the address stays banned.
				if _, err := s.Login(ctx, "carol-"+name, "carol's password", "10.1.0.2"); err != nil {
					t.Fatalf("login after the lift: %v", err)
				}
				var banned *BannedError
				if _, err := s.Login(ctx, "carol-"+name, "carol's password", "10.1.0.1"); !errors.As(err, &banned) {
					t.Fatalf("the banned address signed in: %v", err)
				}
				bans, _ = reg.Bans(ctx, time.Now())
				if len(bans) != 1 || bans[0].Key != "addr:10.1.0.1" {
					t.Fatalf("bans after the lift: %v", bans)
				}
				reg.Lift(ctx, "addr:10.1.0.1")
			})
		}
	})
}
