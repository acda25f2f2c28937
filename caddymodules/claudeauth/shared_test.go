package claudeauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

func TestAdminPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-a-file-123\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	cases := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"none: generated", nil, "", ""},
		{"value", map[string]string{"CLAUDE_ADMIN_PASSWORD": "from-the-env-1"}, "from-the-env-1", ""},
		{"file", map[string]string{"CLAUDE_ADMIN_PASSWORD_FILE": file}, "from-a-file-123", ""},
		{"both", map[string]string{"CLAUDE_ADMIN_PASSWORD": "x-long-enough", "CLAUDE_ADMIN_PASSWORD_FILE": file}, "", "set only one"},
		{"short", map[string]string{"CLAUDE_ADMIN_PASSWORD": "short"}, "", "8 to 72 bytes"},
		{"empty file", map[string]string{"CLAUDE_ADMIN_PASSWORD_FILE": empty}, "", "is empty"},
		{"missing file", map[string]string{"CLAUDE_ADMIN_PASSWORD_FILE": filepath.Join(dir, "nope")}, "", "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := adminPassword(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
