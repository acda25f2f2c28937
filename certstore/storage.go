// Package certstore keeps certmagic's storage — certificates, keys, ACME
// accounts, OCSP staples — in the gateway's SQL database (MySQL/MariaDB or
// SQLite), with lease locks that coordinate certificate issuance between
// replicas sharing that database.
//
// Keys follow certmagic's file-system semantics: components are separated by
// "/", a "file" is a key with a value, and a "directory" exists only as the
// prefix of other keys. Keys may be of any length: rows are addressed by the
// SHA-256 of the key, and the full key is kept for prefix scans.
package certstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/database"
)

// Default lock timings; see Options.
const (
	DefaultLease        = time.Minute
	DefaultPollInterval = time.Second
)

// Options tune a Storage. The zero value is usable.
type Options struct {
	// Owner names this instance in the lock rows, for operators reading the
	// table; a per-process nonce is appended, and every acquisition is told
	// apart by a random token besides. Default: the host name and process id.
	Owner string
	// Lease is how long a lock stays valid without renewal; a held lock is
	// renewed every Lease/3 in the background, and the lock of a holder that
	// died is taken over once its lease ran out. Default: DefaultLease.
	Lease time.Duration
	// PollInterval caps the wait between two attempts of a blocked Lock; the
	// wait starts short, doubles, and is jittered. Default: DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives lock renewal problems. Default: a no-op logger.
	Logger *zap.Logger
}

// Storage is a certmagic.Storage (and TryLocker) over a database.DB.
// It is safe for concurrent use.
type Storage struct {
	db     *database.DB
	owner  string
	lease  time.Duration
	poll   time.Duration
	logger *zap.Logger
	now    string // SQL expression: the database clock in Unix milliseconds

	mu      sync.Mutex
	held    map[string]*heldLock
	active  int             // locks held or being released
	drained []chan struct{} // closed when active drops to 0
}

