package claudeauth

import (
	"context"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

func TestRevocationsHealthCheck(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	st := &state{revocations: auth.NewRevocations(db)}
	st.syncEvery.Store(int64(time.Second))
	if err := st.check(context.Background()); err == nil {
		t.Fatal("healthy before the list was ever read")
	}
	if err := st.revocations.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.check(context.Background()); err != nil {
		t.Fatalf("unhealthy right after a read: %v", err)
	}
	db.Close() // the database goes away: reads fail, the copy ages
	if err := st.revocations.Sync(context.Background()); err == nil {
		t.Fatal("sync on a closed database succeeded")
	}
	st.syncEvery.Store(int64(time.Millisecond)) // bound: max(30 ms, 1 min) = 1 min, not reached yet
	if err := st.check(context.Background()); err != nil {
		t.Fatalf("unhealthy within the bound: %v", err)
	}
	st.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	if err := st.check(context.Background()); err == nil {
		t.Fatal("healthy with a revocation list 61s old")
	}
}
