package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
	"github.com/claude-gateway/claude-gateway/sessions/sessionstest"
)

// newStore opens a store on a fresh database of the dialect and a fresh workspace.
func newStore(t *testing.T, setting string, cfg sessions.Config) (*sessions.Store, *database.DB, string) {
	t.Helper()
	db := testenv.OpenDB(t, setting)
	ws := t.TempDir()
	st, err := sessions.New(db, ws, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, db, ws
}

// open opens session s for its owner; the handle is released when the
// test ends.
func open(t testing.TB, st *sessions.Store, s sessions.Session) *sessions.Handle {
	t.Helper()
	h, release, err := st.Open(context.Background(), s.ID, s.UserID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return h
}

func forEachDB(t *testing.T, f func(t *testing.T, setting string)) {
	for name, setting := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) { f(t, setting) })
	}
}

func TestCreateGetListDelete(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, ws := newStore(t, setting, sessions.Config{Timeout: time.Hour})
		a, err := st.Create(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if !sessions.ValidID(a.ID) || a.UserID != "alice" || !a.ExpiresAt.Equal(a.LastActiveAt.Add(time.Hour)) {
			t.Fatalf("created %+v", a)
		}
		dir := filepath.Join(ws, "sessions", a.ID)
		for _, p := range []string{"files", ".claude/history.json", "metadata.json"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				t.Errorf("workspace lacks %s: %v", p, err)
			}
		}
		var meta sessions.Session
		b, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
		if err := json.Unmarshal(b, &meta); err != nil || meta.ID != a.ID || meta.UserID != "alice" || !meta.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("metadata.json = %s (%v), want the row %+v", b, err, a)
		}

		b1, _ := st.Create(ctx, "bob")
		got, err := st.Get(ctx, a.ID, "alice")
		if err != nil || got.ID != a.ID {
			t.Fatalf("Get own = %+v, %v", got, err)
		}
		if _, err := st.Get(ctx, a.ID, "bob"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("Get other's = %v, want ErrNotFound", err)
		}
		if _, err := st.Get(ctx, "session-../../etc", "alice"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("Get malformed = %v, want ErrNotFound", err)
		}
		if l, _ := st.List(ctx, "alice"); len(l) != 1 || l[0].ID != a.ID {
			t.Errorf("List alice = %+v", l)
		}
		if l, _ := st.ListAll(ctx); len(l) != 2 {
			t.Errorf("ListAll = %+v", l)
		}
		if n, _ := st.Count(ctx); n != 2 {
			t.Errorf("Count = %d, want 2", n)
		}
		if err := st.Delete(ctx, a.ID, "bob"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("Delete other's = %v, want ErrNotFound", err)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("bob's delete touched alice's workspace: %v", err)
		}
		if err := st.Delete(ctx, a.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("workspace still there after delete: %v", err)
		}
		if _, err := st.Get(ctx, a.ID, "alice"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("Get deleted = %v", err)
		}
		if err := st.Delete(ctx, a.ID, "alice"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("second Delete = %v", err)
		}
		sessionstest.AssertConsistent(t, setting, filepath.Join(ws, "sessions"))
		_ = b1
	})
}

func TestTouchMovesRowAndMetadata(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, ws := newStore(t, setting, sessions.Config{Timeout: time.Hour, TouchInterval: 400 * time.Millisecond})
		s, _ := st.Create(ctx, "alice")
		time.Sleep(450 * time.Millisecond)
		if err := open(t, st, s).Touch(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := st.Get(ctx, s.ID, "alice")
		if !got.LastActiveAt.After(s.LastActiveAt) {
			t.Fatalf("last_active_at %v not after %v", got.LastActiveAt, s.LastActiveAt)
		}
		var meta sessions.Session
		b, _ := os.ReadFile(filepath.Join(ws, "sessions", s.ID, "metadata.json"))
		json.Unmarshal(b, &meta)
		if !meta.LastActiveAt.Equal(got.LastActiveAt) {
			t.Errorf("metadata last_active_at %v, row %v", meta.LastActiveAt, got.LastActiveAt)
		}
		// Within the interval a touch writes nothing.
		open(t, st, s).Touch(ctx)
		again, _ := st.Get(ctx, s.ID, "alice")
		if !again.LastActiveAt.Equal(got.LastActiveAt) {
			t.Errorf("a touch within the interval wrote: %v → %v", got.LastActiveAt, again.LastActiveAt)
		}
	})
}

