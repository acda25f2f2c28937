package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

func TestParseSetting(t *testing.T) {
	tests := []struct {
		in        string
		dialect   database.Dialect
		wantError string
	}{
		{"sqlite:./data/gateway.db", database.SQLite, ""},
		{"sqlite:///var/lib/gw.db", database.SQLite, ""},
		{"sqlite::memory:", database.SQLite, ""},
		{"mysql://u:p@tcp(db:3306)/claude", database.MySQL, ""},
		{"mysql://u:p@tcp(db:3306)/claude?tls=true", database.MySQL, ""},
		{"", "", "empty setting"},
		{"sqlite:", "", "needs a file path"},
		{"mysql://u:p@tcp(db:3306)/", "", "names no database"},
		{"mysql://u:p@db:3306/claude", "", "invalid mysql setting"},
		{"postgres://u:p@db/claude", "", "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := database.ParseSetting(tt.in)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !strings.HasPrefix(err.Error(), "database") {
					t.Fatalf("err = %v, want one naming the setting and containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil || s.Dialect != tt.dialect {
				t.Fatalf("got %+v, %v; want dialect %s", s, err, tt.dialect)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	got := database.Redact("mysql://claude:s3cret@tcp(db:3306)/claude")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "claude:xxxxx@tcp(db:3306)/claude") {
		t.Fatalf("Redact = %q", got)
	}
	if _, err := database.ParseSetting("postgres://u:s3cret@db/x"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password or is nil: %v", err)
	}
}

// testMigrations is a two-step schema in both dialects.
func testMigrations(extra string) fstest.MapFS {
	fs := fstest.MapFS{
		"sqlite/1_first.sql":  {Data: []byte("CREATE TABLE t1 (id BIGINT PRIMARY KEY);")},
		"mysql/1_first.sql":   {Data: []byte("CREATE TABLE t1 (id BIGINT PRIMARY KEY) ENGINE=InnoDB;")},
		"sqlite/2_second.sql": {Data: []byte("CREATE TABLE t2 (id BIGINT PRIMARY KEY); INSERT INTO t1 (id) VALUES (1);")},
		"mysql/2_second.sql":  {Data: []byte("CREATE TABLE t2 (id BIGINT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t1 (id) VALUES (1);")},
	}
	if extra != "" {
		fs["sqlite/3_extra.sql"] = &fstest.MapFile{Data: []byte(extra)}
		fs["mysql/3_extra.sql"] = &fstest.MapFile{Data: []byte(extra)}
	}
	return fs
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for dialect, setting := range testenv.Databases(t) {
		t.Run(dialect, func(t *testing.T) {
			db, err := database.Connect(ctx, setting)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx, testMigrations("")); err != nil {
				t.Fatalf("first migrate: %v", err)
			}
			if v, err := db.Version(ctx); err != nil || v != 2 {
				t.Fatalf("version = %d, %v; want 2", v, err)
			}
			// A second run is a no-op: the INSERT of migration 2 would fail on a duplicate key.
			if err := db.Migrate(ctx, testMigrations("")); err != nil {
				t.Fatalf("second migrate: %v", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t1").Scan(&n); err != nil || n != 1 {
				t.Fatalf("t1 rows = %d, %v; want 1", n, err)
			}
			// A broken migration names itself and is not recorded.
			err = db.Migrate(ctx, testMigrations("CREATE TABLE broken ("))
			if err == nil || !strings.Contains(err.Error(), "3_extra.sql") {
				t.Fatalf("broken migration: err = %v", err)
			}
			if v, _ := db.Version(ctx); v != 2 {
				t.Fatalf("version after a failed migration = %d, want 2", v)
			}
		})
	}
}

func TestMigrateConcurrentReplicas(t *testing.T) {
	ctx := context.Background()
	setting := testenv.MySQLDatabase(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	for range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := database.Connect(ctx, setting)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx, testMigrations(""))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("replica migrate: %v", err)
		}
	}
	db, err := database.Connect(ctx, setting)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("migration 2 ran %d times (%v), want once", n, err)
	}
}

// TestEmbeddedMigrations applies the gateway's real schema from empty on both
// dialects, twice, and checks both dialects define the same versions.
func TestEmbeddedMigrations(t *testing.T) {
	ctx := context.Background()
	sq, err := database.LoadMigrations(database.Migrations, database.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	my, err := database.LoadMigrations(database.Migrations, database.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	if len(sq) != len(my) {
		t.Fatalf("sqlite has %d migrations, mysql %d", len(sq), len(my))
	}
	for i := range sq {
		if sq[i].Version != my[i].Version || sq[i].Name != my[i].Name {
			t.Fatalf("migration %d differs: sqlite %s, mysql %s", i, sq[i].Name, my[i].Name)
		}
	}
	for dialect, setting := range testenv.Databases(t) {
		t.Run(dialect, func(t *testing.T) {
			db := testenv.OpenDB(t, setting) // Open migrates
			want := 0
			if len(sq) > 0 {
				want = sq[len(sq)-1].Version
			}
			if v, err := db.Version(ctx); err != nil || v != want {
				t.Fatalf("version = %d, %v; want %d", v, err, want)
			}
			if err := db.Migrate(ctx, database.Migrations); err != nil {
				t.Fatalf("second migrate: %v", err)
			}
		})
	}
}

// TestSQLiteFilesArePrivate: the database holds password hashes and tokens.
func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	db := testenv.OpenDB(t, "sqlite:"+filepath.Join(dir, "sub", "gateway.db"))
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sub", "sub/gateway.db", "sub/gateway.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", name, perm)
		}
	}
}
