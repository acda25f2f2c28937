package database_test

import (
	"context"
	"io/fs"
	"maps"
	"path"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// oldNames are the file names the gateway's migrations had before they were
// numbered in order.
var oldNames = map[string]string{
	"6_auth_regulation.sql":  "11_auth_regulation.sql",
	"7_ide_tickets.sql":      "12_ide_tickets.sql",
	"8_ide_ticket_state.sql": "13_ide_ticket_state.sql",
	"9_sessions_creator.sql": "31_sessions_creator.sql",
}

// oldNumbering is the embedded schema under its old file names, without the
// migrations named in leave (a database of a binary that predates them).
func oldNumbering(t *testing.T, leave ...string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	for _, dialect := range []string{"sqlite", "mysql"} {
		entries, err := fs.ReadDir(database.Migrations, dialect)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if slices.Contains(leave, e.Name()) {
				continue
			}
			b, err := fs.ReadFile(database.Migrations, path.Join(dialect, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			name := e.Name()
			if old, ok := oldNames[name]; ok {
				name = old
			}
			out[path.Join(dialect, name)] = &fstest.MapFile{Data: b}
		}
	}
	return out
}

// recorded is schema_migrations: file name by version, and applied_at by version.
func recorded(t *testing.T, db *database.DB) (map[int]string, map[int]int64) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT version, name, applied_at FROM schema_migrations")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names, at := map[int]string{}, map[int]int64{}
	for rows.Next() {
		var v int
		var n string
		var a int64
		if err := rows.Scan(&v, &n, &a); err != nil {
			t.Fatal(err)
		}
		names[v], at[v] = n, a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names, at
}

// TestMigrateOldNumbering takes a database migrated under the old numbering
// (1, 2, 3, 4, 5, 11, 12, 13, 31; and one from before the audit migration 5)
// and migrates it with the current code: nothing is applied twice (every
// migration creates or alters a table, so a second run would fail), the rows
// and their applied_at stay, the bookkeeping carries the new numbers, and a
// migration the old database lacked is applied.
func TestMigrateOldNumbering(t *testing.T) {
	ctx := context.Background()
	current, err := database.LoadMigrations(database.Migrations, database.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := map[int]string{}
	for i, m := range current {
		if m.Version != i+1 {
			t.Fatalf("migration %s: version %d, want %d (numbered in order, no gaps)", m.Name, m.Version, i+1)
		}
		wantNames[m.Version] = m.Name
	}
	cases := map[string][]string{
		"all":          nil,
		"before_audit": {"5_audit.sql"},
	}
	fresh := map[string]func(testing.TB) string{"sqlite": testenv.SQLiteDatabase, "mysql": testenv.MySQLDatabase}
	renamedTo := map[string]int{}
	for _, m := range current {
		if old, ok := oldNames[m.Name]; ok {
			renamedTo[old] = m.Version
		}
	}
	for _, dialect := range []string{"sqlite", "mysql"} {
		for name, leave := range cases {
			t.Run(dialect+"/"+name, func(t *testing.T) {
				setting := fresh[dialect](t)
				db, err := database.Connect(ctx, setting)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if err := db.Migrate(ctx, oldNumbering(t, leave...)); err != nil {
					t.Fatalf("migrating with the old numbering: %v", err)
				}
				oldRows, oldAt := recorded(t, db)
				wantOld := []int{1, 2, 3, 4, 5, 11, 12, 13, 31}
				if len(leave) > 0 {
					wantOld = []int{1, 2, 3, 4, 11, 12, 13, 31}
				}
				if got := slices.Sorted(maps.Keys(oldRows)); !slices.Equal(got, wantOld) {
					t.Fatalf("old versions = %v, want %v", got, wantOld)
				}
				if v, err := db.Version(ctx); err != nil || v != 31 {
					t.Fatalf("old version = %d, %v; want 31", v, err)
				}
				// A row in a table of a renumbered migration, and one in a column it added.
				if _, err := db.ExecContext(ctx, "INSERT INTO login_failures (reg_key, failed_at) VALUES ('user:alice', 42)"); err != nil {
					t.Fatal(err)
				}

				if err := db.Migrate(ctx, database.Migrations); err != nil {
					t.Fatalf("migrating with the current numbering: %v", err)
				}
				newRows, newAt := recorded(t, db)
				if !maps.Equal(newRows, wantNames) {
					t.Fatalf("schema_migrations = %v, want %v", newRows, wantNames)
				}
				for old, at := range oldAt {
					v := old
					if nv, ok := renamedTo[oldRows[old]]; ok {
						v = nv
					}
					if newAt[v] != at {
						t.Errorf("%s (now version %d): applied_at %d, was %d (applied again)", oldRows[old], v, newAt[v], at)
					}
				}
				if len(leave) > 0 && newAt[5] == 0 {
					t.Errorf("the audit migration the old database lacked was not applied")
				}
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM login_failures WHERE reg_key = 'user:alice' AND failed_at = 42").Scan(&n); err != nil || n != 1 {
					t.Fatalf("login_failures row = %d, %v; want 1", n, err)
				}
				if v, err := db.Version(ctx); err != nil || v != len(current) {
					t.Fatalf("version = %d, %v; want %d", v, err, len(current))
				}
				// And again: a no-op.
				if err := db.Migrate(ctx, database.Migrations); err != nil {
					t.Fatalf("third migrate: %v", err)
				}
			})
		}
	}
}
