// Package sessionstest holds test helpers for the session store, shared by
// the tests of sessions and of the modules over it.
package sessionstest

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// AssertConsistent opens the database of setting anew and checks its rows
// against dir, the directory holding the session directories
// (<workspace>/sessions): every row is ready and has a directory whose
// metadata.json names it and which holds a history; every session
// directory has a row; no staging, trash, orphaned or temporary file and
// no upload journal marker is left.
func AssertConsistent(t testing.TB, setting, dir string) {
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
		if err := rows.Scan(&id, &user, &ready); err != nil {
			t.Fatal(err)
		}
		if ready != 1 {
			t.Errorf("row %s is not ready", id)
		}
		inDB[id] = user
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, e := range entries {
		switch name := e.Name(); {
		case sessions.ValidID(name):
			onDisk[name] = true
		case strings.HasPrefix(name, ".creating-"), strings.HasPrefix(name, ".deleting-"), name == ".orphaned":
			t.Errorf("left in the workspace: %s", name)
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
		if es, _ := os.ReadDir(filepath.Join(dir, id, ".uploads")); len(es) != 0 {
			t.Errorf("%s: the upload journal holds %d markers", id, len(es))
		}
	}
	for id := range onDisk {
		if _, ok := inDB[id]; !ok {
			t.Errorf("directory %s has no row", id)
		}
	}
}
