package sessions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/database"
)

// Defaults of Config.
const (
	DefaultTimeout     = time.Hour
	DefaultMaxSessions = 100
	// DefaultMaxSessionsPerUser is the per-user cap when none is set: one
	// user cannot take every session of a gateway.
	DefaultMaxSessionsPerUser = 10
	DefaultMaxFileSize        = 10 << 20
	// DefaultMaxHistorySize bounds a session's history file.
	DefaultMaxHistorySize = 32 << 20
	// DefaultUsageRefresh is how long a session's measured usage is
	// trusted before it is measured again.
	DefaultUsageRefresh  = time.Minute
	DefaultTouchInterval = 5 * time.Second
	DefaultRepairGrace   = time.Minute
)

// Config holds the limits of a Store. The zero value of a field means its default.
type Config struct {
	// Timeout is how long a session may stay idle before the reaper removes it.
	Timeout time.Duration
	// MaxSessions caps the sessions of all users together.
	MaxSessions int
	// MaxSessionsPerUser caps the sessions of one user; 0 means
	// DefaultMaxSessionsPerUser (at most MaxSessions).
	MaxSessionsPerUser int
	// MaxFileSize bounds one uploaded file, in bytes.
	MaxFileSize int64
	// MaxHistorySize bounds a session's .claude/history.json, in bytes.
	MaxHistorySize int64
	// Quota bounds the bytes of a session: everything under its files/
	// and its history together; 0 means no quota.
	Quota int64
	// UsageRefresh is how long the usage counter of a session is trusted
	// before the next use measures its files/ again (to see what runs,
	// other replicas or the IDE wrote meanwhile).
	UsageRefresh time.Duration
	// TouchInterval is the least time between two writes of last_active_at
	// for one session.
	TouchInterval time.Duration
	// RepairGrace is how long the repair pass leaves an unfinished create,
	// delete or upload alone while its process may still be at work. Work of
	// a process known to be gone (see liveness.go) is finished at once.
	RepairGrace time.Duration
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessionsPerUser <= 0 {
		c.MaxSessionsPerUser = min(DefaultMaxSessionsPerUser, c.MaxSessions)
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = DefaultMaxFileSize
	}
	if c.MaxHistorySize <= 0 {
		c.MaxHistorySize = DefaultMaxHistorySize
	}
	if c.UsageRefresh <= 0 {
		c.UsageRefresh = DefaultUsageRefresh
	}
	if c.TouchInterval <= 0 {
		c.TouchInterval = DefaultTouchInterval
	}
	if c.TouchInterval > c.Timeout/4 {
		// An active session must never look idle to the reaper.
		c.TouchInterval = c.Timeout / 4
	}
	if c.RepairGrace <= 0 {
		c.RepairGrace = DefaultRepairGrace
	}
	return c
}

// Store keeps sessions: rows in the shared database and workspaces on disk.
// It is safe for concurrent use.
type Store struct {
	db     *database.DB
	dir    string   // <workspace>/sessions, absolute
	root   *os.Root // confined to dir
	cfg    atomic.Pointer[Config]
	logger *zap.Logger

	instance string // this process's instance id (see liveness.go)
	lockMu   sync.Mutex
	lockConn *sql.Conn // MySQL: the connection holding the instance lock

	touched sync.Map // id → unix millis of the last write of last_active_at

	hooksMu     sync.Mutex
	removeHooks map[*RemoveHook]struct{}
	locks       keyedMutex
	usage       sync.Map // id → *usageCounter

	onExpire atomic.Pointer[func(id, userID string)] // see OnExpire

	reaperMu     sync.Mutex
	reapInterval time.Duration
	stopReaper   context.CancelFunc
	reaperDone   chan struct{}
}

