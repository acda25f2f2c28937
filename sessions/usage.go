package sessions

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"time"
)

// usageCounter is what a session's files/ hold, in bytes, as last measured
// and adjusted by this process's uploads. Measuring walks the whole tree;
// uploads and deletes adjust the count instead, so an upload does not walk
// it. Runs (and anything else writing files/ directly) make the count
// stale: RefreshUsage measures again after each run, and a count older than
// Config.UsageRefresh is measured again on its next use.
type usageCounter struct {
	mu    sync.Mutex
	bytes int64
	known bool
	at    time.Time
}

func (s *Store) counter(id string) *usageCounter {
	c, _ := s.usage.LoadOrStore(id, new(usageCounter))
	return c.(*usageCounter)
}

// FilesUsage returns the bytes under session id's files/: the counter when
// it is fresh, otherwise a new measure.
func (s *Store) FilesUsage(id string) (int64, error) {
	c := s.counter(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known && time.Since(c.at) < s.Config().UsageRefresh {
		return c.bytes, nil
	}
	return s.measure(id, c)
}

// RefreshUsage measures session id's files/ now (after a run wrote to it)
// and returns the bytes of the session: files and history together.
func (s *Store) RefreshUsage(id string) (int64, error) {
	c := s.counter(id)
	c.mu.Lock()
	files, err := s.measure(id, c)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	hist, err := s.historyUsage(id)
	if err != nil {
		return 0, err
	}
	return files + hist, nil
}

// Usage returns the bytes a session holds against its quota: its files
// (from the counter) and its history.
func (s *Store) Usage(id string) (int64, error) {
	files, err := s.FilesUsage(id)
	if err != nil {
		return 0, err
	}
	hist, err := s.historyUsage(id)
	if err != nil {
		return 0, err
	}
	return files + hist, nil
}

// historyUsage is what session id's history counts in its quota: its
// entries, not the empty array every session starts with.
func (s *Store) historyUsage(id string) (int64, error) {
	n, err := s.HistorySize(id)
	return max(n-int64(len(emptyHistory)), 0), err
}

// CheckQuota returns ErrQuotaExceeded when session id holds more than its
// quota (a run wrote past it): until files are removed, it gets no upload
// and no run.
func (s *Store) CheckQuota(id string) error {
	quota := s.Config().Quota
	if quota <= 0 {
		return nil
	}
	used, err := s.Usage(id)
	if err != nil {
		return err
	}
	if used > quota {
		return fmt.Errorf("%w: the session holds %d bytes of %d", ErrQuotaExceeded, used, quota)
	}
	return nil
}

// measure walks session id's files/ and stores the total in c, whose mutex
// the caller holds.
func (s *Store) measure(id string, c *usageCounter) (int64, error) {
	if !ValidID(id) {
		return 0, ErrNotFound
	}
	root, err := s.root.OpenRoot(path.Join(id, filesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("sessions: opening the files of %s: %w", id, err)
	}
	defer root.Close()
	at := time.Now()
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sessions: measuring the files of %s: %w", id, err)
	}
	c.bytes, c.known, c.at = total, true, at
	return total, nil
}

// adjustUsage adds delta to session id's counter when it is known.
func (s *Store) adjustUsage(id string, delta int64) {
	c := s.counter(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known {
		c.bytes = max(c.bytes+delta, 0)
	}
}

// forgetUsage makes the next use of session id's counter measure again.
func (s *Store) forgetUsage(id string) {
	c := s.counter(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = false
}
