package sessions

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/claude-gateway/claude-gateway/database"
)

// Every store has an instance id, written on the work it starts (creates,
// deletes, uploads), so that the repair pass can tell work in flight in a
// live process from work a crash interrupted, without waiting out a grace
// period. On MySQL a live process holds a named lock for its id on a
// connection of its own; the server releases it when the process dies. On
// SQLite only one process uses the database, so every other id is dead.

const lockPrefix = "claude_sessions_" // + instance id; MySQL allows 64 characters

// processInstance is the instance id of this process, shared by its stores
// (a reload that changes the workspace runs two side by side for a moment).
var processInstance = randomSuffix()

// holdInstanceLock takes the named lock of this instance (MySQL only).
func (s *Store) holdInstanceLock(ctx context.Context) error {
	if s.db.Dialect != database.MySQL {
		return nil
	}
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lockConn != nil {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sessions: instance lock: %w", err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", lockPrefix+s.instance).Scan(&got); err != nil {
		conn.Close()
		return fmt.Errorf("sessions: instance lock: %w", err)
	}
	if got.Int64 != 1 {
		// Another store of this process holds it; the reaper tries again
		// should that one close first.
		conn.Close()
		return nil
	}
	s.lockConn = conn
	return nil
}

// releaseInstanceLock gives the named lock back with its connection.
func (s *Store) releaseInstanceLock() {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lockConn != nil {
		s.lockConn.Close() // closing the session releases its locks
		s.lockConn = nil
	}
}

// alive reports whether the process with the given instance id may still be
// working. An empty id (work recorded before ids existed) or a failed check
// counts as alive: then only the grace period applies.
func (s *Store) alive(ctx context.Context, instance string) bool {
	switch {
	case instance == s.instance, instance == "":
		return true
	case s.db.Dialect == database.SQLite:
		return false
	}
	var free sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT IS_FREE_LOCK(?)", lockPrefix+instance).Scan(&free); err != nil || !free.Valid {
		return true
	}
	return free.Int64 == 0
}
