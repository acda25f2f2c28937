// Package database opens the gateway's database (embedded SQLite or MySQL/MariaDB)
// from one setting string and applies the schema migrations embedded in the binary.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the SQL flavour behind a DB.
type Dialect string

// The dialects the gateway speaks.
const (
	SQLite Dialect = "sqlite"
	MySQL  Dialect = "mysql"
)

// DB is an open, migrated database pool with the dialect it speaks.
// Timestamps are stored as BIGINT Unix milliseconds in every dialect.
type DB struct {
	*sql.DB
	// Dialect is the SQL flavour of the database.
	Dialect Dialect
	// Redacted is the setting the pool was opened from, with any password masked;
	// safe to log.
	Redacted string
}

// Setting is a parsed `database` setting.
type Setting struct {
	// Dialect is the SQL flavour the setting selects.
	Dialect Dialect
	// Path is the SQLite file (SQLite only); ":memory:" for an in-memory database.
	Path string
	// MySQL is the driver configuration (MySQL only).
	MySQL *mysql.Config
}

// ParseSetting reads a `database` setting: "sqlite:<path>" or
// "mysql://user:pass@tcp(host:port)/db[?params]".
func ParseSetting(s string) (Setting, error) {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		p = strings.TrimPrefix(p, "//")
		if p == "" {
			return Setting{}, errors.New(`database: "sqlite:" needs a file path, e.g. sqlite:./data/gateway.db`)
		}
		return Setting{Dialect: SQLite, Path: p}, nil
	case strings.HasPrefix(s, "mysql://"):
		cfg, err := mysql.ParseDSN(strings.TrimPrefix(s, "mysql://"))
		if err != nil {
			return Setting{}, fmt.Errorf("database: invalid mysql setting (want mysql://user:pass@tcp(host:3306)/db): %w", err)
		}
		if cfg.DBName == "" {
			return Setting{}, errors.New("database: the mysql setting names no database (want mysql://user:pass@tcp(host:3306)/db)")
		}
		return Setting{Dialect: MySQL, MySQL: cfg}, nil
	case s == "":
		return Setting{}, errors.New("database: empty setting (want sqlite:<path> or mysql://user:pass@tcp(host:3306)/db)")
	default:
		return Setting{}, fmt.Errorf("database: unknown scheme in %q (want sqlite:<path> or mysql://user:pass@tcp(host:3306)/db)", Redact(s))
	}
}

// Redact masks the password of a `database` setting (any "scheme://user:pass@…"
// form) so it can be logged.
func Redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	cred := rest[:at]
	if colon := strings.Index(cred, ":"); colon >= 0 {
		cred = cred[:colon] + ":xxxxx"
	}
	return scheme + "://" + cred + rest[at:]
}

// Open connects to the database a setting names, checks that it answers and
// applies the pending migrations. The caller closes the returned DB.
func Open(ctx context.Context, setting string) (*DB, error) {
	db, err := Connect(ctx, setting)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, Migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", db.Redacted, err)
	}
	return db, nil
}

// Connect connects to the database a setting names and checks that it
// answers, without migrating it. The caller closes the returned DB.
func Connect(ctx context.Context, setting string) (*DB, error) {
	s, err := ParseSetting(setting)
	if err != nil {
		return nil, err
	}
	db, err := open(s)
	if err != nil {
		return nil, err
	}
	out := &DB{DB: db, Dialect: s.Dialect, Redacted: Redact(setting)}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: not reachable: %w", out.Redacted, err)
	}
	return out, nil
}

func open(s Setting) (*sql.DB, error) {
	switch s.Dialect {
	case SQLite:
		if s.Path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
				return nil, fmt.Errorf("database: creating the directory of %s: %w", s.Path, err)
			}
			// The file holds password hashes and tokens: create it private
			// (SQLite gives its -wal and -shm files the same mode).
			f, err := os.OpenFile(s.Path, os.O_RDONLY|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("database: creating %s: %w", s.Path, err)
			}
			f.Close()
		}
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", "file:"+s.Path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("database: opening sqlite %s: %w", s.Path, err)
		}
		if s.Path == ":memory:" {
			// Every connection to ":memory:" is a database of its own.
			db.SetMaxOpenConns(1)
		}
		return db, nil
	case MySQL:
		cfg := s.MySQL.Clone()
		cfg.ParseTime = true
		cfg.MultiStatements = true
		if cfg.Timeout == 0 {
			cfg.Timeout = 5 * time.Second
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("database: mysql connector: %w", err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxLifetime(5 * time.Minute)
		return db, nil
	}
	return nil, fmt.Errorf("database: unsupported dialect %q", s.Dialect)
}

// Destruct closes the pool; it lets a DB live in a caddy.UsagePool.
func (db *DB) Destruct() error { return db.Close() }

// NowMillis is the current time in the unit the schema stores: Unix milliseconds.
func NowMillis() int64 { return time.Now().UnixMilli() }