// New returns a store over db whose workspaces live under
// <workspace>/sessions/, creating that directory if needed.
func New(db *database.DB, workspace string, cfg Config, logger *zap.Logger) (*Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	abs, err := filepath.Abs(workspace)
	if err != nil {
		return nil, fmt.Errorf("sessions: workspace %q: %w", workspace, err)
	}
	dir := filepath.Join(abs, "sessions")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sessions: creating %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("sessions: opening %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, root: root, logger: logger, instance: processInstance}
	s.SetConfig(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.holdInstanceLock(ctx); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// SetConfig replaces the limits; a config reload calls it on the shared database.
func (s *Store) SetConfig(cfg Config) {
	c := cfg.withDefaults()
	s.cfg.Store(&c)
}

// Config returns the limits in effect, defaults filled in.
func (s *Store) Config() Config { return *s.cfg.Load() }

// Dir returns the absolute directory that holds the session workspaces.
func (s *Store) Dir() string { return s.dir }

// Close stops the reaper and releases the workspace directory handle. The
// database belongs to the caller.
func (s *Store) Close() error {
	s.StopReaper()
	s.releaseInstanceLock()
	return s.root.Close()
}

// Create reserves a slot under the caps and builds the session's workspace.
// It returns ErrLimitReached when a cap is reached. The caps are decided in
// one transaction that serializes on the 'create' lock row, so concurrent
// creates, on one replica or many, never exceed them.
func (s *Store) Create(ctx context.Context, userID string) (Session, error) {
	if userID == "" {
		return Session{}, errors.New("sessions: create: empty user id")
	}
	cfg := s.Config()
	id := newID()
	now := database.NowMillis()
	if err := s.reserve(ctx, cfg, id, userID, now); err != nil {
		return Session{}, err
	}
	sess := s.session(id, userID, now, now, cfg)
	if err := s.buildWorkspace(sess); err != nil {
		s.abandon(id)
		return Session{}, fmt.Errorf("sessions: create %s: %w", id, err)
	}
	res, err := s.db.ExecContext(context.WithoutCancel(ctx), "UPDATE sessions SET ready = 1 WHERE id = ?", id)
	if err == nil {
		err = expectOne(res)
	}
	if err != nil {
		s.abandon(id)
		return Session{}, fmt.Errorf("sessions: create %s: marking ready: %w", id, err)
	}
	s.touched.Store(id, now)
	return sess, nil
}

// reserve inserts the not-yet-ready row of a new session if the caps allow it.
func (s *Store) reserve(ctx context.Context, cfg Config, id, userID string, now int64) error {
	var opts *sql.TxOptions
	if s.db.Dialect == database.MySQL {
		// Each count must see every create committed before this one took
		// the lock row, not a snapshot from the start of the transaction.
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sessions: create: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE session_locks SET updated_at = ? WHERE name = 'create'", now); err != nil {
		return fmt.Errorf("sessions: create: taking the create lock: %w", err)
	}
	var total, mine int
	if err := tx.QueryRowContext(ctx,
		"SELECT COUNT(*), COALESCE(SUM(CASE WHEN user_id = ? THEN 1 ELSE 0 END), 0) FROM sessions", userID,
	).Scan(&total, &mine); err != nil {
		return fmt.Errorf("sessions: create: counting: %w", err)
	}
	if total >= cfg.MaxSessions {
		return fmt.Errorf("%w: %d of %d sessions in use", ErrLimitReached, total, cfg.MaxSessions)
	}
	if mine >= cfg.MaxSessionsPerUser {
		return fmt.Errorf("%w: the user has %d of %d sessions", ErrLimitReached, mine, cfg.MaxSessionsPerUser)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO sessions (id, user_id, ready, created_at, last_active_at, creator) VALUES (?, ?, 0, ?, ?, ?)",
		id, userID, now, now, s.instance); err != nil {
		return fmt.Errorf("sessions: create: inserting: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sessions: create: commit: %w", err)
	}
	return nil
}

// abandon undoes a create that failed after its row was committed. What it
// cannot undo (the database is gone) the repair pass finds later.
func (s *Store) abandon(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.remove(ctx, id, "DELETE FROM sessions WHERE id = ?", id); err != nil {
		s.logger.Warn("abandoning a failed create", zap.String("session", id), zap.Error(err))
	}
	s.root.RemoveAll(creatingPrefix + id)
}

// Get returns the session id if userID owns it, else ErrNotFound.
func (s *Store) Get(ctx context.Context, id, userID string) (Session, error) {
	if !ValidID(id) {
		return Session{}, ErrNotFound
	}
	var created, active int64
	err := s.db.QueryRowContext(ctx,
		"SELECT created_at, last_active_at FROM sessions WHERE id = ? AND user_id = ? AND ready = 1",
		id, userID).Scan(&created, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: get %s: %w", id, err)
	}
	return s.session(id, userID, created, active, s.Config()), nil
}

// List returns the sessions of userID, oldest first.
func (s *Store) List(ctx context.Context, userID string) ([]Session, error) {
	return s.list(ctx, "SELECT id, user_id, created_at, last_active_at FROM sessions WHERE ready = 1 AND user_id = ? ORDER BY created_at, id", userID)
}

// ListAll returns every user's sessions, oldest first (for admins).
func (s *Store) ListAll(ctx context.Context) ([]Session, error) {
	return s.list(ctx, "SELECT id, user_id, created_at, last_active_at FROM sessions WHERE ready = 1 ORDER BY created_at, id")
}

func (s *Store) list(ctx context.Context, query string, args ...any) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sessions: list: %w", err)
	}
	defer rows.Close()
	cfg := s.Config()
	out := []Session{}
	for rows.Next() {
		var id, user string
		var created, active int64
		if err := rows.Scan(&id, &user, &created, &active); err != nil {
			return nil, fmt.Errorf("sessions: list: %w", err)
		}
		out = append(out, s.session(id, user, created, active, cfg))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sessions: list: %w", err)
	}
	return out, nil
}

// Count returns the number of live sessions (the active_sessions gauge).
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE ready = 1").Scan(&n); err != nil {
		return 0, fmt.Errorf("sessions: count: %w", err)
	}
	return n, nil
}