// New returns a Storage over db, whose schema must include migration 4.
func New(db *database.DB, opts Options) (*Storage, error) {
	if db == nil {
		return nil, errors.New("certstore: nil database")
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Lease < 300*time.Millisecond {
		return nil, fmt.Errorf("certstore: lease %s is too short (minimum 300ms)", opts.Lease)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Owner == "" {
		opts.Owner = defaultOwner()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Storage{
		db:     db,
		owner:  truncate(opts.Owner, 170) + "/" + processNonce,
		lease:  opts.Lease,
		poll:   opts.PollInterval,
		logger: opts.Logger,
		held:   map[string]*heldLock{},
	}
	switch db.Dialect {
	case database.MySQL:
		// NOW(6) and UNIX_TIMESTAMP() both read the statement's start time,
		// so the sum is one consistent instant, free of time-zone rules.
		s.now = "(UNIX_TIMESTAMP() * 1000 + MICROSECOND(NOW(6)) DIV 1000)"
	case database.SQLite:
		s.now = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
	default:
		return nil, fmt.Errorf("certstore: unsupported dialect %q", db.Dialect)
	}
	return s, nil
}

// String names the storage in certmagic's log lines.
func (s *Storage) String() string { return "certstore(" + s.db.Redacted + ")" }

// Owner is the owner written into the lock rows this Storage takes.
func (s *Storage) Owner() string { return s.owner }

// Store puts value at key, replacing any value there.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	key, err := fileKey(key)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // NULL would break NOT NULL; an empty file is valid
	}
	var q string
	switch s.db.Dialect {
	case database.MySQL:
		q = `INSERT INTO cert_storage (key_hash, storage_key, value, modified_at) VALUES (?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE value = VALUES(value), modified_at = VALUES(modified_at)`
	default:
		q = `INSERT INTO cert_storage (key_hash, storage_key, value, modified_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (key_hash) DO UPDATE SET value = excluded.value, modified_at = excluded.modified_at`
	}
	if _, err := s.db.ExecContext(ctx, q, hashKey(key), key, value, database.NowMillis()); err != nil {
		return fmt.Errorf("certstore: storing %q: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	key, err := fileKey(key)
	if err != nil {
		return nil, err
	}
	var value []byte
	err = s.db.QueryRowContext(ctx, "SELECT value FROM cert_storage WHERE key_hash = ?", hashKey(key)).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notExist(key)
	}
	if err != nil {
		return nil, fmt.Errorf("certstore: loading %q: %w", key, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, nil
}

// Delete removes key and, when key is a directory, every key under it.
// A key that does not exist is not an error. The empty key (the root) is
// refused rather than wiping the whole storage.
func (s *Storage) Delete(ctx context.Context, key string) error {
	key, err := fileKey(key)
	if err != nil {
		return err
	}
	under, args := childRange(key)
	if _, err := s.db.ExecContext(ctx,
		"DELETE FROM cert_storage WHERE key_hash = ? OR ("+under+")",
		append([]any{hashKey(key)}, args...)...); err != nil {
		return fmt.Errorf("certstore: deleting %q: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory (the prefix of a file).
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// Stat describes key: a file with its size and modification time, or a
// directory (IsTerminal false). A key that is neither wraps fs.ErrNotExist.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = cleanKey(key)
	if key != "" {
		var size, modified int64
		err := s.db.QueryRowContext(ctx,
			"SELECT LENGTH(value), modified_at FROM cert_storage WHERE key_hash = ?", hashKey(key)).Scan(&size, &modified)
		switch {
		case err == nil:
			return certmagic.KeyInfo{Key: key, Size: size, Modified: time.UnixMilli(modified), IsTerminal: true}, nil
		case !errors.Is(err, sql.ErrNoRows):
			return certmagic.KeyInfo{}, fmt.Errorf("certstore: stat %q: %w", key, err)
		}
	}
	under, args := childRange(key)
	var modified sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		"SELECT MAX(modified_at) FROM cert_storage WHERE "+under, args...).Scan(&modified)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certstore: stat %q: %w", key, err)
	}
	if !modified.Valid {
		return certmagic.KeyInfo{}, notExist(key)
	}
	return certmagic.KeyInfo{Key: key, Modified: time.UnixMilli(modified.Int64), IsTerminal: false}, nil
}

// List returns the keys under the directory prefix ("" is the root), like
// certmagic's FileStorage: without recursion the files and directories right
// below prefix; with recursion every file and directory below it, each
// directory before its contents. A file has nothing below it; a prefix that
// is neither file nor directory wraps fs.ErrNotExist.
func (s *Storage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	prefix = cleanKey(prefix)
	under, args := childRange(prefix)
	rows, err := s.db.QueryContext(ctx,
		"SELECT storage_key FROM cert_storage WHERE "+under+" ORDER BY storage_key", args...)
	if err != nil {
		return nil, fmt.Errorf("certstore: listing %q: %w", prefix, err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("certstore: listing %q: %w", prefix, err)
		}
		rel := string(raw)
		if prefix != "" {
			rel = strings.TrimPrefix(rel, prefix+"/")
		}
		parts := strings.Split(rel, "/")
		if !recursive {
			add(path.Join(prefix, parts[0]))
			continue
		}
		for i := range parts {
			add(path.Join(prefix, strings.Join(parts[:i+1], "/")))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("certstore: listing %q: %w", prefix, err)
	}
	if len(out) == 0 {
		// Like listing a file in FileStorage: nothing below it, no error.
		if prefix != "" {
			if info, err := s.Stat(ctx, prefix); err == nil && info.IsTerminal {
				return nil, nil
			}
		}
		return nil, notExist(prefix)
	}
	sort.Strings(out)
	return out, nil
}

// cleanKey normalizes a key the way a file path would be: no leading,
// trailing or doubled slashes, "." and ".." resolved.
func cleanKey(key string) string {
	return strings.Trim(path.Clean("/"+key), "/")
}

// fileKey cleans a key that must name a file, refusing the root.
func fileKey(key string) (string, error) {
	k := cleanKey(key)
	if k == "" {
		return "", fmt.Errorf("certstore: invalid key %q: empty", key)
	}
	return k, nil
}

// childRange is the SQL condition (and its arguments) selecting the keys
// strictly under the directory dir: the half-open range [dir+"/", dir+"0"),
// since "0" follows "/" in byte order. For the root, every key.
func childRange(dir string) (cond string, args []any) {
	if dir == "" {
		return "1 = 1", nil
	}
	return "storage_key >= ? AND storage_key < ?", []any{dir + "/", dir + "0"}
}

// hashKey is the row address of a key.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func notExist(key string) error {
	return &fs.PathError{Op: "certstore", Path: key, Err: fs.ErrNotExist}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Interface guards
var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
)
