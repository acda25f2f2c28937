package database

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations
var embedded embed.FS

// Migrations is the schema of the gateway, one directory per dialect
// ("sqlite/", "mysql/"), each holding files named "<version>_<name>.sql".
// Every version exists in both dialects.
var Migrations fs.FS = mustSub(embedded, "migrations")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Migration is one versioned schema step.
type Migration struct {
	// Version orders the migrations; it is the number before the first "_".
	Version int
	// Name is the file name.
	Name string
	// SQL is the statements to run.
	SQL string
}

// LoadMigrations reads the migrations of one dialect from fsys, sorted by version.
func LoadMigrations(fsys fs.FS, d Dialect) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s migrations: %w", d, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(string(d), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

const migrationLock = "claude_gateway_migrate"

// Migrate applies every migration in fsys that the database has not recorded yet,
// in version order. Replicas starting together on MySQL serialize on a named lock,
// so each migration runs once.
func (db *DB) Migrate(ctx context.Context, fsys fs.FS) error {
	migrations, err := LoadMigrations(fsys, db.Dialect)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if db.Dialect == MySQL {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", migrationLock).Scan(&got); err != nil {
			return fmt.Errorf("migrate: taking the migration lock: %w", err)
		}
		if !got.Valid || got.Int64 != 1 {
			return fmt.Errorf("migrate: another instance held the migration lock for 60s")
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", migrationLock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT NOT NULL PRIMARY KEY,
		name VARCHAR(255) NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: creating schema_migrations: %w", err)
	}
	if err := renumber(ctx, conn); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: reading schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: reading schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: reading schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		if err := apply(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// renumbered maps the versions the gateway's migrations had before they were
// numbered in order (1, 2, 3, 4, 5, 11, 12, 13, 31) to their versions now.
// A database migrated by an older binary records the old version and file
// name; renumber rewrites such rows so those migrations are not applied again.
var renumbered = []struct {
	oldVersion int
	oldName    string
	version    int
	name       string
}{
	{11, "11_auth_regulation.sql", 6, "6_auth_regulation.sql"},
	{12, "12_ide_tickets.sql", 7, "7_ide_tickets.sql"},
	{13, "13_ide_ticket_state.sql", 8, "8_ide_ticket_state.sql"},
	{31, "31_sessions_creator.sql", 9, "9_sessions_creator.sql"},
}

// renumber rewrites, in one transaction, the schema_migrations rows of an
// older binary's numbering to the current one (see renumbered). A row is
// matched by its old version and file name, so other migration sets are left
// alone; the old and new versions do not overlap, so no row collides.
func renumber(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: renumbering: %w", err)
	}
	defer tx.Rollback()
	for _, r := range renumbered {
		if _, err := tx.ExecContext(ctx, "UPDATE schema_migrations SET version = ?, name = ? WHERE version = ? AND name = ?",
			r.version, r.name, r.oldVersion, r.oldName); err != nil {
			return fmt.Errorf("migrate: renumbering %s: %w", r.oldName, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: renumbering: %w", err)
	}
	return nil
}

// apply runs one migration and records it. On SQLite both happen in one
// transaction; MySQL commits DDL implicitly, so there the record follows the DDL.
func apply(ctx context.Context, conn *sql.Conn, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	if strings.TrimSpace(m.SQL) != "" {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, NowMillis()); err != nil {
		return fmt.Errorf("migration %s: recording it: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}

// Version is the highest migration version the database has applied, 0 for none.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v.Int64), nil
}