// TestKeepActive: while a long use of a session (a run in its sandbox) holds
// it, its last_active_at keeps moving; once released, it stays put.
func TestKeepActive(t *testing.T) {
	ctx := context.Background()
	st, _, _ := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{Timeout: time.Hour, TouchInterval: 20 * time.Millisecond})
	s, err := st.Create(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	stop := open(t, st, s).KeepActive(ctx)
	var moved sessions.Session
	for deadline := time.Now().Add(30 * time.Second); ; {
		moved, _ = st.Get(ctx, s.ID, "alice")
		if moved.LastActiveAt.After(s.LastActiveAt) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last_active_at did not move while the session was kept active")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	after, _ := st.Get(ctx, s.ID, "alice")
	time.Sleep(100 * time.Millisecond) // five touch intervals
	if again, _ := st.Get(ctx, s.ID, "alice"); !again.LastActiveAt.Equal(after.LastActiveAt) {
		t.Errorf("last_active_at moved after stop: %v → %v", after.LastActiveAt, again.LastActiveAt)
	}
}

// TestCapsUnderConcurrency runs 50 creates at once with 10 slots left: exactly
// 10 succeed, on each dialect. A per-user cap holds the same way.
func TestCapsUnderConcurrency(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, ws := newStore(t, setting, sessions.Config{MaxSessions: 15, MaxSessionsPerUser: 12})
		for i := 0; i < 5; i++ {
			if _, err := st.Create(ctx, "seed"); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		created, limited := 0, 0
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				user := []string{"u1", "u2"}[i%2]
				_, err := st.Create(ctx, user)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
				case errors.Is(err, sessions.ErrLimitReached):
					limited++
				default:
					t.Errorf("create: %v", err)
				}
			}(i)
		}
		wg.Wait()
		if created != 10 || limited != 40 {
			t.Fatalf("created %d, limited %d; want 10 and 40", created, limited)
		}
		if n, _ := st.Count(ctx); n != 15 {
			t.Errorf("Count = %d, want 15", n)
		}
		sessionstest.AssertConsistent(t, setting, filepath.Join(ws, "sessions"))

		// Per user: u3 may have 2 (MaxSessionsPerUser 2) while slots remain globally.
		st.SetConfig(sessions.Config{MaxSessions: 100, MaxSessionsPerUser: 2})
		results := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func() { _, err := st.Create(ctx, "u3"); results <- err }()
		}
		ok := 0
		for i := 0; i < 8; i++ {
			if err := <-results; err == nil {
				ok++
			} else if !errors.Is(err, sessions.ErrLimitReached) {
				t.Errorf("create: %v", err)
			}
		}
		if ok != 2 {
			t.Errorf("u3 created %d sessions, the per-user cap is 2", ok)
		}
	})
}

func TestExpireKeepsActiveSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, ws := newStore(t, setting, sessions.Config{Timeout: 300 * time.Millisecond})
		idle, _ := st.Create(ctx, "alice")
		active, _ := st.Create(ctx, "alice")
		for i := 0; i < 6; i++ {
			time.Sleep(100 * time.Millisecond)
			if err := open(t, st, active).Touch(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.Expire(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Expire = %d, %v; want 1", n, err)
		}
		if _, err := st.Get(ctx, idle.ID, "alice"); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("idle session still there: %v", err)
		}
		if _, err := os.Stat(filepath.Join(ws, "sessions", idle.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("idle workspace still there: %v", err)
		}
		if _, err := st.Get(ctx, active.ID, "alice"); err != nil {
			t.Errorf("active session expired: %v", err)
		}
		sessionstest.AssertConsistent(t, setting, filepath.Join(ws, "sessions"))
	})
}

