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

	"github.com/claude-gateway/claude-gateway/store"
)

// Expire removes every session idle for longer than Config.Timeout, row
// first, then workspace, and returns how many it removed. A session touched
// between the scan and its removal is kept.
func (s *Store) Expire(ctx context.Context) (int, error) {
	cutoff := store.NowMillis() - s.Config().Timeout.Milliseconds()
	ids, err := s.ids(ctx, "SELECT id FROM sessions WHERE ready = 1 AND last_active_at < ?", cutoff)
	if err != nil {
		return 0, fmt.Errorf("sessions: expire: %w", err)
	}
	n := 0
	for _, id := range ids {
		res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ? AND ready = 1 AND last_active_at < ?", id, cutoff)
		if err != nil {
			return n, fmt.Errorf("sessions: expire %s: %w", id, err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			continue
		}
		s.touched.Delete(id)
		s.removeWorkspace(id)
		s.logger.Info("session expired", zap.String("session", id))
		n++
	}
	return n, nil
}

// RepairReport counts what a repair pass removed.
type RepairReport struct {
	// UnfinishedRows are rows of creates that never completed.
	UnfinishedRows int
	// RowsWithoutWorkspace are ready rows whose directory was missing.
	RowsWithoutWorkspace int
	// WorkspacesWithoutRow are session directories whose row was gone.
	WorkspacesWithoutRow int
	// TransientDirs are staging (.creating-) and trash (.deleting-) directories.
	TransientDirs int
	// Uploads are temporary files of uploads that never completed.
	Uploads int
}

// Repair removes what interrupted creates, deletes and uploads left behind:
// rows without a workspace, workspaces without a row, staging and trash
// directories, and temporary upload files. Work that started less than grace
// ago is left alone, as another replica may still be doing it.
func (s *Store) Repair(ctx context.Context, grace time.Duration) (RepairReport, error) {
	var rep RepairReport
	cutoff := store.NowMillis() - grace.Milliseconds()

	unfinished, err := s.ids(ctx, "SELECT id FROM sessions WHERE ready = 0 AND created_at <= ?", cutoff)
	if err != nil {
		return rep, fmt.Errorf("sessions: repair: %w", err)
	}
	for _, id := range unfinished {
		res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ? AND ready = 0", id)
		if err != nil {
			return rep, fmt.Errorf("sessions: repair %s: %w", id, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			rep.UnfinishedRows++
			s.removeWorkspace(id)
			s.root.RemoveAll(creatingPrefix + id)
		}
	}

	ready, err := s.ids(ctx, "SELECT id FROM sessions WHERE ready = 1")
	if err != nil {
		return rep, fmt.Errorf("sessions: repair: %w", err)
	}
	for _, id := range ready {
		if _, err := s.root.Lstat(id); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ? AND ready = 1", id)
		if err != nil {
			return rep, fmt.Errorf("sessions: repair %s: %w", id, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			rep.RowsWithoutWorkspace++
			s.touched.Delete(id)
			s.logger.Warn("removed a session whose workspace was missing", zap.String("session", id))
		}
	}

	entries, err := s.root.FS().(fs.ReadDirFS).ReadDir(".")
	if err != nil {
		return rep, fmt.Errorf("sessions: repair: reading %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case ValidID(name):
			// A directory is renamed into place only after its row is
			// committed, so a directory without a row is a delete that crashed.
			ids, err := s.ids(ctx, "SELECT id FROM sessions WHERE id = ?", name)
			if err != nil {
				return rep, fmt.Errorf("sessions: repair %s: %w", name, err)
			}
			if len(ids) == 0 {
				rep.WorkspacesWithoutRow++
				s.removeWorkspace(name)
				continue
			}
			rep.Uploads += s.repairUploads(name, grace)
		case strings.HasPrefix(name, deletingPrefix):
			if s.root.RemoveAll(name) == nil {
				rep.TransientDirs++
			}
		case strings.HasPrefix(name, creatingPrefix):
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= grace {
				if s.root.RemoveAll(name) == nil {
					rep.TransientDirs++
				}
			}
		}
	}
	if rep != (RepairReport{}) {
		s.logger.Info("repaired the session workspaces",
			zap.Int("unfinished_rows", rep.UnfinishedRows),
			zap.Int("rows_without_workspace", rep.RowsWithoutWorkspace),
			zap.Int("workspaces_without_row", rep.WorkspacesWithoutRow),
			zap.Int("transient_dirs", rep.TransientDirs),
			zap.Int("uploads", rep.Uploads))
	}
	return rep, nil
}

// StartupRepair is the repair pass a process runs before it serves: on
// SQLite no other process can have work in flight, so nothing is spared.
func (s *Store) StartupRepair(ctx context.Context) (RepairReport, error) {
	grace := s.Config().RepairGrace
	if s.db.Dialect == store.SQLite {
		grace = 0
	}
	return s.Repair(ctx, grace)
}

// repairUploads removes the temporary files of uploads whose journal marker
// is older than grace, and the markers.
func (s *Store) repairUploads(id string, grace time.Duration) int {
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
		if err != nil || time.Since(info.ModTime()) < grace {
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
