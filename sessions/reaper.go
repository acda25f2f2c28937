package sessions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/database"
)

// Expire removes every session idle for longer than Config.Timeout,
// workspace and row, and returns how many it removed. A session touched
// between the scan and its removal is kept.
func (s *Store) Expire(ctx context.Context) (int, error) {
	cutoff := database.NowMillis() - s.Config().Timeout.Milliseconds()
	idle, err := s.list(ctx, "SELECT id, user_id, created_at, last_active_at FROM sessions WHERE ready = 1 AND last_active_at < ?", cutoff)
	if err != nil {
		return 0, fmt.Errorf("sessions: expire: %w", err)
	}
	n := 0
	for _, sess := range idle {
		id := sess.ID
		if ctx.Err() != nil {
			break
		}
		removed, err := s.remove(ctx, id, "DELETE FROM sessions WHERE id = ? AND ready = 1 AND last_active_at < ?", id, cutoff)
		if err != nil {
			return n, fmt.Errorf("sessions: expire: %w", err)
		}
		if removed {
			s.logger.Info("session expired", zap.String("session", id))
			s.expired(id, sess.UserID)
			n++
		}
	}
	return n, nil
}

// RepairReport counts what a repair pass did.
type RepairReport struct {
	// UnfinishedCreates are rows (and directories) of creates that never completed.
	UnfinishedCreates int
	// UnfinishedDeletes are trash directories (and their rows) of deletes
	// that never completed.
	UnfinishedDeletes int
	// RowsWithoutWorkspace are ready rows whose directory was missing.
	RowsWithoutWorkspace int
	// OrphanedWorkspaces are session directories without a row, moved to
	// .orphaned/ (kept, not deleted: they may hold a user's files).
	OrphanedWorkspaces int
	// Uploads are temporary files of uploads, metadata and history writes
	// that never completed.
	Uploads int
}