// TestRepairFinishesCrashedOperations builds on disk and in the database what
// a crash at each step of create, delete and upload leaves, and checks that
// the start-up repair leaves rows and directories in step.
func TestRepairFinishesCrashedOperations(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, db, ws := newStore(t, setting, sessions.Config{})
		dir := filepath.Join(ws, "sessions")
		keep, _ := st.Create(ctx, "alice")
		keep2, _ := st.Create(ctx, "alice")
		now := database.NowMillis()

		// Create crashed after its row: a not-ready row, with and without staging.
		rowOnly := "session-" + testenv.RandomHex(16)
		staged := "session-" + testenv.RandomHex(16)
		renamed := "session-" + testenv.RandomHex(16)
		for _, id := range []string{rowOnly, staged, renamed} {
			db.ExecContext(ctx, "INSERT INTO sessions (id, user_id, ready, created_at, last_active_at) VALUES (?, 'alice', 0, ?, ?)", id, now-1000, now-1000)
		}
		os.MkdirAll(filepath.Join(dir, ".creating-"+staged, "files"), 0o755)
		os.MkdirAll(filepath.Join(dir, renamed, "files"), 0o755)
		// Delete crashed after moving the directory aside, before the row went.
		trashed, _ := st.Create(ctx, "alice")
		os.Rename(filepath.Join(dir, trashed.ID), filepath.Join(dir, ".deleting-"+trashed.ID+"-"+strconv.FormatInt(now-1000, 10)))
		// A ready row whose directory vanished.
		vanished, _ := st.Create(ctx, "alice")
		os.RemoveAll(filepath.Join(dir, vanished.ID))
		// A directory whose row is gone (a restored database): kept aside.
		orphan := "session-" + testenv.RandomHex(16)
		os.MkdirAll(filepath.Join(dir, orphan, "files"), 0o755)
		os.WriteFile(filepath.Join(dir, orphan, "files", "precious.txt"), []byte("x"), 0o644)
		// An upload crashed mid-way: journal marker plus temporary file.
		files := filepath.Join(dir, keep.ID, "files")
		os.WriteFile(filepath.Join(files, ".claude-tmp-0123456789abcdef"), []byte("partial"), 0o644)
		os.WriteFile(filepath.Join(dir, keep.ID, ".uploads", "fedcba9876543210"), []byte(".claude-tmp-0123456789abcdef"), 0o644)
		// Metadata and history writes crashed before their rename.
		os.WriteFile(filepath.Join(dir, keep.ID, ".claude-tmp-1111111111111111"), []byte("{"), 0o644)
		os.WriteFile(filepath.Join(dir, keep2.ID, ".claude", ".claude-tmp-2222222222222222"), []byte("["), 0o644)

		rep, err := st.Repair(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := sessions.RepairReport{UnfinishedCreates: 3, UnfinishedDeletes: 1, RowsWithoutWorkspace: 1, OrphanedWorkspaces: 1, Uploads: 3}
		if rep != want {
			t.Errorf("report %+v, want %+v", rep, want)
		}
		for _, id := range []string{keep.ID, keep2.ID} {
			if _, err := st.Get(ctx, id, "alice"); err != nil {
				t.Errorf("healthy session %s lost: %v", id, err)
			}
		}
		if _, err := os.Stat(filepath.Join(files, ".claude-tmp-0123456789abcdef")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temporary upload file survived: %v", err)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, ".orphaned", orphan+"-*", "files", "precious.txt"))
		if len(matches) != 1 {
			t.Errorf("the orphaned workspace was not kept aside: %v", matches)
		}
		os.RemoveAll(filepath.Join(dir, ".orphaned")) // kept aside as it should be; the rest must be consistent
		sessionstest.AssertConsistent(t, setting, dir)
	})
}