// Delete removes userID's session id. Someone else's session is
// ErrNotFound. The directory is moved aside first, then the row deleted,
// then the directory: a crash at any point leaves a row without its
// directory or a trash directory, both of which the repair pass removes.
func (s *Store) Delete(ctx context.Context, id, userID string) error {
	if _, err := s.Get(ctx, id, userID); err != nil {
		return err
	}
	removed, err := s.remove(ctx, id, "DELETE FROM sessions WHERE id = ? AND user_id = ? AND ready = 1", id, userID)
	if err != nil {
		return err
	}
	if !removed {
		return ErrNotFound
	}
	return nil
}

// remove trashes session id's directory, runs the row's DELETE (query) and
// purges the directory if a row went; if none did (the session was touched
// or deleted meanwhile) the directory goes back, as long as its row exists.
func (s *Store) remove(ctx context.Context, id, query string, args ...any) (bool, error) {
	ctx = context.WithoutCancel(ctx)
	s.runRemoveHooks(ctx, id)
	trash, err := s.trashWorkspace(id)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		s.restoreWorkspace(trash, id)
		return false, fmt.Errorf("sessions: removing %s: %w", id, err)
	}
	if n == 0 {
		if ids, err := s.ids(ctx, "SELECT id FROM sessions WHERE id = ?", id); err == nil && len(ids) == 0 {
			s.purge(trash)
		} else {
			s.restoreWorkspace(trash, id)
		}
		return false, nil
	}
	s.touched.Delete(id)
	s.usage.Delete(id)
	s.purge(trash)
	return true, nil
}

// touch records an access to session id (see Handle.Touch).
func (s *Store) touch(ctx context.Context, id string) error {
	cfg := s.Config()
	now := database.NowMillis()
	if last, ok := s.touched.Load(id); ok && now-last.(int64) < cfg.TouchInterval.Milliseconds() {
		return nil
	}
	s.touched.Store(id, now)
	res, err := s.db.ExecContext(ctx,
		"UPDATE sessions SET last_active_at = ? WHERE id = ? AND ready = 1 AND last_active_at < ?",
		now, id, now)
	if err != nil {
		s.touched.Delete(id)
		s.usage.Delete(id)
		return fmt.Errorf("sessions: touch %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	var user string
	var created int64
	if err := s.db.QueryRowContext(ctx, "SELECT user_id, created_at FROM sessions WHERE id = ?", id).Scan(&user, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("sessions: touch %s: %w", id, err)
	}
	return s.writeMetadata(s.session(id, user, created, now, cfg))
}

// keepActive touches session id while ctx lasts (see Handle.KeepActive).
func (s *Store) keepActive(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Twice per interval: Touch skips a call that comes a hair early.
		t := time.NewTicker(max(s.Config().TouchInterval/2, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := s.touch(ctx, id); err != nil && ctx.Err() == nil {
				s.logger.Warn("recording session activity", zap.String("session", id), zap.Error(err))
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (s *Store) session(id, userID string, created, active int64, cfg Config) Session {
	return Session{
		ID:           id,
		UserID:       userID,
		CreatedAt:    fromMillis(created),
		LastActiveAt: fromMillis(active),
		ExpiresAt:    fromMillis(active + cfg.Timeout.Milliseconds()),
	}
}

func expectOne(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%d rows changed, want 1", n)
	}
	return nil
}

// keyedMutex hands out one mutex per key, for the in-process half of
// serializing history appends.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// RemoveHook is called with a session's id before its directory and row are
// removed (a delete or an expiry), so what uses that directory (the
// session's workspace container) goes first. It must be idempotent: the
// removal may still not happen (the session was used meanwhile) or be tried
// again.
type RemoveHook func(ctx context.Context, id string)

// OnRemove registers hook until the returned cancel is called.
func (s *Store) OnRemove(hook RemoveHook) (cancel func()) {
	h := &hook
	s.hooksMu.Lock()
	if s.removeHooks == nil {
		s.removeHooks = map[*RemoveHook]struct{}{}
	}
	s.removeHooks[h] = struct{}{}
	s.hooksMu.Unlock()
	return func() {
		s.hooksMu.Lock()
		delete(s.removeHooks, h)
		s.hooksMu.Unlock()
	}
}

func (s *Store) runRemoveHooks(ctx context.Context, id string) {
	s.hooksMu.Lock()
	hooks := make([]RemoveHook, 0, len(s.removeHooks))
	for h := range s.removeHooks {
		hooks = append(hooks, *h)
	}
	s.hooksMu.Unlock()
	for _, h := range hooks {
		h(ctx, id)
	}
}
