package sessions_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/sessions"
)

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

// AssertConsistent opens the database anew and checks rows against the workspace.
func AssertConsistent(t *testing.T, setting, ws string) {
	t.Helper()
	db, err := database.Open(context.Background(), setting)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT id, user_id, ready FROM sessions")
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]string{}
	for rows.Next() {
		var id, user string
		var ready int
		rows.Scan(&id, &user, &ready)
		if ready != 1 {
			t.Errorf("row %s is not ready", id)
		}
		inDB[id] = user
	}
	rows.Close()
	dir := filepath.Join(ws, "sessions")
	entries, _ := os.ReadDir(dir)
	onDisk := map[string]bool{}
	for _, e := range entries {
		switch name := e.Name(); {
		case sessions.ValidID(name):
			onDisk[name] = true
		case strings.HasPrefix(name, ".creating-"), strings.HasPrefix(name, ".deleting-"):
			t.Errorf("transient directory left: %s", name)
		}
	}
	for id, user := range inDB {
		if !onDisk[id] {
			t.Errorf("row %s has no directory", id)
			continue
		}
		var meta sessions.Session
		b, err := os.ReadFile(filepath.Join(dir, id, "metadata.json"))
		if err != nil || json.Unmarshal(b, &meta) != nil || meta.ID != id || meta.UserID != user {
			t.Errorf("metadata.json of %s = %s (%v)", id, b, err)
		}
		if _, err := os.Stat(filepath.Join(dir, id, ".claude", "history.json")); err != nil {
			t.Errorf("%s has no history.json: %v", id, err)
		}
		filepath.WalkDir(filepath.Join(dir, id), func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".claude-tmp-") {
				t.Errorf("temporary file left: %s", p)
			}
			return nil
		})
	}
	for id := range onDisk {
		if _, ok := inDB[id]; !ok {
			t.Errorf("directory %s has no row", id)
		}
	}
}