// TestRepairTellsLiveFromDeadWork: a create in flight in a live process is
// spared, one whose process is gone is finished at once, without waiting for
// the grace period. On MySQL a process is live while it holds its instance
// lock; on SQLite only this process can be.
func TestRepairTellsLiveFromDeadWork(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, db, ws := newStore(t, setting, sessions.Config{})
		now := database.NowMillis()
		live, dead := "session-"+testenv.RandomHex(16), "session-"+testenv.RandomHex(16)
		liveOwner, deadOwner := testenv.RandomHex(8), testenv.RandomHex(8)
		if db.Dialect == database.MySQL {
			// Another replica, alive: it holds its lock on a connection of its own.
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var got int
			if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", "claude_sessions_"+liveOwner).Scan(&got); err != nil || got != 1 {
				t.Fatalf("GET_LOCK: %d, %v", got, err)
			}
		} else {
			liveOwner = "" // unknown owner: only the grace period applies
		}
		for id, owner := range map[string]string{live: liveOwner, dead: deadOwner} {
			if _, err := db.ExecContext(ctx, "INSERT INTO sessions (id, user_id, ready, created_at, last_active_at, creator) VALUES (?, 'alice', 0, ?, ?, ?)", id, now, now, owner); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(ws, "sessions", ".creating-"+id), 0o755)
		}
		// A delete (or an expiry that may restore the directory) in flight in the live process.
		deleting, _ := st.Create(ctx, "alice")
		os.Rename(filepath.Join(ws, "sessions", deleting.ID), filepath.Join(ws, "sessions", fmt.Sprintf(".deleting-%s-%d-%s", deleting.ID, now, liveOwner)))

		rep, err := st.Repair(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if rep != (sessions.RepairReport{UnfinishedCreates: 1}) {
			t.Errorf("report %+v, want 1 unfinished create and nothing else", rep)
		}
		if _, err := st.Get(ctx, deleting.ID, "alice"); err != nil {
			t.Errorf("the row of a session being deleted by a live process was removed: %v", err)
		}
		if _, err := os.Stat(filepath.Join(ws, "sessions", ".creating-"+live)); err != nil {
			t.Errorf("staging of the live create removed: %v", err)
		}
		if _, err := os.Stat(filepath.Join(ws, "sessions", ".creating-"+dead)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("staging of the dead create kept: %v", err)
		}
		var n int
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE id = ?", dead).Scan(&n)
		if n != 0 {
			t.Error("the dead create's row is still there")
		}
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE id = ?", live).Scan(&n)
		if n != 1 {
			t.Error("the live create's row was removed")
		}
	})
}

// TestRemoveHooks: a delete and an expiry call the registered hooks with the
// session's id while its directory is still there; a cancelled hook is not
// called.
func TestRemoveHooks(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, ws := newStore(t, setting, sessions.Config{Timeout: 200 * time.Millisecond})
		var mu sync.Mutex
		var seen []string
		cancel := st.OnRemove(func(_ context.Context, id string) {
			mu.Lock()
			defer mu.Unlock()
			if _, err := os.Stat(filepath.Join(ws, "sessions", id, "files")); err != nil {
				t.Errorf("hook of %s called after its directory went: %v", id, err)
			}
			seen = append(seen, id)
		})
		deleted, _ := st.Create(ctx, "alice")
		expired, _ := st.Create(ctx, "alice")
		if err := st.Delete(ctx, deleted.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if n, err := st.Expire(ctx); err != nil || n != 1 {
			t.Fatalf("Expire = %d, %v", n, err)
		}
		mu.Lock()
		if len(seen) != 2 || seen[0] != deleted.ID || seen[1] != expired.ID {
			t.Errorf("hooks saw %v, want [%s %s]", seen, deleted.ID, expired.ID)
		}
		mu.Unlock()
		cancel()
		last, _ := st.Create(ctx, "alice")
		if err := st.Delete(ctx, last.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 2 {
			t.Errorf("a cancelled hook was called: %v", seen)
		}
	})
}

// TestDefaultPerUserCap: with no per-user cap set, one user gets
// DefaultMaxSessionsPerUser sessions, far below max_sessions, and another
// user still gets theirs.
func TestDefaultPerUserCap(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, _ := newStore(t, setting, sessions.Config{MaxSessions: 100})
		for i := 0; i < sessions.DefaultMaxSessionsPerUser; i++ {
			if _, err := st.Create(ctx, "greedy"); err != nil {
				t.Fatalf("session %d: %v", i+1, err)
			}
		}
		if _, err := st.Create(ctx, "greedy"); !errors.Is(err, sessions.ErrLimitReached) {
			t.Fatalf("session %d of one user: %v, want ErrLimitReached", sessions.DefaultMaxSessionsPerUser+1, err)
		}
		if _, err := st.Create(ctx, "other"); err != nil {
			t.Fatalf("another user's session: %v", err)
		}
		if got := st.Config().MaxSessionsPerUser; got != sessions.DefaultMaxSessionsPerUser {
			t.Errorf("MaxSessionsPerUser = %d, want %d", got, sessions.DefaultMaxSessionsPerUser)
		}
	})
}
