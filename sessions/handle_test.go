package sessions_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// TestOpenRefusesAnotherUsersSession: the attack is bob naming alice's
// session. Open with bob's id answers ErrNotFound, exactly as for a session
// that does not exist, and hands out no handle, so no operation on the
// session's files, history, quota or activity can follow; nothing of the
// session changes (its row, its metadata, its files, its history). Alice's
// own Open works, and OpenUnscoped, the maintenance path, reaches any
// session.
func TestOpenRefusesAnotherUsersSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, ws := newStore(t, setting, sessions.Config{Timeout: time.Hour, TouchInterval: 10 * time.Millisecond})
		alice, err := st.Create(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Create(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		own := open(t, st, alice)
		files, err := own.Files()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := files.Put("secret.txt", strings.NewReader("alice's"), -1); err != nil {
			t.Fatal(err)
		}
		if _, err := own.AppendHistory([]byte(`"alice's entry"`)); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(ws, "sessions", alice.ID)
		before := snapshot(t, dir)
		row, _ := st.Get(ctx, alice.ID, "alice")
		time.Sleep(30 * time.Millisecond) // past the touch interval: a touch would write

		for _, tc := range []struct{ name, id, user string }{
			{"another user's session", alice.ID, "bob"},
			{"no user", alice.ID, ""},
			{"a session that does not exist", "session-" + testenv.RandomHex(16), "bob"},
			{"a malformed id", "../" + alice.ID, "bob"},
		} {
			h, release, err := st.Open(ctx, tc.id, tc.user)
			if !errors.Is(err, sessions.ErrNotFound) || h != nil || release != nil {
				t.Errorf("%s: Open = %v, %v, release set: %v; want ErrNotFound and nothing else", tc.name, h, err, release != nil)
			}
		}
		if after, _ := st.Get(ctx, alice.ID, "alice"); !after.LastActiveAt.Equal(row.LastActiveAt) {
			t.Errorf("bob's Open moved last_active_at: %v → %v", row.LastActiveAt, after.LastActiveAt)
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("bob's Open changed alice's session directory:\n%s\n→\n%s", before, after)
		}

		// The maintenance path reaches it whoever owns it; it sees the owner.
		h, release, err := st.OpenUnscoped(ctx, alice.ID)
		if err != nil || h.Session().UserID != "alice" {
			t.Fatalf("OpenUnscoped = %+v, %v", h, err)
		}
		if n, err := h.Usage(); err != nil || n == 0 {
			t.Errorf("OpenUnscoped usage = %d, %v", n, err)
		}
		release()
		release() // a second release does nothing
		if _, err := h.Files(); err == nil {
			t.Error("a released handle still opened files/")
		}
		if _, _, err := st.OpenUnscoped(ctx, "session-"+testenv.RandomHex(16)); !errors.Is(err, sessions.ErrNotFound) {
			t.Errorf("OpenUnscoped of no session = %v, want ErrNotFound", err)
		}
	})
}

// snapshot lists every file under dir with its content.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(strings.TrimPrefix(p, dir) + "\n")
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
			b.WriteString("\n")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
