package sessions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// filesUsage returns the bytes under files/ in dir, session id's directory:
// the counter when it is fresh, otherwise a new measure.
func (s *Store) filesUsage(dir *os.Root, id string) (int64, error) {
	c := s.counter(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known && time.Since(c.at) < s.Config().UsageRefresh {
		return c.bytes, nil
	}
	return s.measure(dir, id, c)
}

// refreshUsage measures files/ in dir, session id's directory, now and
// returns the bytes of the session: files and history together.
func (s *Store) refreshUsage(dir *os.Root, id string) (int64, error) {
	c := s.counter(id)
	c.mu.Lock()
	files, err := s.measure(dir, id, c)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	hist, err := historyUsage(dir, id)
	if err != nil {
		return 0, err
	}
	return files + hist, nil
}

// quotaUsage returns the bytes session id (its directory: dir) holds against its
// quota: its files (from the counter) and its history.
func (s *Store) quotaUsage(dir *os.Root, id string) (int64, error) {
	files, err := s.filesUsage(dir, id)
	if err != nil {
		return 0, err
	}
	hist, err := historyUsage(dir, id)
	if err != nil {
		return 0, err
	}
	return files + hist, nil
}

// historyUsage is what the history in dir counts in its session's quota:
// its entries, not the empty array every session starts with.
func historyUsage(dir *os.Root, id string) (int64, error) {
	n, err := historySize(dir, id)
	return max(n-int64(len(emptyHistory)), 0), err
}

// measure walks files/ in dir, session id's directory, and stores the total
// in c, whose mutex the caller holds.
func (s *Store) measure(dir *os.Root, id string, c *usageCounter) (int64, error) {
	root, err := dir.OpenRoot(filesDir)
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
