// Package testenv gives integration tests the real things they need — MariaDB,
// the Docker engine, Chromium — and decides what happens when one is missing:
// under CI=true the test fails, elsewhere it is skipped with a loud reason.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/claude-gateway/claude-gateway/database"
)

// InCI reports whether the tests run under CI (CI=true), where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops a test whose real dependency is unavailable: a failure under CI,
// a skip that says what is missing elsewhere.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("MISSING DEPENDENCY: %s: %v (run `make test`, which prepares it)", what, err)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// MySQLServer is the MariaDB server prepared by scripts/test-env.sh, as a
// setting without a database name, e.g. "mysql://u:p@tcp(127.0.0.1:3306)/".
func MySQLServer(t testing.TB) string {
	t.Helper()
	s := os.Getenv("CLAUDE_TEST_MYSQL")
	if s == "" {
		Missing(t, "MariaDB", fmt.Errorf("CLAUDE_TEST_MYSQL is not set"))
	}
	return s
}

// MySQLDatabase creates a fresh, empty database on the test MariaDB server and
// returns its `database` setting; the database is dropped when the test ends.
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	server := MySQLServer(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(server, "mysql://"))
	if err != nil {
		t.Fatalf("CLAUDE_TEST_MYSQL: %v", err)
	}
	name := "claude_test_" + RandomHex(6)
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("mysql: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		Missing(t, "MariaDB at "+database.Redact(server), err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name)
	})
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

// SQLiteDatabase returns a `database` setting for a fresh SQLite file in the test's temp dir.
func SQLiteDatabase(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "gateway.db")
}

// Databases returns one fresh setting per dialect, keyed by dialect name, for
// table-driven tests that must pass on both.
func Databases(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"sqlite": SQLiteDatabase(t),
		"mysql":  MySQLDatabase(t),
	}
}

// OpenDB opens and migrates a database setting, closing it when the test ends.
func OpenDB(t testing.TB, setting string) *database.DB {
	t.Helper()
	db, err := database.Open(context.Background(), setting)
	if err != nil {
		t.Fatalf("opening %s: %v", database.Redact(setting), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Docker checks that the Docker engine answers (`docker version`).
func Docker(t testing.TB) {
	t.Helper()
	out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		Missing(t, "Docker engine", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out))))
	}
}

// DockerImage checks that the engine has image ref (e.g. the sandbox image
// built by `make sandbox-image`).
func DockerImage(t testing.TB, ref string) {
	t.Helper()
	Docker(t)
	if out, err := exec.Command("docker", "image", "inspect", ref).CombinedOutput(); err != nil {
		Missing(t, "Docker image "+ref+" (make sandbox-image)", fmt.Errorf("%v: %s", err, firstLine(out)))
	}
}

// Chromium returns the path of the Chromium binary for browser tests.
func Chromium(t testing.TB) string {
	t.Helper()
	p := os.Getenv("CLAUDE_TEST_CHROMIUM")
	if p == "" {
		var err error
		if p, err = exec.LookPath("chromium"); err != nil {
			Missing(t, "Chromium", err)
		}
	}
	return p
}

// RandomHex returns n random bytes, hex-encoded.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