// Repair puts the rows and the directories back in step after a crash:
// it removes unfinished creates (not-ready rows, staging directories),
// finishes unfinished deletes (trash directories and their rows), deletes
// ready rows whose directory is missing, moves directories without a row to
// .orphaned/, and removes the temporary files of interrupted uploads. Work
// of a process that is still alive (see liveness.go) is left alone until it
// is older than grace.
func (s *Store) Repair(ctx context.Context, grace time.Duration) (RepairReport, error) {
	var rep RepairReport
	now := time.Now()
	cutoff := now.Add(-grace).UnixMilli()

	// Unfinished creates: the row is committed first, so it says, and who.
	rows, err := s.db.QueryContext(ctx, "SELECT id, creator, created_at FROM sessions WHERE ready = 0")
	if err != nil {
		return rep, fmt.Errorf("sessions: repair: %w", err)
	}
	type pending struct {
		id, creator string
		created     int64
	}
	var unfinished []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.creator, &p.created); err != nil {
			rows.Close()
			return rep, fmt.Errorf("sessions: repair: %w", err)
		}
		unfinished = append(unfinished, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("sessions: repair: %w", err)
	}
	for _, p := range unfinished {
		if p.created > cutoff && s.alive(ctx, p.creator) {
			continue // in flight
		}
		res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ? AND ready = 0", p.id)
		if err != nil {
			return rep, fmt.Errorf("sessions: repair %s: %w", p.id, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			rep.UnfinishedCreates++
			s.removeWorkspace(p.id)
			s.root.RemoveAll(creatingPrefix + p.id)
		}
	}

	entries, err := s.root.FS().(fs.ReadDirFS).ReadDir(".")
	if err != nil {
		return rep, fmt.Errorf("sessions: repair: reading %s: %w", s.dir, err)
	}
	dirs := map[string]bool{}
	inTrash := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case ValidID(name):
			dirs[name] = true
		case strings.HasPrefix(name, deletingPrefix):
			// A delete moves the directory aside before it deletes the row.
			id, at, deleter, ok := parseTrash(name)
			if !ok {
				continue
			}
			inTrash[id] = true
			if now.Sub(at) < grace && s.alive(ctx, deleter) {
				continue // a delete (or an expiry that may yet restore it) in flight
			}
			if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ?", id); err != nil {
				return rep, fmt.Errorf("sessions: repair %s: %w", id, err)
			}
			s.touched.Delete(id)
			s.usage.Delete(id)
			s.usage.Delete(id)
			s.usage.Delete(id)
			s.purge(name)
			rep.UnfinishedDeletes++
		case strings.HasPrefix(name, creatingPrefix):
			// Staging follows its row: without a not-ready row, it is left over.
			id := strings.TrimPrefix(name, creatingPrefix)
			pendingRows, err := s.ids(ctx, "SELECT id FROM sessions WHERE id = ? AND ready = 0", id)
			if err != nil {
				return rep, fmt.Errorf("sessions: repair %s: %w", name, err)
			}
			if len(pendingRows) == 0 && s.root.RemoveAll(name) == nil {
				rep.UnfinishedCreates++
			}
		}
	}

	ready, err := s.ids(ctx, "SELECT id FROM sessions WHERE ready = 1")
	if err != nil {
		return rep, fmt.Errorf("sessions: repair: %w", err)
	}
	var missing []string
	for _, id := range ready {
		if dirs[id] {
			delete(dirs, id)
			continue
		}
		if inTrash[id] {
			continue
		}
		if _, err := s.root.Lstat(id); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 && len(missing) == len(ready) && len(ready) > 1 {
		// Not one session has its directory: rather a workspace that is not
		// mounted, or the wrong one, than a crash. Keep the rows; they expire.
		s.logger.Error("no session has its workspace directory; is the workspace mounted?",
			zap.String("dir", s.dir), zap.Int("sessions", len(ready)))
		missing = nil
	}
	for _, id := range missing {
		res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ? AND ready = 1", id)
		if err != nil {
			return rep, fmt.Errorf("sessions: repair %s: %w", id, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			rep.RowsWithoutWorkspace++
			s.touched.Delete(id)
			s.usage.Delete(id)
			s.usage.Delete(id)
			s.usage.Delete(id)
			s.logger.Warn("removed a session whose workspace was missing", zap.String("session", id))
		}
	}

	for id := range dirs {
		// Rows are committed before their directory appears and deleted
		// after it went, so this directory's row is gone for another reason
		// (a database that was replaced or restored). Keep the files.
		ids, err := s.ids(ctx, "SELECT id FROM sessions WHERE id = ?", id)
		if err != nil {
			return rep, fmt.Errorf("sessions: repair %s: %w", id, err)
		}
		if len(ids) > 0 {
			continue
		}
		if err := s.root.MkdirAll(orphanedDir, 0o700); err == nil {
			if err := s.root.Rename(id, path.Join(orphanedDir, fmt.Sprintf("%s-%d", id, now.UnixMilli()))); err == nil {
				rep.OrphanedWorkspaces++
				s.logger.Warn("moved a session workspace without a row aside", zap.String("session", id),
					zap.String("to", path.Join(s.dir, orphanedDir)))
			}
		}
	}

	for _, id := range ready {
		rep.Uploads += s.repairUploads(ctx, id, grace)
		rep.Uploads += s.removeTemps(id, grace)
		rep.Uploads += s.removeTemps(path.Join(id, claudeDir), grace)
	}
	if rep != (RepairReport{}) {
		s.logger.Info("repaired the session workspaces",
			zap.Int("unfinished_creates", rep.UnfinishedCreates),
			zap.Int("unfinished_deletes", rep.UnfinishedDeletes),
			zap.Int("rows_without_workspace", rep.RowsWithoutWorkspace),
			zap.Int("orphaned_workspaces", rep.OrphanedWorkspaces),
			zap.Int("uploads", rep.Uploads))
	}
	return rep, nil
}

// StartupRepair is the repair pass a process runs before it serves. Work
// of processes that are gone is finished at once (see liveness.go); work
// whose owner cannot be told waits for Config.RepairGrace.
func (s *Store) StartupRepair(ctx context.Context) (RepairReport, error) {
	return s.Repair(ctx, s.Config().RepairGrace)
}

// repairUploads removes the temporary files of uploads whose journal marker
// is older than grace, and the markers.
func (s *Store) repairUploads(ctx context.Context, id string, grace time.Duration) int {
	journal := path.Join(id, uploadsDir)
	entries, err := s.root.FS().(fs.ReadDirFS).ReadDir(journal)
	if err != nil || len(entries) == 0 {
		return 0
	}
	files, err := s.root.OpenRoot(path.Join(id, filesDir))
	if err != nil {
		return 0
	}
	defer files.Close()
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		uploader, _, _ := strings.Cut(e.Name(), "-")
		if err != nil || (time.Since(info.ModTime()) < grace && s.alive(ctx, uploader)) {
			continue
		}
		marker := path.Join(journal, e.Name())
		tmp, err := s.root.ReadFile(marker)
		if err == nil && isTempName(path.Base(string(tmp))) {
			if err := files.Remove(string(tmp)); err == nil || errors.Is(err, fs.ErrNotExist) {
				n++
			}
		}
		s.root.Remove(marker)
	}
	return n
}

// removeTemps removes the temporary files of interrupted metadata and
// history writes in dir that are older than grace.
func (s *Store) removeTemps(dir string, grace time.Duration) int {
	entries, err := s.root.FS().(fs.ReadDirFS).ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !isTempName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= grace {
			if s.root.Remove(path.Join(dir, e.Name())) == nil {
				n++
			}
		}
	}
	return n
}

// StartReaper runs Expire and Repair every interval until StopReaper. One
// reaper runs per store: a second call with the same interval does nothing,
// one with another interval restarts it at the new pace.
func (s *Store) StartReaper(interval time.Duration) {
	s.reaperMu.Lock()
	defer s.reaperMu.Unlock()
	if s.stopReaper != nil {
		if s.reapInterval == interval {
			return
		}
		s.stopReaper()
		<-s.reaperDone
	}
	s.reapInterval = interval
	ctx, cancel := context.WithCancel(context.Background())
	s.stopReaper = cancel
	s.reaperDone = make(chan struct{})
	go func() {
		defer close(s.reaperDone)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := s.holdInstanceLock(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("taking the instance lock", zap.Error(err))
			}
			if _, err := s.Expire(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("expiring sessions", zap.Error(err))
			}
			if _, err := s.Repair(ctx, s.Config().RepairGrace); err != nil && ctx.Err() == nil {
				s.logger.Error("repairing session workspaces", zap.Error(err))
			}
		}
	}()
}

// StopReaper stops the reaper and waits for its pass in progress to end.
func (s *Store) StopReaper() {
	s.reaperMu.Lock()
	defer s.reaperMu.Unlock()
	if s.stopReaper == nil {
		return
	}
	s.stopReaper()
	<-s.reaperDone
	s.stopReaper = nil
}

func (s *Store) ids(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
