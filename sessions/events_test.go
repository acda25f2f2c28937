package sessions_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/sessions"
)

// TestOnExpire: the reaper's hook hears of each expired session with its
// owner, and of no other.
func TestOnExpire(t *testing.T) {
	ctx := context.Background()
	st, _, _ := newStore(t, "sqlite::memory:", sessions.Config{Timeout: 200 * time.Millisecond})
	var mu sync.Mutex
	heard := map[string]string{}
	st.OnExpire(func(id, userID string) {
		mu.Lock()
		heard[id] = userID
		mu.Unlock()
	})
	idle, err := st.Create(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	kept, err := st.Create(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.Expire(ctx); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 1 || heard[idle.ID] != "alice" {
		t.Fatalf("hook heard %v; want only %s of alice (not %s)", heard, idle.ID, kept.ID)
	}
}
